"""An ``orderBy`` item in any of the forms users write, as the one form the rest reads:
``{x: DESC}`` (GraphQL takes it for a list of one), ``[{x: DESC}]``, and FraiseQL's
``[{field: "x", direction: DESC}]`` (the direction ASC when left out; a dotted field
sorts by a nested one). Pure."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from graphql import Node

from fraiseql_nb.query.ir import OrderItem
from fraiseql_nb.schema.graphql import DIRECTIONS

if TYPE_CHECKING:
    from fraiseql_nb.query.parse import Context

__all__ = ["NAMED", "named_item", "order_item"]

#: The input fields of FraiseQL's form (left out where the type has a field of that name).
NAMED = ("field", "direction")


def named_item(
    ctx: Context,
    node: Node,
    item: dict[str, Any],
    is_named: Callable[[str], bool],
    *,
    nested: bool = False,
) -> dict[str, Any]:
    """``item`` with FraiseQL's ``field``/``direction`` turned into ``{field: direction}``
    (``is_named(key)``: whether ``key`` is that form's, not a field of the type)."""
    if not any(k in item and is_named(k) for k in NAMED):
        return item
    field = item.get("field") if is_named("field") else None
    direction = item.get("direction") if is_named("direction") else None
    if not isinstance(field, str) or not field:
        raise ctx.error("orderBy: give the field to sort by with its direction", node)
    rest = {k: v for k, v in item.items() if not (k in NAMED and is_named(k))}
    if rest:
        raise ctx.error(
            f"orderBy: {{field: {field!r}, direction: …}} and {', '.join(rest)} in one item;"
            " give each sort key its own item",
            node,
        )
    chosen: Any = direction or "ASC"
    parts = field.split(".") if nested else [field]
    for part in reversed(parts[1:]):
        chosen = {part: chosen}
    return {parts[0]: chosen}


def order_item(ctx: Context, at: Node, name: str, direction: Any, scalar: str) -> OrderItem:
    """One sort key of a fact query (``name`` a column or output, ``scalar`` its type)."""
    if direction is None:
        raise ctx.error(f"orderBy {name}: needs a direction, got null", at)
    descending, nulls_first = DIRECTIONS[direction]
    return OrderItem(path=(name,), scalar=scalar, descending=descending, nulls_first=nulls_first)
