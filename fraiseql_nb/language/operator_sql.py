"""The SQL rendering of each WHERE operator (rows of :data:`.operators.OPERATORS`).
Pure: values go through Params, or psycopg's ``sql.Literal``; identifiers come from the
schema. Imports no stage of the pipeline at run time (every stage reads the table).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from psycopg import sql

if TYPE_CHECKING:
    from fraiseql_nb.query.ir import Compare
    from fraiseql_nb.sql.exprs import FieldSQL
    from fraiseql_nb.sql.params import Params

SqlRenderer = Callable[["FieldSQL", "Compare", "Params"], sql.Composable]


def escape_like(text: str) -> str:
    """Make ``text`` match literally inside a LIKE pattern (escape character: backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def json_array(f: FieldSQL) -> sql.Composable:
    """The field as a jsonb array, or NULL when it is not an array."""
    return sql.SQL("(CASE WHEN jsonb_typeof({j}) = 'array' THEN {j} END)").format(j=f.jsonb)


def binary(symbol: str) -> SqlRenderer:
    def render(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
        if f.pg_type == "jsonb":
            return sql.SQL("({} " + symbol + " {})").format(f.jsonb, p.json(c.value))
        return sql.SQL("({} " + symbol + " {})").format(f.value, p.add(c.value, f.pg_type))

    return render


def in_(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
    if not c.value:
        return sql.SQL("FALSE")
    return sql.SQL("({} = ANY({}))").format(f.value, p.add(list(c.value), f.pg_type + "[]"))


def nin(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
    if not c.value:
        return sql.SQL("TRUE")
    return sql.SQL("({} <> ALL({}))").format(f.value, p.add(list(c.value), f.pg_type + "[]"))


def isnull(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
    return sql.SQL("({} IS NULL)" if c.value else "({} IS NOT NULL)").format(f.text)


def pattern(operator: str, make: Callable[[str], str]) -> SqlRenderer:
    def render(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
        return sql.SQL("({} " + operator + " {})").format(f.text, p.add(make(c.value), "text"))

    return render


def strictly_contains(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
    return sql.SQL("({} @> {})").format(f.jsonb, p.json(c.value))


def array_contains(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
    return sql.SQL("({} @> {})").format(json_array(f), p.json(list(c.value)))


def array_contained_by(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
    return sql.SQL("({} <@ {})").format(json_array(f), p.json(list(c.value)))


def array_overlaps(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
    if not c.value:
        return sql.SQL("FALSE")
    return sql.SQL(
        "EXISTS (SELECT 1 FROM jsonb_array_elements({}) AS e(v) WHERE {} @> jsonb_build_array(e.v))"
    ).format(json_array(f), p.json(list(c.value)))


def length(symbol: str) -> SqlRenderer:
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


def address_flag(test: str) -> SqlRenderer:
    """A yes/no property of the address: ``true`` asks for it, ``false`` for its absence
    (a field that is no address matches neither)."""

    def render(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
        held = sql.SQL(test).format(x=_inet(f))
        return sql.SQL("({})" if c.value else "(NOT ({}))").format(held)

    return render


def in_ranges(ranges: tuple[str, ...]) -> str:
    listed = ", ".join(f"'{r}'::inet" for r in ranges)
    return "{x} <<= ANY(ARRAY[" + listed + "])"


#: RFC 1918 and the IPv6 unique-local range (RFC 4193).
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
LOOPBACK_RANGES = ("127.0.0.0/8", "::1/128")


def address_binary(symbol: str) -> SqlRenderer:
    def render(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
        return sql.SQL("({} " + symbol + " {})").format(_inet(f), p.add(c.value, "inet"))

    return render


def search_value(value: Any) -> tuple[str, str]:
    """A text search operand as (query, language): a string is english."""
    if isinstance(value, str):
        return value, "english"
    return str(value["query"]), str(value.get("language") or "english")


def search(function: str) -> SqlRenderer:
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


def distance(symbol: str, *, similarity: bool = False) -> SqlRenderer:
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


def jaccard(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
    """1 - |A ∩ B| / |A ∪ B| over the distinct elements (as text) of the list and of
    ``values``; two empty sets are at distance 0; a field that is no list is unknown."""
    # The values are deduplicated here, once: per row only the list's own elements are
    # looked up in them (a hashed = ANY), so a row costs its list's length, not the
    # values' (10,000 values over 10,000 users: 11 s with a join per row, now ms).
    values = sorted({str(v) for v in c.value["values"]})
    return sql.SQL(
        "((CASE WHEN jsonb_typeof({j}) = 'array' THEN (SELECT COALESCE(1 - s.shared::float8"
        " / NULLIF(s.own + {n} - s.shared, 0), 0) FROM (SELECT count(*) AS own, count(*)"
        " FILTER (WHERE a.v = ANY({vals})) AS shared FROM (SELECT DISTINCT e AS v FROM"
        " jsonb_array_elements_text({j}) AS e) AS a) AS s) END) <= {t})"
    ).format(
        j=f.jsonb,
        n=sql.Literal(len(values)),
        vals=p.add(values, "text[]"),
        t=p.add(float(c.value["threshold"]), "float8"),
    )


#: Vector orderings (nearest first) and the pgvector operator of each.
DISTANCES = {"l2_distance": "<->", "cosine_distance": "<=>", "inner_product": "<#>"}


def distance_order(f: FieldSQL, distance: str, vector: tuple[float, ...]) -> sql.Composable:
    """The sort key of ``orderBy: {field: {<distance>: vector}}``: ascending is nearest
    first (``<#>`` is the negated inner product: the most similar first)."""
    return sql.SQL("({} " + DISTANCES[distance] + " {}::vector)").format(
        as_vector(f, len(vector)), sql.Literal(vector_text(vector))
    )
