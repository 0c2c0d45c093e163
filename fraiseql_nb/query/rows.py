"""Build a RowQuery from an entity root field: selection, where, order, paging."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from graphql import FieldNode

from fraiseql_nb.language.operators import DISTANCES, vector_problem
from fraiseql_nb.query.ir import And, Compare, Not, Or, OrderItem, RowQuery, Selection, Where
from fraiseql_nb.query.ordering import named_item
from fraiseql_nb.query.values import TYPED_OPS, check_value
from fraiseql_nb.query.where import build_entity_where, is_empty
from fraiseql_nb.schema.graphql import DIRECTIONS
from fraiseql_nb.schema.model import Entity, Field, FieldType

if TYPE_CHECKING:
    from fraiseql_nb.query.parse import Context

__all__ = ["build_row_query", "check_paging"]


def build_row_query(
    ctx: Context,
    key: str,
    entity: Entity,
    root_name: str,
    nodes: list[FieldNode],
    args: dict[str, Any],
) -> RowQuery:
    node = nodes[0]
    selection = _selection(ctx, ctx.sub_fields(nodes), entity.type)
    if root_name == entity.single_query:
        by_id = _id_value(ctx, entity, args["id"], ctx.argument_node(node, "id"), "id")
        return RowQuery(key=key, entity=entity.name, selection=selection, by_id=by_id, limit=1)

    where = None
    if args.get("where") is not None:
        at = ctx.argument_node(node, "where")
        tree = build_entity_where(ctx, at, args["where"], entity.type)
        where = None if is_empty(tree) else _checked_ids(ctx, at, tree, entity)
    order: list[OrderItem] = []
    at = ctx.argument_node(node, "orderBy")
    for item in args.get("orderBy") or ():
        item = named_item(ctx, at, item, lambda k: entity.type.field(k) is None, nested=True)
        order += _order(ctx, at, item, entity.type, ())
    if entity.identity == "column":
        order = [replace(o, column="id") if o.path == ("id",) else o for o in order]
    limit, offset = check_paging(ctx, node, args)
    after = args.get("after")
    if after is not None:
        after = _id_value(ctx, entity, after, ctx.argument_node(node, "after"), "after")
    collation = args.get("collation")
    if collation is not None and ctx.schema.collations and collation not in ctx.schema.collations:
        raise ctx.error(
            f"unknown collation {collation!r}",
            ctx.argument_node(node, "collation"),
            near=collation,
            choices=ctx.schema.collations,
        )
    return RowQuery(
        key=key,
        entity=entity.name,
        selection=selection,
        where=where,
        order=tuple(order),
        limit=limit,
        offset=offset,
        collation=collation,
        after=after,
    )


def _id_value(ctx: Context, entity: Entity, value: Any, at: Any, arg: str) -> Any:
    """An id argument as the entity's ids are (see ``Entity.identity``), checked before
    any SQL: a uuid, a number in the column type's range, or the documents' own ids."""
    if entity.identity == "column":
        try:
            return check_value(entity.id_type, value)
        except ValueError as exc:
            raise ctx.error(
                f"{arg}: {exc} (ids of {entity.name} are {entity.id_type})", at
            ) from None
    id_field = entity.field("id")
    if id_field is not None and id_field.type.json == "number":
        try:
            return int(value)
        except ValueError:
            raise ctx.error(
                f"{arg}: {value!r} is not an id (ids of {entity.name} are numbers)", at
            ) from None
    return value


def _checked_ids(ctx: Context, at: Any, where: Where, entity: Entity) -> Where:
    """Conditions on the id read the id column when it is the id (it is indexed, and its
    values are what the single query finds); values are checked against its type."""
    if isinstance(where, (And, Or)):
        return replace(where, items=tuple(_checked_ids(ctx, at, w, entity) for w in where.items))
    if isinstance(where, Not):
        return replace(where, item=_checked_ids(ctx, at, where.item, entity))
    if isinstance(where, Compare) and where.path == ("id",) and entity.identity == "column":
        where = replace(where, column="id")
    if isinstance(where, Compare) and where.column is not None and where.op in TYPED_OPS:
        try:
            return replace(where, value=check_value(entity.id_type, where.value))
        except ValueError as exc:
            name = where.path[-1]
            raise ctx.error(f"{name}.{where.op}: {exc} ({name} is {entity.id_type})", at) from None
    return where


def check_paging(
    ctx: Context, node: FieldNode, args: dict[str, Any]
) -> tuple[int | None, int | None]:
    """limit and offset, refused when negative."""
    out = []
    for name in ("limit", "offset"):
        value = args.get(name)
        if value is not None and value < 0:
            raise ctx.error(f"{name} must be 0 or more, got {value}", ctx.argument_node(node, name))
        out.append(value)
    return out[0], out[1]


def _selection(ctx: Context, fields: Any, otype: FieldType) -> tuple[Selection, ...]:
    out: list[Selection] = []
    for key, nodes in fields.items():
        name = nodes[0].name.value
        if name == "__typename":
            out.append(Selection(name=key, key=name, kind="typename", scalar=otype.type_name))
            continue
        field = otype.field(name)
        if field is None:  # unreachable after validation
            raise ctx.error(f"unknown field {name!r}", nodes[0])
        ftype = field.type
        item = ftype.item if ftype.kind == "list" else None
        target = item if item is not None else ftype
        children: tuple[Selection, ...] = ()
        if target.kind == "object":
            children = _selection(ctx, ctx.sub_fields(nodes), target)
        out.append(
            Selection(
                name=key,
                key=field.key,
                kind=ftype.kind,
                scalar=target.scalar if target.kind == "scalar" else None,
                json=target.json if target.kind == "scalar" else None,
                children=children,
                column=field.column,
            )
        )
    return tuple(out)


def _order(
    ctx: Context, node: Any, item: dict[str, Any], otype: FieldType, prefix: tuple[str, ...]
) -> list[OrderItem]:
    out: list[OrderItem] = []
    for name, direction in item.items():
        field = otype.field(name)
        if field is None:  # unreachable after validation
            raise ctx.error(f"unknown orderBy field {name!r}", node)
        path = (*prefix, field.key)
        if isinstance(direction, dict) and field.type.kind == "list":
            out.append(_nearest(ctx, node, name, path, direction, field))
            continue
        if isinstance(direction, dict):
            out += _order(ctx, node, direction, field.type, path)
            continue
        if direction is None:
            raise ctx.error(f"orderBy {name}: needs a direction, got null", node)
        if field.type.kind != "scalar":  # FraiseQL's {field, direction} names any field
            what = (
                "an object: sort by one of its fields"
                if field.type.kind == "object"
                else ("a list: a list of numbers sorts by its distance to a vector")
            )
            raise ctx.error(f"orderBy {'.'.join((*prefix, name))}: {what}", node)
        descending, nulls_first = DIRECTIONS[direction]
        out.append(
            OrderItem(
                path=path,
                scalar=field.type.scalar or "JSON",
                json=field.type.json,
                descending=descending,
                nulls_first=nulls_first,
                column=field.column,
            )
        )
    return out


def _nearest(
    ctx: Context,
    node: Any,
    name: str,
    path: tuple[str, ...],
    given: dict[str, Any],
    field: Field,
) -> OrderItem:
    """``{embedding: {cosine_distance: [..]}}``: nearest first, by one pgvector distance."""
    chosen = {k: v for k, v in given.items() if v is not None}
    if len(chosen) != 1:
        raise ctx.error(
            f"orderBy {name}: give one distance ({', '.join(DISTANCES)}) and its vector", node
        )
    ((distance, vector),) = chosen.items()
    problem = vector_problem(vector, field.pg_type)
    if problem is not None:
        raise ctx.error(f"orderBy {name}.{distance}: {problem}", node)
    return OrderItem(
        path=path,
        scalar="Float",
        distance=distance,
        vector=tuple(float(v) for v in vector),
        column=field.column,
    )
