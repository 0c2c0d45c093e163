"""Where IR -> SQL condition. Pure: one renderer per operator, values through Params.

Semantics are SQL's: a comparison with a NULL (or missing, or
wrongly-typed) value is unknown, so ``neq``/``nin``/``_not`` never match
rows whose field is NULL; ``in: []`` matches nothing and ``nin: []``
everything. LIKE-family operators escape ``%``, ``_`` and ``\\`` so user text
matches literally (``like``/``ilike`` take a pattern on purpose).
"""

from __future__ import annotations

from collections.abc import Callable

from psycopg import sql

from fraiseql_nb.query.ir import And, AnyItem, Compare, Not, Or, Where
from fraiseql_nb.sql.exprs import FieldSQL, document_field
from fraiseql_nb.sql.params import Params

__all__ = ["OPERATORS", "compile_where", "escape_like"]

Resolve = Callable[[Compare], FieldSQL]
Renderer = Callable[[FieldSQL, Compare, Params], sql.Composable]

TRUE = sql.SQL("TRUE")
FALSE = sql.SQL("FALSE")


def escape_like(text: str) -> str:
    """Make ``text`` match literally inside a LIKE pattern (escape character: backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def compile_where(
    where: Where, resolve: Resolve, params: Params, *, depth: int = 0
) -> sql.Composable:
    """The SQL condition for ``where``; ``resolve`` tells how to read each compared field."""
    if isinstance(where, And):
        if not where.items:
            return TRUE
        return _join(" AND ", [compile_where(w, resolve, params, depth=depth) for w in where.items])
    if isinstance(where, Or):
        if not where.items:
            return FALSE
        return _join(" OR ", [compile_where(w, resolve, params, depth=depth) for w in where.items])
    if isinstance(where, Not):
        return sql.SQL("(NOT {})").format(compile_where(where.item, resolve, params, depth=depth))
    if isinstance(where, AnyItem):
        return _any_item(where, resolve, params, depth)
    field = resolve(where)
    return OPERATORS[where.op](field, where, params)


def _any_item(where: AnyItem, resolve: Resolve, params: Params, depth: int) -> sql.Composable:
    """EXISTS an element of the list matching the item's conditions (read off the element)."""
    listed = resolve(Compare(path=where.path, op="any", value=None, scalar="JSON"))
    alias = f"__fq_e{depth}"
    element = sql.Identifier(alias, "v")

    def inner(c: Compare) -> FieldSQL:
        return document_field(element, c.path, c.scalar, c.json)

    condition = compile_where(where.item, inner, params, depth=depth + 1)
    return sql.SQL("EXISTS (SELECT 1 FROM jsonb_array_elements({}) AS {}(v) WHERE {})").format(
        _array(listed), sql.Identifier(alias), condition
    )


def _join(sep: str, parts: list[sql.Composable]) -> sql.Composable:
    if len(parts) == 1:
        return parts[0]
    return sql.Composed([sql.SQL("("), sql.SQL(sep).join(parts), sql.SQL(")")])


# ---------------------------------------------------------------- operators


def _binary(symbol: str) -> Renderer:
    def render(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
        if f.pg_type == "jsonb":
            return sql.SQL("({} " + symbol + " {})").format(f.jsonb, p.json(c.value))
        return sql.SQL("({} " + symbol + " {})").format(f.value, p.add(c.value, f.pg_type))

    return render


def _in(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
    if not c.value:
        return FALSE
    return sql.SQL("({} = ANY({}))").format(f.value, p.add(list(c.value), f.pg_type + "[]"))


def _nin(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
    if not c.value:
        return TRUE
    return sql.SQL("({} <> ALL({}))").format(f.value, p.add(list(c.value), f.pg_type + "[]"))


def _isnull(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
    return sql.SQL("({} IS NULL)" if c.value else "({} IS NOT NULL)").format(f.text)


def _pattern(operator: str, make: Callable[[str], str]) -> Renderer:
    def render(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
        return sql.SQL("({} " + operator + " {})").format(f.text, p.add(make(c.value), "text"))

    return render


def _strictly_contains(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
    return sql.SQL("({} @> {})").format(f.jsonb, p.json(c.value))


def _array(f: FieldSQL) -> sql.Composable:
    """The field as a jsonb array, or NULL when it is not an array."""
    return sql.SQL("(CASE WHEN jsonb_typeof({j}) = 'array' THEN {j} END)").format(j=f.jsonb)


def _array_contains(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
    return sql.SQL("({} @> {})").format(_array(f), p.json(list(c.value)))


def _array_overlaps(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
    if not c.value:
        return FALSE
    return sql.SQL(
        "EXISTS (SELECT 1 FROM jsonb_array_elements({}) AS e(v) WHERE {} @> jsonb_build_array(e.v))"
    ).format(_array(f), p.json(list(c.value)))


def _length(symbol: str) -> Renderer:
    def render(f: FieldSQL, c: Compare, p: Params) -> sql.Composable:
        return sql.SQL("(jsonb_array_length({}) " + symbol + " {})").format(
            _array(f), p.add(c.value, "integer")
        )

    return render


#: Operator name -> renderer. Every operator the language has is here.
OPERATORS: dict[str, Renderer] = {
    "eq": _binary("="),
    "neq": _binary("<>"),
    "gt": _binary(">"),
    "gte": _binary(">="),
    "lt": _binary("<"),
    "lte": _binary("<="),
    "in": _in,
    "nin": _nin,
    "isnull": _isnull,
    "contains": _pattern("LIKE", lambda v: f"%{escape_like(v)}%"),
    "icontains": _pattern("ILIKE", lambda v: f"%{escape_like(v)}%"),
    "startswith": _pattern("LIKE", lambda v: f"{escape_like(v)}%"),
    "istartswith": _pattern("ILIKE", lambda v: f"{escape_like(v)}%"),
    "endswith": _pattern("LIKE", lambda v: f"%{escape_like(v)}"),
    "iendswith": _pattern("ILIKE", lambda v: f"%{escape_like(v)}"),
    "like": _pattern("LIKE", str),
    "ilike": _pattern("ILIKE", str),
    "regex": _pattern("~", str),
    "iregex": _pattern("~*", str),
    "strictly_contains": _strictly_contains,
    "array_contains": _array_contains,
    "array_overlaps": _array_overlaps,
    "len_eq": _length("="),
    "len_gt": _length(">"),
    "len_lt": _length("<"),
}
