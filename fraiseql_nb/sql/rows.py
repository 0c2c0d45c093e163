"""RowQuery -> one SELECT over an entity view. Pure.

The statement returns one column, ``data``: a JSON document with exactly the
selected fields under their output names (aliases included), in selection
order, built in SQL so that only what was asked for crosses the wire.
Ordering is on typed values, NULLs last unless asked otherwise, and always
ends with the view's ``id`` so that paging is deterministic.
"""

from __future__ import annotations

from psycopg import sql

from fraiseql_nb.query.ir import Compare, OrderItem, RowQuery, Selection
from fraiseql_nb.schema.model import Entity
from fraiseql_nb.sql.exprs import FieldSQL, document_field, json_path
from fraiseql_nb.sql.params import Params
from fraiseql_nb.sql.where import compile_where

__all__ = ["DATA", "compile_row_query", "order_clause"]

DATA = sql.Identifier("data")
_MAX_BUILD_ARGS = 100  # PostgreSQL's limit on function arguments: 50 key/value pairs


def compile_row_query(query: RowQuery, entity: Entity, params: Params) -> sql.Composed:
    """The SELECT for ``query`` on ``entity``'s view; values go to ``params``."""
    relation = sql.Identifier(entity.schema, entity.relation)
    where: list[sql.Composable] = []
    if query.by_id is not None:
        where.append(
            sql.SQL("{} = {}").format(sql.Identifier("id"), params.add(query.by_id, entity.id_type))
        )
    if query.where is not None:
        where.append(compile_where(query.where, _resolve, params))
    parts: list[sql.Composable] = [
        sql.SQL("SELECT {} AS data FROM {}").format(build_object(query.selection, DATA), relation)
    ]
    if where:
        parts.append(sql.SQL("WHERE {}").format(sql.SQL(" AND ").join(where)))
    parts.append(order_clause(query.order, query.collation))
    if query.limit is not None:
        parts.append(sql.SQL("LIMIT {}").format(params.add(query.limit, "bigint")))
    if query.offset:
        parts.append(sql.SQL("OFFSET {}").format(params.add(query.offset, "bigint")))
    return sql.SQL(" ").join(parts)


def order_clause(order: tuple[OrderItem, ...], collation: str | None = None) -> sql.Composable:
    """ORDER BY the given keys, then ``id``."""
    keys: list[sql.Composable] = []
    for item in order:
        field = document_field(DATA, item.path, item.scalar, item.json)
        expr = field.value
        if collation is not None and field.pg_type == "text":
            expr = sql.SQL("{} COLLATE {}").format(expr, sql.Identifier(collation))
        keys.append(
            sql.SQL("{} {} NULLS {}").format(
                expr,
                sql.SQL("DESC" if item.descending else "ASC"),
                sql.SQL("FIRST" if item.nulls_first else "LAST"),
            )
        )
    keys.append(sql.SQL("{} ASC").format(sql.Identifier("id")))
    return sql.SQL("ORDER BY {}").format(sql.SQL(", ").join(keys))


def build_object(selection: tuple[Selection, ...], base: sql.Composable) -> sql.Composable:
    """A ``json`` object of the selected fields of the document ``base``, in selection order."""
    values = [(s.name, _value(s, base)) for s in selection]
    if 2 * len(values) <= _MAX_BUILD_ARGS:
        args = [sql.SQL("{}, {}").format(sql.Literal(name), v) for name, v in values]
        return sql.SQL("json_build_object({})").format(sql.SQL(", ").join(args))
    # Too many fields for one call: a one-row subquery keeps names and order.
    columns = [sql.SQL("{} AS {}").format(v, sql.Identifier(name)) for name, v in values]
    return sql.SQL("(SELECT row_to_json(o) FROM (SELECT {}) AS o)").format(
        sql.SQL(", ").join(columns)
    )


def _value(sel: Selection, base: sql.Composable) -> sql.Composable:
    if sel.kind == "typename":
        return sql.SQL("{}::text").format(sql.Literal(sel.scalar))
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


def _resolve(compare: Compare) -> FieldSQL:
    return document_field(DATA, compare.path, compare.scalar, compare.json)
