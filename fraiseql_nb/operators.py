"""The WHERE operators, in one table: what each applies to, how it is written in
GraphQL, rendered in SQL and computed in Polars. Pure.

Every stage reads this table and nothing else: the GraphQL schema builds each
scalar's filter input from :data:`OPERATORS` (``applies`` and ``operand``),
the parser checks values by ``typed`` and ``check``, :mod:`fraiseql_nb.sql.where`
renders ``sql``, and :mod:`fraiseql_nb.compute.filters` calls ``polars`` — or,
where it is None, the arrow plane declines and PostgreSQL answers. Adding an
operator is adding one :class:`Operator` row (and its tests).

Semantics are SQL's: a comparison with a NULL (or missing, or wrongly-typed)
value is unknown, so ``neq``/``nin``/``_not`` never match rows whose field is
NULL; ``in: []`` matches nothing and ``nin: []`` everything. LIKE-family
operators escape ``%``, ``_`` and ``\\`` so user text matches literally
(``like``/``ilike`` take a pattern on purpose).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl
from psycopg import sql

from fraiseql_nb.compute.literals import (
    MAX_PATTERN,
    comparable,
    like_regex,
    literal_value,
    portable_regex,
)
from fraiseql_nb.errors import UnsupportedError

if TYPE_CHECKING:  # every stage imports this table: it imports none of them
    from fraiseql_nb.query.ir import Compare
    from fraiseql_nb.sql.exprs import FieldSQL
    from fraiseql_nb.sql.params import Params

__all__ = [
    "DISTANCES",
    "EVERY",
    "LIST",
    "LOOPBACK_RANGES",
    "MAX_DIMENSIONS",
    "MAX_REGEX_LENGTH",
    "NUMBER_LIST",
    "OPERATORS",
    "PRIVATE_RANGES",
    "TEXT_LIST",
    "Operator",
    "as_vector",
    "distance_order",
    "escape_like",
    "json_array",
    "list_operators",
    "scalar_operators",
    "search_value",
    "typed_ops",
    "vector_text",
]

SqlRenderer = Callable[["FieldSQL", "Compare", "Params"], sql.Composable]
PolarsRenderer = Callable[[pl.Expr, "Compare", Any, str], pl.Expr]

#: ``applies`` of an operator every scalar's filter offers, and of a list field's: any
#: list, a list of numbers (a vector), a list of text (a set of words).
EVERY = "*"
LIST = "list"
NUMBER_LIST = "list of numbers"
TEXT_LIST = "list of text"
_ORDERED = ("Int", "BigInt", "Float", "ID", "DateTime", "Date", "String")


@dataclass(frozen=True)
class Operator:
    """One WHERE operator.

    Attributes:
        name: its GraphQL name.
        family: comparison, text, null, json, list, vector, network, text search.
        doc: the description the GraphQL schema shows.
        applies: the scalars whose filters offer it (``EVERY``: all; ``LIST``,
            ``NUMBER_LIST``, ``TEXT_LIST``: list fields).
        operand: its GraphQL input — "value" (the field's scalar), "values" (a list of
            it), "boolean", "int", "text", "json", "search" (a string, or
            ``{query, language}``), "vector" (``{vector, threshold}``) or "text set"
            (``{values, threshold}``).
        sql: its SQL rendering.
        polars: its Polars rendering; None: the arrow plane declines it.
        typed: its value is compared with the column's own type (checked and made
            canonical before any SQL runs: a uuid, an integer in range).
        caseless: it folds case (Polars and PostgreSQL fold some letters differently).
        check: what is wrong with a value GraphQL's types let through (None when nothing).
    """

    name: str
    family: str
    doc: str
    applies: tuple[str, ...]
    operand: str
    sql: SqlRenderer
    polars: PolarsRenderer | None
    typed: bool = False
    caseless: bool = False
    check: Callable[[Any], str | None] | None = None


# ---------------------------------------------------------------- SQL renderers


def escape_like(text: str) -> str:
    """Make ``text`` match literally inside a LIKE pattern (escape character: backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def json_array(f: FieldSQL) -> sql.Composable:
    """The field as a jsonb array, or NULL when it is not an array."""
    return sql.SQL("(CASE WHEN jsonb_typeof({j}) = 'array' THEN {j} END)").format(j=f.jsonb)


def _binary(symbol: str) -> SqlRenderer:
    def render(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
        if f.pg_type == "jsonb":
            return sql.SQL("({} " + symbol + " {})").format(f.jsonb, p.json(c.value))
        return sql.SQL("({} " + symbol + " {})").format(f.value, p.add(c.value, f.pg_type))

    return render


def _in(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
    if not c.value:
        return sql.SQL("FALSE")
    return sql.SQL("({} = ANY({}))").format(f.value, p.add(list(c.value), f.pg_type + "[]"))


def _nin(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
    if not c.value:
        return sql.SQL("TRUE")
    return sql.SQL("({} <> ALL({}))").format(f.value, p.add(list(c.value), f.pg_type + "[]"))


def _isnull(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
    return sql.SQL("({} IS NULL)" if c.value else "({} IS NOT NULL)").format(f.text)


def _pattern(operator: str, make: Callable[[str], str]) -> SqlRenderer:
    def render(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
        return sql.SQL("({} " + operator + " {})").format(f.text, p.add(make(c.value), "text"))

    return render


def _strictly_contains(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
    return sql.SQL("({} @> {})").format(f.jsonb, p.json(c.value))


def _array_contains(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
    return sql.SQL("({} @> {})").format(json_array(f), p.json(list(c.value)))


def _array_contained_by(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
    return sql.SQL("({} <@ {})").format(json_array(f), p.json(list(c.value)))


def _array_overlaps(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
    if not c.value:
        return sql.SQL("FALSE")
    return sql.SQL(
        "EXISTS (SELECT 1 FROM jsonb_array_elements({}) AS e(v) WHERE {} @> jsonb_build_array(e.v))"
    ).format(json_array(f), p.json(list(c.value)))


def _length(symbol: str) -> SqlRenderer:
    def render(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
        return sql.SQL("(jsonb_array_length({}) " + symbol + " {})").format(
            json_array(f), p.add(c.value, "integer")
        )

    return render


def _kind(f: FieldSQL) -> str:
    """The field's SQL type without modifiers: ``inet``, ``tsvector``, ``text``…"""
    return f.pg_type.split("(")[0].strip()


def _inet(f: FieldSQL) -> sql.Composable:
    """The field as ``inet``; text that is not an address reads as NULL (with
    ``pg_input_is_valid``, PostgreSQL 16+), as a value of another JSON kind does."""
    if _kind(f) in ("inet", "cidr"):
        return f.value
    return sql.SQL("(CASE WHEN pg_input_is_valid({t}, 'inet') THEN ({t})::inet END)").format(
        t=f.text
    )


def _address_flag(test: str) -> SqlRenderer:
    """A yes/no property of the address: ``true`` asks for it, ``false`` for its absence
    (a field that is no address matches neither)."""

    def render(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
        held = sql.SQL(test).format(x=_inet(f))
        return sql.SQL("({})" if c.value else "(NOT ({}))").format(held)

    return render


def _in_ranges(ranges: tuple[str, ...]) -> str:
    listed = ", ".join(f"'{r}'::inet" for r in ranges)
    return "{x} <<= ANY(ARRAY[" + listed + "])"


#: RFC 1918 and the IPv6 unique-local range (RFC 4193).
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
LOOPBACK_RANGES = ("127.0.0.0/8", "::1/128")


def _address_binary(symbol: str) -> SqlRenderer:
    def render(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
        return sql.SQL("({} " + symbol + " {})").format(_inet(f), p.add(c.value, "inet"))

    return render


def search_value(value: Any) -> tuple[str, str]:
    """A text search operand as (query, language): a string is english."""
    if isinstance(value, str):
        return value, "english"
    return str(value["query"]), str(value.get("language") or "english")


def _search(function: str) -> SqlRenderer:
    """The field (a ``tsvector`` column, or text made one in the query's language) matched
    by ``function(language, query)``."""

    def render(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
        query, language = search_value(c.value)
        config = p.add(language, "regconfig")
        if _kind(f) == "tsvector":
            document: sql.Composable = f.value
        else:
            document = sql.SQL("to_tsvector({}, {})").format(config, f.text)
        return sql.SQL("({} @@ " + function + "({}, {}))").format(
            document, config, p.add(query, "text")
        )

    return render


def vector_text(values: Any) -> str:
    """A vector as pgvector writes it: ``[0.1,0.2]`` (exact: Python's shortest repr)."""
    return "[" + ",".join(repr(float(v)) for v in values) + "]"


def as_vector(f: FieldSQL, dims: int) -> sql.Composable:
    """The field as a pgvector ``vector``: a vector column as it is; a JSON array of
    ``dims`` numbers cast to one; anything else (another length, a non-number) NULL."""
    if _kind(f) == "vector":
        return f.value
    return sql.SQL(
        "(CASE WHEN jsonb_typeof({j}) = 'array' AND jsonb_array_length({j}) = {n}"
        " AND NOT jsonb_path_exists({j}, '$[*] ? (@.type() != \"number\")')"
        " THEN ({j})::text::vector END)"
    ).format(j=f.jsonb, n=sql.Literal(dims))


def _distance(symbol: str, *, similarity: bool = False) -> SqlRenderer:
    """Within ``threshold`` of ``vector`` by pgvector's ``symbol``; for the inner product
    (``<#>`` is its negation) at least ``threshold`` similar."""

    def render(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
        vector = list(c.value["vector"])
        threshold = float(c.value["threshold"])
        bound = -threshold if similarity else threshold
        return sql.SQL("(({} " + symbol + " {}) <= {})").format(
            as_vector(f, len(vector)),
            p.add(vector_text(vector), "vector"),
            p.add(bound, "float8"),
        )

    return render


def _jaccard(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
    """1 - |A ∩ B| / |A ∪ B| over the distinct elements (as text) of the list and of
    ``values``; two empty sets are at distance 0; a field that is no list is unknown."""
    values = sorted({str(v) for v in c.value["values"]})
    return sql.SQL(
        "((CASE WHEN jsonb_typeof({j}) = 'array' THEN (SELECT COALESCE(1 - count(*)"
        " FILTER (WHERE a.v IS NOT NULL AND b.v IS NOT NULL)::float8 / NULLIF(count(*), 0), 0)"
        " FROM (SELECT DISTINCT e AS v FROM jsonb_array_elements_text({j}) AS e) AS a"
        " FULL JOIN (SELECT DISTINCT unnest({vals}) AS v) AS b ON a.v = b.v) END) <= {t})"
    ).format(
        j=f.jsonb, vals=p.add(values, "text[]"), t=p.add(float(c.value["threshold"]), "float8")
    )


# ------------------------------------------------------------- Polars renderers


def _typed(c: Compare, dtype: Any, timezone: str) -> Any:
    """The value as the column holds it (PostgreSQL answers what Polars cannot hold)."""
    name = c.path[0]
    try:
        value = literal_value(c.value, dtype, timezone)
    except (ValueError, TypeError, OverflowError, KeyError) as exc:
        # A time past year 9999 in UTC, a time zone Python does not know: PostgreSQL can.
        raise UnsupportedError(f"the value {c.value!r} of {name} ({exc})") from None
    return comparable(value, dtype, name)


def _polars_binary(compare: Callable[[pl.Expr, pl.Expr], pl.Expr]) -> PolarsRenderer:
    def render(col: pl.Expr, c: Compare, dtype: Any, timezone: str) -> pl.Expr:
        value = _typed(c, dtype, timezone)
        return compare(col, pl.lit(value, dtype=dtype) if dtype is not None else pl.lit(value))

    return render


def _polars_in(negate: bool) -> PolarsRenderer:
    def render(col: pl.Expr, c: Compare, dtype: Any, timezone: str) -> pl.Expr:
        value = _typed(c, dtype, timezone)
        if not value:
            return pl.lit(negate)
        # One hashed membership test, however long the list (10,000 values: 5 ms).
        kind = pl.String if isinstance(dtype, (pl.Categorical, pl.Enum)) else dtype
        member = col.is_in(pl.Series(value, dtype=kind).implode())
        return ~member if negate else member

    return render


def _polars_isnull(col: pl.Expr, c: Compare, dtype: Any, timezone: str) -> pl.Expr:
    return col.is_null() if c.value else col.is_not_null()


def _polars_literal(method: str) -> PolarsRenderer:
    def render(col: pl.Expr, c: Compare, dtype: Any, timezone: str) -> pl.Expr:
        text = col.cast(pl.String).str
        if method == "contains":
            return text.contains(c.value, literal=True)
        return getattr(text, method)(c.value)  # type: ignore[no-any-return]

    return render


def _polars_like(make: Callable[[str], str], *, caseless: bool) -> PolarsRenderer:
    def render(col: pl.Expr, c: Compare, dtype: Any, timezone: str) -> pl.Expr:
        if caseless and not c.value.isascii():
            # Case folding of other letters differs between PostgreSQL and Polars (ſ, İ, ß).
            raise UnsupportedError(f"{c.op} with letters beyond ASCII")
        pattern = make(c.value)
        if len(pattern) > MAX_PATTERN:
            raise UnsupportedError(f"a {c.op} pattern of {len(pattern):,} characters")
        regex = like_regex(pattern, case_insensitive=caseless)
        return col.cast(pl.String).str.contains(regex)

    return render


def _polars_regex(*, caseless: bool) -> PolarsRenderer:
    def render(col: pl.Expr, c: Compare, dtype: Any, timezone: str) -> pl.Expr:
        if caseless and not c.value.isascii():
            raise UnsupportedError(f"{c.op} with letters beyond ASCII")
        portable = portable_regex(c.value)
        if portable is None:
            raise UnsupportedError(f"the regular expression {c.value!r} (PostgreSQL's dialect)")
        flags = "(?is)" if caseless else "(?s)"
        return col.cast(pl.String).str.contains(flags + portable)

    return render


# ------------------------------------------------------------------- value checks

#: The longest regular expression accepted.
MAX_REGEX_LENGTH = 1000


def _regex_check(value: Any) -> str | None:
    if len(value) > MAX_REGEX_LENGTH:
        return f"the pattern has {len(value)} characters; at most {MAX_REGEX_LENGTH}"
    return None


def _pattern_check(value: Any) -> str | None:
    """A pattern ending with an unpaired backslash (LIKE's escape character) is refused by
    PostgreSQL and read differently by other engines."""
    if isinstance(value, str) and (len(value) - len(value.rstrip("\\"))) % 2 == 1:
        return "the pattern ends with the escape character \\; write \\\\ for a literal backslash"
    return None


def _address_check(value: Any) -> str | None:
    """An address or subnet PostgreSQL's inet reads (checked here, before any SQL)."""
    try:
        ipaddress.ip_interface(value)
    except ValueError:
        return f"{value!r} is not an IP address or subnet (such as 10.0.0.1 or 2001:db8::/32)"
    return None


#: Vector orderings (nearest first) and the pgvector operator of each.
DISTANCES = {"l2_distance": "<->", "cosine_distance": "<=>", "inner_product": "<#>"}


def distance_order(f: FieldSQL, distance: str, vector: tuple[float, ...]) -> sql.Composable:
    """The sort key of ``orderBy: {field: {<distance>: vector}}``: ascending is nearest
    first (``<#>`` is the negated inner product: the most similar first)."""
    return sql.SQL("({} " + DISTANCES[distance] + " {}::vector)").format(
        as_vector(f, len(vector)), sql.Literal(vector_text(vector))
    )


#: The most dimensions a pgvector vector has.
MAX_DIMENSIONS = 16_000


def _vector_check(value: Any) -> str | None:
    vector = value.get("vector") or []
    if not vector:
        return "the vector is empty; give at least one number"
    if len(vector) > MAX_DIMENSIONS:
        return (
            f"the vector has {len(vector):,} dimensions; pgvector holds at most {MAX_DIMENSIONS:,}"
        )
    numbers = [float(v) for v in vector] + [float(value["threshold"])]
    if any(n != n or n in (float("inf"), float("-inf")) for n in numbers):
        return "vector components and the threshold must be finite numbers"
    return None


def _set_check(value: Any) -> str | None:
    threshold = float(value["threshold"])
    if threshold != threshold or threshold in (float("inf"), float("-inf")):
        return "the threshold must be a finite number"
    return None


_CONFIG = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")


def _search_check(value: Any) -> str | None:
    _, language = search_value(value)
    if not _CONFIG.fullmatch(language):
        return f"{language!r} is not a text search language (such as english or french)"
    return None


# --------------------------------------------------------------------- the table


def _contains(v: str) -> str:
    return f"%{escape_like(v)}%"


def _starts(v: str) -> str:
    return f"{escape_like(v)}%"


def _ends(v: str) -> str:
    return f"%{escape_like(v)}"


_ALL = (EVERY,)
_TEXT = ("String",)

# fmt: off
OPERATORS: dict[str, Operator] = {
    op.name: op
    for op in (
        # comparison
        Operator("eq", "comparison", "equal to", _ALL, "value", _binary("="),
                 _polars_binary(lambda a, b: a == b), typed=True),
        Operator("neq", "comparison", "not equal to (NULLs never match)", _ALL, "value",
                 _binary("<>"), _polars_binary(lambda a, b: a != b), typed=True),
        Operator("gt", "comparison", "greater than", _ORDERED, "value", _binary(">"),
                 _polars_binary(lambda a, b: a > b), typed=True),
        Operator("gte", "comparison", "greater than or equal to", _ORDERED, "value",
                 _binary(">="), _polars_binary(lambda a, b: a >= b), typed=True),
        Operator("lt", "comparison", "less than", _ORDERED, "value", _binary("<"),
                 _polars_binary(lambda a, b: a < b), typed=True),
        Operator("lte", "comparison", "less than or equal to", _ORDERED, "value",
                 _binary("<="), _polars_binary(lambda a, b: a <= b), typed=True),
        Operator("in", "comparison", "one of (an empty list matches nothing)", _ORDERED,
                 "values", _in, _polars_in(negate=False), typed=True),
        Operator("nin", "comparison", "none of (an empty list matches everything)", _ORDERED,
                 "values", _nin, _polars_in(negate=True), typed=True),
        # null
        Operator("isnull", "null", "true: NULL or missing; false: present and not NULL",
                 (*_ALL, LIST), "boolean", _isnull, _polars_isnull),
        # json
        Operator("strictly_contains", "json", "JSON containment (@>)", (*_ALL, LIST), "json",
                 _strictly_contains, None),
        # text
        Operator("contains", "text", "contains the text (% and _ match literally)", _TEXT,
                 "text", _pattern("LIKE", _contains), _polars_literal("contains")),
        Operator("icontains", "text", "contains the text, ignoring case", _TEXT, "text",
                 _pattern("ILIKE", _contains), _polars_like(_contains, caseless=True),
                 caseless=True),
        Operator("startswith", "text", "starts with the text", _TEXT, "text",
                 _pattern("LIKE", _starts), _polars_literal("starts_with")),
        Operator("istartswith", "text", "starts with the text, ignoring case", _TEXT, "text",
                 _pattern("ILIKE", _starts), _polars_like(_starts, caseless=True),
                 caseless=True),
        Operator("endswith", "text", "ends with the text", _TEXT, "text",
                 _pattern("LIKE", _ends), _polars_literal("ends_with")),
        Operator("iendswith", "text", "ends with the text, ignoring case", _TEXT, "text",
                 _pattern("ILIKE", _ends), _polars_like(_ends, caseless=True), caseless=True),
        Operator("like", "text", "SQL LIKE pattern", _TEXT, "text", _pattern("LIKE", str),
                 _polars_like(str, caseless=False), check=_pattern_check),
        Operator("ilike", "text", "SQL ILIKE pattern", _TEXT, "text", _pattern("ILIKE", str),
                 _polars_like(str, caseless=True), caseless=True, check=_pattern_check),
        Operator("regex", "text", "POSIX regular expression", _TEXT, "text",
                 _pattern("~", str), _polars_regex(caseless=False), check=_regex_check),
        Operator("iregex", "text", "POSIX regular expression, ignoring case", _TEXT, "text",
                 _pattern("~*", str), _polars_regex(caseless=True), caseless=True,
                 check=_regex_check),
        # list
        Operator("array_contains", "list", "the list holds all of these", (LIST,), "values",
                 _array_contains, None),
        Operator("array_contained_by", "list",
                 "every element of the list is one of these (an empty list is)", (LIST,),
                 "values", _array_contained_by, None),
        Operator("array_overlaps", "list", "the list holds at least one of these", (LIST,),
                 "values", _array_overlaps, None),
        Operator("len_eq", "list", "the list has this many elements", (LIST,), "int",
                 _length("="), None),
        Operator("len_gt", "list", "the list has more elements than this", (LIST,), "int",
                 _length(">"), None),
        Operator("len_gte", "list", "the list has at least this many elements", (LIST,), "int",
                 _length(">="), None),
        Operator("len_lt", "list", "the list has fewer elements than this", (LIST,), "int",
                 _length("<"), None),
        Operator("len_lte", "list", "the list has at most this many elements", (LIST,), "int",
                 _length("<="), None),
        # vector distance: pgvector columns, and JSON arrays of numbers (need pgvector)
        Operator("l2_distance", "vector",
                 "within threshold of vector by Euclidean distance (pgvector <->)",
                 (NUMBER_LIST,), "vector", _distance("<->"), None, check=_vector_check),
        Operator("cosine_distance", "vector",
                 "within threshold of vector by cosine distance (pgvector <=>)",
                 (NUMBER_LIST,), "vector", _distance("<=>"), None, check=_vector_check),
        Operator("inner_product", "vector",
                 "an inner product with vector of at least threshold (pgvector <#>)",
                 (NUMBER_LIST,), "vector", _distance("<#>", similarity=True), None,
                 check=_vector_check),
        Operator("jaccard_distance", "vector",
                 "within threshold of values by Jaccard distance (1 - shared / all elements)",
                 (TEXT_LIST,), "text set", _jaccard, None, check=_set_check),
        # network addresses: inet/cidr columns, and addresses written as text
        Operator("is_ipv4", "network", "true: an IPv4 address; false: another address",
                 _TEXT, "boolean", _address_flag("family({x}) = 4"), None),
        Operator("is_ipv6", "network", "true: an IPv6 address; false: another address",
                 _TEXT, "boolean", _address_flag("family({x}) = 6"), None),
        Operator("is_private", "network",
                 "true: in a private range (RFC 1918, IPv6 unique local fc00::/7)", _TEXT,
                 "boolean", _address_flag(_in_ranges(PRIVATE_RANGES)), None),
        Operator("is_loopback", "network", "true: a loopback address (127.0.0.0/8, ::1)",
                 _TEXT, "boolean", _address_flag(_in_ranges(LOOPBACK_RANGES)), None),
        Operator("in_subnet", "network", "the address is in this subnet (or is it)", _TEXT,
                 "text", _address_binary("<<="), None, check=_address_check),
        Operator("contains_subnet", "network", "the subnet holds this subnet (or is it)",
                 _TEXT, "text", _address_binary(">>="), None, check=_address_check),
        Operator("contains_ip", "network", "the subnet holds this address", _TEXT, "text",
                 _address_binary(">>="), None, check=_address_check),
        Operator("ip_range_overlap", "network", "the subnet and this one share an address",
                 _TEXT, "text", _address_binary("&&"), None, check=_address_check),
        # full-text search: tsvector columns, and text in the query's language
        Operator("matches", "text search",
                 "matches the words (plainto_tsquery; a string, or {query, language})", _TEXT,
                 "search", _search("plainto_tsquery"), None, check=_search_check),
        Operator("plain_query", "text search", "matches the words (plainto_tsquery)", _TEXT,
                 "search", _search("plainto_tsquery"), None, check=_search_check),
        Operator("phrase_query", "text search",
                 "matches the words in this order (phraseto_tsquery)", _TEXT, "search",
                 _search("phraseto_tsquery"), None, check=_search_check),
        Operator("websearch_query", "text search",
                 'matches a web search: "quoted phrase", or, -not (websearch_to_tsquery)',
                 _TEXT, "search", _search("websearch_to_tsquery"), None, check=_search_check),
    )
}
# fmt: on


def scalar_operators(scalar: str) -> tuple[Operator, ...]:
    """The operators a filter on a field or column of ``scalar`` offers, in table order."""
    return tuple(op for op in OPERATORS.values() if scalar in op.applies or EVERY in op.applies)


def list_operators(item: str | None = None) -> tuple[Operator, ...]:
    """The operators a filter on a list field (of ``item`` scalars; of any, when None)
    offers."""
    kinds = {LIST}
    if item is None:
        kinds |= {NUMBER_LIST, TEXT_LIST}
    if item in ("Int", "BigInt", "Float"):
        kinds.add(NUMBER_LIST)
    if item in ("String", "ID"):
        kinds.add(TEXT_LIST)
    return tuple(op for op in OPERATORS.values() if kinds & set(op.applies))


def typed_ops() -> frozenset[str]:
    """Operators whose values are checked against the column's type."""
    return frozenset(op.name for op in OPERATORS.values() if op.typed)
