"""Build AggregateQuery and WindowQuery IR from fact-table root fields."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from graphql import FieldNode, Node, get_named_type

from fraiseql_nb.language.aggregates import AGGREGATES
from fraiseql_nb.language.operators import flattened, has_named_form
from fraiseql_nb.language.vocabulary import ORDERED_FUNCTIONS
from fraiseql_nb.query.groups import POST_FUNCTIONS, Outputs, build_post, per_group, split
from fraiseql_nb.query.ir import (
    Aggregate,
    AggregateQuery,
    And,
    Compare,
    GroupKey,
    Not,
    Or,
    OrderItem,
    Where,
    WindowColumn,
    WindowFunction,
    WindowQuery,
    filtered_name,
    post_name,
)
from fraiseql_nb.query.ordering import named_item, order_item
from fraiseql_nb.query.rows import check_paging
from fraiseql_nb.query.values import TYPED_OPS, check_scalar, check_value
from fraiseql_nb.query.where import build_column_where, is_empty
from fraiseql_nb.schema.factquery import bare_distinct, having_names, where_names
from fraiseql_nb.schema.model import FactTable

if TYPE_CHECKING:
    from fraiseql_nb.query.parse import Context

__all__ = ["build_aggregate_query", "build_window_query", "parse_aggregate"]


# ---------------------------------------------------------------- aggregate


def parse_aggregate(fact: FactTable, name: str) -> Aggregate | None:
    """The aggregate an output field name stands for, or None when it is not one."""
    rows = AGGREGATES.get(name)
    if rows is not None and rows.over == "rows":
        return Aggregate(name=name, function=name)
    if name == "count_distinct" and bare_distinct(fact) is not None:
        return Aggregate(name=name, function=name, field=bare_distinct(fact))
    for fn in AGGREGATES.values():
        suffix = f"_{fn.name}"
        if fn.over == "rows" or not name.endswith(suffix):
            continue
        field = name[: -len(suffix)]
        if fn.over == "column":
            known = fact.scalar_of(field) is not None and field not in fact.buckets
            known = known and (not fn.applies or fact.scalar_of(field) in fn.applies)
        else:
            known = any(m.name == field for m in fact.measures)
        if known:
            order = (fact.id_column or field) if fn.ordered else None
            return Aggregate(
                name=name, function=fn.name, field=field, percentile=fn.percentile, order=order
            )
    return None


def _group_keys(fact: FactTable) -> dict[str, GroupKey]:
    keys: dict[str, GroupKey] = {}
    for col in fact.key_columns:
        keys[col.name] = GroupKey(name=col.name, source="column")
    for dim in fact.dimensions:
        keys[dim.name] = GroupKey(name=dim.name, source="dimension")
    for name, (column, unit) in fact.buckets.items():
        keys[name] = GroupKey(name=name, source="bucket", column=column, unit=unit)
    return keys


def build_aggregate_query(
    ctx: Context, key: str, fact: FactTable, nodes: list[FieldNode], args: dict[str, Any]
) -> AggregateQuery:
    node = nodes[0]
    universe = _group_keys(fact)
    grouped = _grouped(ctx, node, fact, args.get("groupBy") or {})
    group_keys = tuple(universe[name] for name in grouped)
    row_type = _row_type(ctx, fact.aggregate_query)

    columns: list[tuple[str, str]] = []
    pending: list[tuple[str, str, FieldNode]] = []
    aggregates: dict[str, Aggregate] = {}
    typenames: list[tuple[int, str, str]] = []
    for out, fnodes in ctx.sub_fields(nodes).items():
        name = fnodes[0].name.value
        if name == "__typename":
            typenames.append((len(columns) + len(typenames), out, f"{fact.type_stem}Aggregate"))
            continue
        if name in universe:
            if name not in grouped:
                raise ctx.error(
                    f"{name} is selected but not grouped: add groupBy: {{{name}: true}}", fnodes[0]
                )
        elif name in POST_FUNCTIONS and parse_aggregate(fact, name) is None:
            pending.append((out, name, fnodes[0]))  # built once every output is known
            name = post_name(out)
        else:
            agg = parse_aggregate(fact, name)
            if agg is None:  # __typename, or unreachable after validation
                raise ctx.error(
                    f"{name} is not a group key or an aggregate of {fact.name}", fnodes[0]
                )
            fargs = ctx.arguments(row_type.fields[name], fnodes[0])  # type: ignore[union-attr]
            condition = _where(ctx, fnodes[0], fact, fargs, "filter")
            if condition is not None:
                agg = replace(agg, name=filtered_name(out), filter=condition)
                name = agg.name
            aggregates.setdefault(name, agg)
        columns.append((out, name))
    if not columns:
        but = " but __typename" if typenames else ""
        raise ctx.error(f"{fact.aggregate_query} selects nothing{but}", node)

    outputs = Outputs(
        columns=columns,
        scalars={
            **{k: fact.scalar_of(k) or "String" for k in grouped},
            **{n: AGGREGATES[a.function].output for n, a in aggregates.items()},
        },
        grouped=grouped,
        is_field=lambda n: n in universe or parse_aggregate(fact, n) is not None,
    )
    post = build_post(ctx, pending, row_type, outputs, ctx.max_expression)
    source = outputs.source

    def output_scalar(name: str, what: str, at: Node) -> str:
        if ":" in name:  # the planes' own columns (x:post, x:filtered): no output's name
            raise ctx.error(f"{what}: {name!r} is not an output's name", at)
        name = source(name)
        if name in outputs.scalars:
            return outputs.scalars[name]
        if name in universe:
            raise ctx.error(
                f"{what} on {name}, which is not grouped: add groupBy: {{{name}: true}}", at
            )
        raise ctx.error(f"{what} on {name}, which is not selected: add it to the selection", at)

    where = _where(ctx, node, fact, args)
    having = None
    if args.get("having") is not None:
        at = ctx.argument_node(node, "having")
        names = having_names(fact)
        tree = build_column_where(
            ctx,
            at,
            args["having"],
            lambda name: output_scalar(name, "having", at),
            flattened(names, set(names)),
            named=has_named_form(set(names)),
        )
        having = None if is_empty(tree) else _checked(ctx, at, _sourced(tree, source), fact)
    having, qualify = split(having, set(outputs.posts))
    order: list[OrderItem] = []
    at = ctx.argument_node(node, "orderBy")
    for item in args.get("orderBy") or ():
        item = named_item(ctx, at, item, lambda k: k not in universe)
        for name, direction in item.items():
            scalar = output_scalar(name, "orderBy", at)
            order.append(order_item(ctx, at, source(name), direction, scalar))
    limit, offset = check_paging(ctx, node, args)
    return AggregateQuery(
        key=key,
        fact=fact.name,
        columns=tuple(columns),
        group_keys=group_keys,
        aggregates=tuple(aggregates.values()),
        where=where,
        having=having,
        order=tuple(order),
        limit=limit,
        offset=offset,
        typenames=tuple(typenames),
        post=post,
        qualify=qualify,
        per_group=per_group(ctx, node, args.get("limitPerGroup"), outputs),
    )


def _grouped(ctx: Context, node: FieldNode, fact: FactTable, group_by: dict[str, Any]) -> list[str]:
    """The group keys asked for: ``{category: true}``, and FraiseQL's ``{occurred_at: "day"}``
    for the bucket ``occurred_at_day``."""
    out: list[str] = []
    for name, on in group_by.items():
        if isinstance(on, str):
            bucket = f"{name}_{on}"
            if bucket not in fact.buckets:
                units = [u for c, u in fact.buckets.values() if c == name]
                raise ctx.error(
                    f"groupBy {name}: {on!r} is not a bucket of {name} ({', '.join(units)})",
                    ctx.argument_node(node, "groupBy"),
                )
            name = bucket
        if on and name not in out:
            out.append(name)
    # In the schema's order, as GraphQL gives the other forms: one meaning, one query.
    order = list(_group_keys(fact))
    return sorted(out, key=order.index)


def _sourced(where: Where, source: Callable[[str], str]) -> Where:
    """``where`` with each name it tests replaced by the output column it means."""
    if isinstance(where, (And, Or)):
        return replace(where, items=tuple(_sourced(w, source) for w in where.items))
    if isinstance(where, Not):
        return replace(where, item=_sourced(where.item, source))
    if isinstance(where, Compare):
        return replace(where, path=(source(where.path[0]), *where.path[1:]))
    return where


# ------------------------------------------------------------------- window


def build_window_query(
    ctx: Context, key: str, fact: FactTable, nodes: list[FieldNode], args: dict[str, Any]
) -> WindowQuery:
    node = nodes[0]
    row_type = _row_type(ctx, fact.window_query)
    partition = tuple(args.get("partitionBy") or ())
    order = _window_order(ctx, ctx.argument_node(node, "orderBy"), fact, args.get("orderBy"))
    outputs: list[WindowColumn | WindowFunction] = []
    typenames: list[tuple[int, str, str]] = []
    for out, fnodes in ctx.sub_fields(nodes).items():
        fnode = fnodes[0]
        name = fnode.name.value
        if name == "__typename":
            typenames.append((len(outputs) + len(typenames), out, f"{fact.type_stem}WindowRow"))
            continue
        if name in fact.row_columns:
            outputs.append(WindowColumn(name=out, column=name))
            continue
        fargs = ctx.arguments(row_type.fields[name], fnode)  # type: ignore[union-attr]
        own_order = fargs.get("orderBy")
        fn_order = (
            _window_order(ctx, ctx.argument_node(fnode, "orderBy"), fact, own_order)
            if own_order is not None
            else order
        )
        own_partition = fargs.get("partitionBy")
        if name in ORDERED_FUNCTIONS and not fn_order:
            raise ctx.error(
                f"{name} needs an order: give the query or the function an orderBy", fnode
            )
        for arg in ("preceding", "following", "offset"):
            if fargs.get(arg) is not None and fargs[arg] < 0:
                raise ctx.error(
                    f"{name}: {arg} must be 0 or more, got {fargs[arg]}",
                    ctx.argument_node(fnode, arg),
                )
        if name == "ntile" and fargs["buckets"] < 1:
            raise ctx.error(
                f"ntile: buckets must be 1 or more, got {fargs['buckets']}",
                ctx.argument_node(fnode, "buckets"),
            )
        outputs.append(
            WindowFunction(
                name=out,
                function=name,
                field=fargs.get("field"),
                offset=fargs.get("offset") if name in ("lag", "lead") else None,
                default=_default(
                    ctx,
                    ctx.argument_node(fnode, "default"),
                    fact,
                    name,
                    fargs.get("field"),
                    fargs.get("default"),
                ),
                buckets=fargs.get("buckets"),
                partition_by=tuple(own_partition) if own_partition is not None else partition,
                order=fn_order,
                preceding=fargs.get("preceding"),
                following=fargs.get("following"),
            )
        )
    if not outputs:
        but = " but __typename" if typenames else ""
        raise ctx.error(f"{fact.window_query} selects nothing{but}", node)
    limit, offset = check_paging(ctx, node, args)
    return WindowQuery(
        key=key,
        fact=fact.name,
        outputs=tuple(outputs),
        where=_where(ctx, node, fact, args),
        partition_by=partition,
        order=order,
        limit=limit,
        offset=offset,
        typenames=tuple(typenames),
    )


# ------------------------------------------------------------------ helpers


def _row_type(ctx: Context, query: str) -> Any:
    """The object type a fact query's rows are (its name is the table's, or another when
    an entity took that one)."""
    return get_named_type(ctx.gql.query_type.fields[query].type)  # type: ignore[union-attr]


def _where(
    ctx: Context, node: FieldNode, fact: FactTable, args: dict[str, Any], arg: str = "where"
) -> Where | None:
    """A condition on the fact's rows: the query's ``where``, or a conditional aggregate's
    ``filter`` (None: none)."""
    if args.get(arg) is None:
        return None
    at = ctx.argument_node(node, arg)
    names = where_names(fact)
    tree = build_column_where(
        ctx,
        at,
        args[arg],
        lambda name: fact.scalar_of(name) or "String",
        flattened(names, set(names)),
    )
    return None if is_empty(tree) else _checked(ctx, at, tree, fact)


def _checked(ctx: Context, at: Node, where: Where, fact: FactTable) -> Where:
    """``where`` with every value compared to a column checked against the column's type."""
    if isinstance(where, (And, Or)):
        items = tuple(_checked(ctx, at, w, fact) for w in where.items)
        return replace(where, items=items)
    if isinstance(where, Not):
        return replace(where, item=_checked(ctx, at, where.item, fact))
    if not isinstance(where, Compare) or where.op not in TYPED_OPS:
        return where
    column = fact.column(where.path[0])
    if column is None:
        return where
    try:
        return replace(where, value=check_value(column.pg_type, where.value))
    except ValueError as exc:
        raise ctx.error(f"{where.path[0]}.{where.op}: {exc}", at) from None


def _default(
    ctx: Context, at: Node, fact: FactTable, fn: str, field: str | None, value: Any
) -> Any:
    """A lag/lead ``default`` (typed JSON in GraphQL), checked against its field's type."""
    if value is None or field is None:
        return value
    column = fact.column(field)
    try:
        value = check_scalar(fact.scalar_of(field) or "String", value)
        return check_value(column.pg_type, value) if column is not None else value
    except ValueError as exc:
        raise ctx.error(f"{fn}: default {exc} ({field} is {_kind(fact, field)})", at) from None


def _kind(fact: FactTable, name: str) -> str:
    column = fact.column(name)
    return column.pg_type if column is not None else (fact.scalar_of(name) or "String")


def _window_order(
    ctx: Context, at: Node, fact: FactTable, items: list[dict[str, Any]] | None
) -> tuple[OrderItem, ...]:
    out: list[OrderItem] = []
    for item in items or ():
        item = named_item(ctx, at, item, lambda k: k not in fact.row_columns)
        for name, direction in item.items():
            if name not in fact.row_columns:  # FraiseQL's {field, direction} names anything
                columns = ", ".join(fact.row_columns)
                raise ctx.error(f"unknown orderBy field {name!r} (columns: {columns})", at)
            out.append(order_item(ctx, at, name, direction, fact.scalar_of(name) or "String"))
    return tuple(out)
