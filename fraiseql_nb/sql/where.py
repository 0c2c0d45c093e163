"""Where IR -> SQL condition. Pure: each comparison is rendered by its operator's row of
:data:`fraiseql_nb.language.operators.OPERATORS` (semantics there), values through Params;
``_and``/``_or``/``_not`` and ``any`` (a list element matching conditions) here.
"""

from __future__ import annotations

from collections.abc import Callable

from psycopg import sql

from fraiseql_nb.language.operators import OPERATORS, escape_like, json_array
from fraiseql_nb.query.ir import And, AnyItem, Compare, Not, Or, Where
from fraiseql_nb.sql.exprs import FieldSQL, document_field
from fraiseql_nb.sql.params import Params

__all__ = ["OPERATORS", "compile_where", "escape_like"]

Resolve = Callable[[Compare], FieldSQL]

TRUE = sql.SQL("TRUE")
FALSE = sql.SQL("FALSE")


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
    return OPERATORS[where.op].sql(field, where, params)


def _any_item(where: AnyItem, resolve: Resolve, params: Params, depth: int) -> sql.Composable:
    """EXISTS an element of the list matching the item's conditions (read off the element)."""
    listed = resolve(Compare(path=where.path, op="any", value=None, scalar="JSON"))
    alias = f"__fq_e{depth}"
    element = sql.Identifier(alias, "v")

    def inner(c: Compare) -> FieldSQL:
        return document_field(element, c.path, c.scalar, c.json)

    condition = compile_where(where.item, inner, params, depth=depth + 1)
    return sql.SQL("EXISTS (SELECT 1 FROM jsonb_array_elements({}) AS {}(v) WHERE {})").format(
        json_array(listed), sql.Identifier(alias), condition
    )


def _join(sep: str, parts: list[sql.Composable]) -> sql.Composable:
    if len(parts) == 1:
        return parts[0]
    return sql.Composed([sql.SQL("("), sql.SQL(sep).join(parts), sql.SQL(")")])
