"""The JSON object a row query returns per row: the selected fields of the document, in
selection order (nested objects and lists of objects included, a field read from a
column where the schema says so), and the hidden check that no integer field read as
int8 held a string (:data:`~fraiseql_nb.sql.rows.KINDS_KEY`). Pure."""

from __future__ import annotations

from psycopg import sql

from fraiseql_nb.query.ir import Selection
from fraiseql_nb.sql.exprs import json_path

__all__ = ["build_object", "kinds_check"]

_MAX_BUILD_ARGS = 100  # PostgreSQL's limit on function arguments: 50 key/value pairs


def build_object(
    selection: tuple[Selection, ...],
    base: sql.Composable,
    ident: sql.Composable | None = None,
    extra: list[tuple[str, sql.Composable]] | None = None,
) -> sql.Composable:
    """A ``json`` object of the selected fields of the document ``base``, in selection order.

    ``ident`` is the row's id (for the page cursor and a field read from the id column);
    ``extra`` adds hidden keys (name, SQL value) at the end.
    """
    values = [(s.name, _value(s, base, ident)) for s in selection] + list(extra or ())
    if not values:  # every field skipped (@skip, @include): an empty object
        return sql.SQL("'{}'::json")
    pairs = _MAX_BUILD_ARGS // 2
    objects = [
        sql.SQL("json_build_object({})").format(
            sql.SQL(", ").join(
                sql.SQL("{}, {}").format(sql.Literal(name), v) for name, v in values[i : i + pairs]
            )
        )
        for i in range(0, len(values), pairs)
    ]
    if len(objects) == 1:
        return objects[0]
    # Too many fields for one call: the objects' texts joined into one, which keeps every
    # key (a name is a literal here, never an identifier PostgreSQL would cut at 63
    # bytes) and the selection's order.
    inner = [sql.SQL("substr(left(({})::text, -1), 2)").format(o) for o in objects]
    return sql.SQL("('{{' || {} || '}}')::json").format(sql.SQL(" || ', ' || ").join(inner))


def _value(sel: Selection, base: sql.Composable, ident: sql.Composable | None) -> sql.Composable:
    if sel.kind == "typename":
        return sql.SQL("{}::text").format(sql.Literal(sel.scalar))
    if sel.kind == "id":
        assert ident is not None
        return ident
    if sel.column is not None and sel.kind == "list":
        return sql.SQL("({}::text)::jsonb").format(sql.Identifier("v", sel.column))  # a vector
    if sel.column is not None:
        return sql.Identifier("v", sel.column)
    value = json_path(base, (sel.key,))
    if sel.kind == "object" and sel.children:
        return sql.SQL("(CASE WHEN jsonb_typeof({v}) = 'object' THEN {o} END)").format(
            v=value, o=build_object(sel.children, value)
        )
    if sel.kind == "list" and sel.children:
        element = sql.Identifier("e", "v")
        item = sql.SQL("(CASE WHEN jsonb_typeof({e}) = 'object' THEN {o} END)").format(
            e=element, o=build_object(sel.children, element)
        )
        return sql.SQL(
            "(CASE WHEN jsonb_typeof({v}) = 'array' THEN COALESCE((SELECT json_agg({i} ORDER BY"
            " e.n) FROM jsonb_array_elements({v}) WITH ORDINALITY AS e(v, n)), '[]'::json) END)"
        ).format(v=value, i=item)
    return value


def kinds_check(base: sql.Composable, paths: list[tuple[str, ...]]) -> sql.Composable:
    """True when none of the fields read as int8 is a JSON string (see :data:`KINDS_KEY`)."""
    checks = [
        sql.SQL("jsonb_typeof({}) IS DISTINCT FROM 'string'").format(json_path(base, path))
        for path in dict.fromkeys(paths)
    ]
    return sql.SQL("({})").format(sql.SQL(" AND ").join(checks))
