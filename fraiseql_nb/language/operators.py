"""The WHERE operators, in one table: what each applies to, how it is written in
GraphQL, rendered in SQL (:mod:`.operator_sql`) and computed in Polars
(:mod:`.operator_polars`). Pure, and importing no stage of the pipeline: every stage
imports this table.

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
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fraiseql_nb.language import operator_polars as rp
from fraiseql_nb.language import operator_sql as rs
from fraiseql_nb.language.operator_polars import PolarsRenderer
from fraiseql_nb.language.operator_sql import (
    DISTANCES,
    LOOPBACK_RANGES,
    PRIVATE_RANGES,
    SqlRenderer,
    as_vector,
    distance_order,
    escape_like,
    json_array,
    search_value,
    vector_text,
)

__all__ = [
    "DISTANCES",
    "EVERY",
    "LIST",
    "LOOPBACK_RANGES",
    "MAX_DIMENSIONS",
    "MAX_REGEX_LENGTH",
    "NAMED_OPERATORS",
    "NUMBER_LIST",
    "OPERATORS",
    "PRIVATE_RANGES",
    "SPELLINGS",
    "TEXT_LIST",
    "Operator",
    "as_vector",
    "distance_order",
    "escape_like",
    "flattened",
    "has_named_form",
    "json_array",
    "list_operators",
    "scalar_operators",
    "search_value",
    "shown_names",
    "typed_ops",
    "vector_problem",
    "vector_text",
]


#: The operators of having's named form, ``{field: "paypal", gt: 100}``: it tests an output
#: by its name or alias (an alias has no field of its own in the input type).
NAMED_OPERATORS = ("eq", "neq", "gt", "gte", "lt", "lte", "in", "nin", "is_null")


def has_named_form(taken: set[str]) -> bool:
    """Whether a having type over ``taken`` names has the named form (none of its fields
    is one of those names)."""
    return not ({"field", *NAMED_OPERATORS} & taken)


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
        aliases: other spellings of it (FraiseQL's, Hasura's ``_eq``…): they validate, and
            the schema marks them deprecated so completion and GraphiQL show one name.
        negations: names meaning its negation (``nlike`` is ``_not: {like: …}``), each a
            field of the filter; their own spellings are in :data:`SPELLINGS`.
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
    aliases: tuple[str, ...] = ()
    negations: tuple[str, ...] = ()


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
    example = "(such as 10.0.0.1, 10.0.0.0/8 or 2001:db8::/32)"
    if isinstance(value, str) and "%" in value:  # Python reads a zone, inet does not
        return f"{value!r} has a zone index (%…), which PostgreSQL's inet does not hold"
    if isinstance(value, str) and "/" in value and not value.rsplit("/", 1)[1].isdigit():
        return f"{value!r}: write the prefix length after / {example}, not a netmask"
    try:
        ipaddress.ip_interface(value)
    except ValueError:
        return f"{value!r} is not an IP address or subnet {example}"
    return None


#: The most dimensions a pgvector vector has.
MAX_DIMENSIONS = 16_000


def dimensions(pg_type: str | None) -> int | None:
    """The dimensions of a pgvector column type: ``vector(3)`` -> 3."""
    match = re.fullmatch(r"vector\((\d+)\)", pg_type or "")
    return int(match.group(1)) if match else None


def vector_problem(vector: Any, pg_type: str | None = None) -> str | None:
    """What is wrong with a query's vector (for a filter or a nearest-first order), given
    the type of the column it is compared with, if it is one; None when nothing."""
    if not vector:
        return "the vector is empty; give at least one number"
    if len(vector) > MAX_DIMENSIONS:
        return (
            f"the vector has {len(vector):,} dimensions; pgvector holds at most {MAX_DIMENSIONS:,}"
        )
    if any(not _finite(float(v)) for v in vector):
        return "vector components must be finite numbers"
    big = next((v for v in vector if not _float4(float(v))), None)
    if big is not None:
        return f"{big:g} is beyond what a vector holds (4-byte floats, at most ±3.4e38)"
    want = dimensions(pg_type)
    if want is not None and len(vector) != want:
        return f"the vector has {len(vector)} dimensions; {pg_type} holds {want}"
    return None


def _finite(n: float) -> bool:
    return n == n and n not in (float("inf"), float("-inf"))


def _float4(n: float) -> bool:
    """Whether pgvector can store ``n`` (a 4-byte float: it rounds, then must be finite)."""
    try:
        struct.pack("<f", n)  # standard size: raises where a C cast would give inf
    except OverflowError:
        return False
    return True


def _vector_check(value: Any) -> str | None:
    problem = vector_problem(value.get("vector"))
    if problem is None and not _finite(float(value["threshold"])):
        return "the threshold must be a finite number"
    return problem


def _set_check(value: Any) -> str | None:
    return None if _finite(float(value["threshold"])) else "the threshold must be a finite number"


_CONFIG = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")


#: Words of a text search query: PostgreSQL runs out of stack matching a phrase of some
#: 15,000 (a search of more than this many words is not one a person wrote).
MAX_SEARCH_WORDS = 1_000
#: A run of this many "-" (web search's not) overflows PostgreSQL's tsquery stack.
MAX_NOT_RUN = 32


def _search_check(value: Any) -> str | None:
    text, language = search_value(value)
    if not _CONFIG.fullmatch(language):
        return f"{language!r} is not a text search language (such as english or french)"
    words = len(text.split())
    if words > MAX_SEARCH_WORDS:
        return f"the search has {words:,} words; at most {MAX_SEARCH_WORDS:,}"
    return None


def _websearch_check(value: Any) -> str | None:
    problem = _search_check(value)
    if problem is None and "-" * (MAX_NOT_RUN + 1) in search_value(value)[0]:
        return f"the search has a run of more than {MAX_NOT_RUN} '-' (not); PostgreSQL refuses it"
    return problem


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
        Operator("eq", "comparison", "equal to", _ALL, "value", rs.binary("="),
                 rp.binary(lambda a, b: a == b), typed=True, aliases=("_eq",)),
        Operator("neq", "comparison", "not equal to (NULLs never match)", _ALL, "value",
                 rs.binary("<>"), rp.binary(lambda a, b: a != b), typed=True,
                 aliases=("ne", "_neq")),
        Operator("gt", "comparison", "greater than", _ORDERED, "value", rs.binary(">"),
                 rp.binary(lambda a, b: a > b), typed=True, aliases=("_gt",)),
        Operator("gte", "comparison", "greater than or equal to", _ORDERED, "value",
                 rs.binary(">="), rp.binary(lambda a, b: a >= b), typed=True, aliases=("_gte",)),
        Operator("lt", "comparison", "less than", _ORDERED, "value", rs.binary("<"),
                 rp.binary(lambda a, b: a < b), typed=True, aliases=("_lt",)),
        Operator("lte", "comparison", "less than or equal to", _ORDERED, "value",
                 rs.binary("<="), rp.binary(lambda a, b: a <= b), typed=True, aliases=("_lte",)),
        Operator("in", "comparison", "one of (an empty list matches nothing)", _ORDERED,
                 "values", rs.in_, rp.in_(negate=False), typed=True, aliases=("_in",)),
        Operator("nin", "comparison", "none of (an empty list matches everything)", _ORDERED,
                 "values", rs.nin, rp.in_(negate=True), typed=True, aliases=("notin", "_nin")),
        # null
        Operator("isnull", "null", "true: NULL or missing; false: present and not NULL",
                 (*_ALL, LIST), "boolean", rs.isnull, rp.isnull,
                 aliases=("is_null", "_is_null"), negations=("is_not_null", "isnotnull")),
        # json
        Operator("strictly_contains", "json", "JSON containment (@>)", (*_ALL, LIST), "json",
                 rs.strictly_contains, None),
        # text
        Operator("contains", "text", "contains the text (% and _ match literally)", _TEXT,
                 "text", rs.pattern("LIKE", _contains), rp.literal("contains")),
        Operator("icontains", "text", "contains the text, ignoring case", _TEXT, "text",
                 rs.pattern("ILIKE", _contains), rp.like(_contains, caseless=True),
                 caseless=True),
        Operator("startswith", "text", "starts with the text", _TEXT, "text",
                 rs.pattern("LIKE", _starts), rp.literal("starts_with"), aliases=("startsWith",)),
        Operator("istartswith", "text", "starts with the text, ignoring case", _TEXT, "text",
                 rs.pattern("ILIKE", _starts), rp.like(_starts, caseless=True),
                 caseless=True),
        Operator("endswith", "text", "ends with the text", _TEXT, "text",
                 rs.pattern("LIKE", _ends), rp.literal("ends_with"), aliases=("endsWith",)),
        Operator("iendswith", "text", "ends with the text, ignoring case", _TEXT, "text",
                 rs.pattern("ILIKE", _ends), rp.like(_ends, caseless=True), caseless=True),
        Operator("like", "text", "SQL LIKE pattern", _TEXT, "text", rs.pattern("LIKE", str),
                 rp.like(str, caseless=False), check=_pattern_check,
                 aliases=("_like",), negations=("nlike", "_nlike")),
        Operator("ilike", "text", "SQL ILIKE pattern", _TEXT, "text", rs.pattern("ILIKE", str),
                 rp.like(str, caseless=True), caseless=True, check=_pattern_check,
                 aliases=("_ilike",), negations=("nilike", "_nilike")),
        Operator("regex", "text", "POSIX regular expression", _TEXT, "text",
                 rs.pattern("~", str), rp.regex(caseless=False), check=_regex_check,
                 negations=("nregex", "not_matches")),
        Operator("iregex", "text", "POSIX regular expression, ignoring case", _TEXT, "text",
                 rs.pattern("~*", str), rp.regex(caseless=True), caseless=True,
                 check=_regex_check, aliases=("imatches",), negations=("niregex",)),
        # list
        Operator("array_contains", "list", "the list holds all of these", (LIST,), "values",
                 rs.array_contains, None),
        Operator("array_contained_by", "list",
                 "every element of the list is one of these (an empty list is)", (LIST,),
                 "values", rs.array_contained_by, None,
                 aliases=("array_contained_in", "contained_in")),
        Operator("array_overlaps", "list", "the list holds at least one of these", (LIST,),
                 "values", rs.array_overlaps, None),
        Operator("len_eq", "list", "the list has this many elements", (LIST,), "int",
                 rs.length("="), None, negations=("len_neq",)),
        Operator("len_gt", "list", "the list has more elements than this", (LIST,), "int",
                 rs.length(">"), None),
        Operator("len_gte", "list", "the list has at least this many elements", (LIST,), "int",
                 rs.length(">="), None),
        Operator("len_lt", "list", "the list has fewer elements than this", (LIST,), "int",
                 rs.length("<"), None),
        Operator("len_lte", "list", "the list has at most this many elements", (LIST,), "int",
                 rs.length("<="), None),
        # vector distance: pgvector columns, and JSON arrays of numbers (need pgvector)
        Operator("l2_distance", "vector",
                 "within threshold of vector by Euclidean distance (pgvector <->)",
                 (NUMBER_LIST,), "vector", rs.distance("<->"), None, check=_vector_check),
        Operator("cosine_distance", "vector",
                 "within threshold of vector by cosine distance (pgvector <=>)",
                 (NUMBER_LIST,), "vector", rs.distance("<=>"), None, check=_vector_check),
        Operator("inner_product", "vector",
                 "an inner product with vector of at least threshold (pgvector <#>)",
                 (NUMBER_LIST,), "vector", rs.distance("<#>", similarity=True), None,
                 check=_vector_check),
        Operator("jaccard_distance", "vector",
                 "within threshold of values by Jaccard distance (1 - shared / all elements)",
                 (TEXT_LIST,), "text set", rs.jaccard, None, check=_set_check),
        # network addresses: inet/cidr columns, and addresses written as text
        Operator("is_ipv4", "network", "true: an IPv4 address; false: another address",
                 _TEXT, "boolean", rs.address_flag("family({x}) = 4"), None, aliases=("isIPv4",)),
        Operator("is_ipv6", "network", "true: an IPv6 address; false: another address",
                 _TEXT, "boolean", rs.address_flag("family({x}) = 6"), None, aliases=("isIPv6",)),
        Operator("is_private", "network",
                 "true: in a private range (RFC 1918, IPv6 unique local fc00::/7)", _TEXT,
                 "boolean", rs.address_flag(rs.in_ranges(PRIVATE_RANGES)), None),
        Operator("is_loopback", "network", "true: a loopback address (127.0.0.0/8, ::1)",
                 _TEXT, "boolean", rs.address_flag(rs.in_ranges(LOOPBACK_RANGES)), None),
        Operator("in_subnet", "network", "the address is in this subnet (or is it)", _TEXT,
                 "text", rs.address_binary("<<="), None, check=_address_check,
                 aliases=("inrange",)),
        Operator("contains_subnet", "network", "the subnet holds this subnet (or is it)",
                 _TEXT, "text", rs.address_binary(">>="), None, check=_address_check,
                 aliases=("subnet_contains",)),
        Operator("contains_ip", "network", "the subnet holds this address", _TEXT, "text",
                 rs.address_binary(">>="), None, check=_address_check),
        Operator("ip_range_overlap", "network", "the subnet and this one share an address",
                 _TEXT, "text", rs.address_binary("&&"), None, check=_address_check,
                 aliases=("overlaps", "subnet_overlaps")),
        # full-text search: tsvector columns, and text in the query's language
        Operator("matches", "text search",
                 "matches the words (plainto_tsquery; a string, or {query, language})", _TEXT,
                 "search", rs.search("plainto_tsquery"), None, check=_search_check,
                 aliases=("search",)),
        Operator("plain_query", "text search", "matches the words (plainto_tsquery)", _TEXT,
                 "search", rs.search("plainto_tsquery"), None, check=_search_check,
                 aliases=("plainto_tsquery",)),
        Operator("phrase_query", "text search",
                 "matches the words in this order (phraseto_tsquery)", _TEXT, "search",
                 rs.search("phraseto_tsquery"), None, check=_search_check,
                 aliases=("phraseto_tsquery",)),
        Operator("websearch_query", "text search",
                 'matches a web search: "quoted phrase", or, -not (websearch_to_tsquery)',
                 _TEXT, "search", rs.search("websearch_to_tsquery"), None,
                 check=_websearch_check, aliases=("websearch_to_tsquery",)),
    )
}
# fmt: on


def _camel(name: str) -> str | None:
    """``array_contains`` -> ``arrayContains`` (FraiseQL reads a camelCase operator as its
    snake_case name); None for a name without an inner underscore."""
    head, *rest = name.split("_")
    if not head or not rest:
        return None
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _spellings() -> dict[str, tuple[str, bool]]:
    """Every name a filter takes -> (the operator it spells, whether it negates it)."""
    out: dict[str, tuple[str, bool]] = {}
    for op in OPERATORS.values():
        names = [(n, False) for n in (op.name, *op.aliases)]
        names += [(n, True) for n in op.negations]
        for name, negated in list(names):
            camel = _camel(name)
            if camel is not None:
                names.append((camel, negated))
        for name, negated in names:
            if name in out and out[name] != (op.name, negated):
                raise AssertionError(f"{name!r} spells two operators")
            out[name] = (op.name, negated)
    return out


#: Every name a filter takes -> (operator, negated): canonical names, their aliases and
#: camelCase forms, and the names of negations (``nlike`` -> ("like", True)).
SPELLINGS: dict[str, tuple[str, bool]] = _spellings()


def shown_names(op: Operator) -> tuple[str, ...]:
    """The names a filter shows for ``op``: its own, and one per negation (the first)."""
    return (op.name, *op.negations[:1])


def flattened(names: dict[str, str], taken: set[str]) -> dict[str, tuple[str, str]]:
    """FraiseQL's flattened condition keys over ``names`` (name -> scalar): ``revenue_sum_gt``
    -> ("revenue_sum", "gt"), for each one-word name of an operator a name's scalar offers
    (its own, its aliases such as ``ne``, its negations such as ``nlike``: FraiseQL splits a
    key at its last underscore). A key that would mean two things,
    or is a name of ``taken``, is left out: never guessed."""
    out: dict[str, tuple[str, str]] = {}
    twice: set[str] = set()
    for name, scalar in names.items():
        for op in scalar_operators(scalar):
            for spelled in (op.name, *op.aliases, *op.negations):
                if "_" in spelled or not spelled.islower():
                    continue  # FraiseQL splits at the last underscore: one word, lower case
                key = f"{name}_{spelled}"
                if key in taken:
                    continue
                if key in out:
                    twice.add(key)
                out[key] = (name, spelled)
    return {k: v for k, v in out.items() if k not in twice}


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
