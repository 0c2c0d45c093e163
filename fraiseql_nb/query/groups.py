"""What an aggregate selection computes from its grouped rows: ``calc``, window functions
over the groups, ``share``, the part of ``having`` that tests them (SQL's QUALIFY) and
``limitPerGroup`` — built into the IR once the selection's own outputs are known."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphql import FieldNode, Node

from fraiseql_nb.language.vocabulary import (
    FIELD_TYPED_FUNCTIONS,
    INTEGER_FUNCTIONS,
    ORDERED_FUNCTIONS,
    WINDOW_FUNCTIONS,
)
from fraiseql_nb.query.calc import CalcError, parse_calc
from fraiseql_nb.query.ir import (
    And,
    Calc,
    Compare,
    GroupWindow,
    Not,
    Or,
    OrderItem,
    PerGroup,
    Post,
    Where,
    post_name,
    post_reads,
)
from fraiseql_nb.query.ordering import named_item, order_item
from fraiseql_nb.query.values import check_scalar

if TYPE_CHECKING:
    from fraiseql_nb.query.parse import Context

__all__ = ["MAX_EXPRESSION", "POST_FUNCTIONS", "Outputs", "build_post", "per_group", "split"]

#: The fields of an aggregate selection computed after the groups.
POST_FUNCTIONS = ("calc", "share", *WINDOW_FUNCTIONS)
NUMBERS = ("Int", "BigInt", "Float")
#: The longest calc expression taken by default (``[limits] max_expression_chars``).
MAX_EXPRESSION = 1000


@dataclass
class Outputs:
    """The selection's columns as having, orderBy and the post fields name them."""

    columns: list[tuple[str, str]]  # (output name, internal column)
    scalars: dict[str, str]  # internal column -> its GraphQL scalar
    grouped: list[str]  # the group keys
    is_field: Callable[[str], bool]  # a key or aggregate name of the table
    posts: dict[str, Post] = field(default_factory=dict)

    def source(self, name: str) -> str:
        """The column ``name`` means: an output computed under that alias (a conditional
        aggregate, a calc, a window), else the key or aggregate of that name, else the
        column another alias names."""
        named = dict(self.columns)
        if name in named and ":" in named[name]:
            return named[name]
        if self.is_field(name):
            return name
        return named.get(name, name)

    def known(self, name: str) -> str | None:
        """The selected column ``name`` means, or None (never an internal column: those
        hold a ":", no output name does)."""
        if ":" in name:
            return None
        column = self.source(name)
        return column if column in self.scalars else None


def build_post(
    ctx: Context,
    pending: list[tuple[str, str, FieldNode]],
    row_type: Any,
    outputs: Outputs,
    max_expression: int,
) -> tuple[tuple[Post, ...], ...]:
    """Every post field (output, field name, node), in levels: each reads only columns of
    the groups or of earlier levels. A field reading itself, through others or not, is a
    QueryError naming the loop."""
    for out, _name, _node in pending:  # known before any is built: they may name each other
        outputs.scalars[post_name(out)] = "Float"
    found = {post_name(out): (out, name, node) for out, name, node in pending}
    # Twice: first what each reads (its level), then in level order, each checked against
    # the types of what it reads, which are then known (a lag of text is text).
    for typed in (False, True):
        order = [p.name for level in _levels(ctx, pending, outputs) for p in level]
        for column in order if typed else list(found):
            out, name, node = found[column]
            args = ctx.arguments(row_type.fields[name], node)
            post = _post(ctx, out, name, node, args, outputs, max_expression, typed=typed)
            outputs.posts[post.name] = post
            outputs.scalars[post.name] = _scalar(post, outputs)
    return _levels(ctx, pending, outputs)


def _post(
    ctx: Context,
    out: str,
    name: str,
    node: FieldNode,
    args: dict[str, Any],
    outputs: Outputs,
    max_expression: int,
    *,
    typed: bool,
) -> Post:
    column = post_name(out)
    names = [o for o, _ in outputs.columns]
    if name == "calc":
        text = args["expr"]
        at = ctx.argument_node(node, "expr")
        if len(text) > max_expression:
            raise ctx.error(
                f"calc: the expression has {len(text):,} characters, more than the"
                f" {max_expression:,} [limits] max_expression_chars allows",
                at,
            )

        def resolve(ref: str) -> str | None:
            found = outputs.known(ref)
            if typed and found is not None and outputs.scalars[found] not in NUMBERS:
                raise CalcError(f"{ref} is not a number ({outputs.scalars[found]})")
            return found

        try:
            return Calc(name=column, expr=parse_calc(text, resolve, names))
        except CalcError as exc:
            raise ctx.error(f"{out}: calc({text!r}): {exc}", at) from None
    target = args.get("field")
    field_column = None
    if target is not None:
        field_column = outputs.known(target)
        if field_column is None:
            raise ctx.error(
                f"{name}: field {target!r} is not an output of this selection"
                f" (it has: {', '.join(names)})",
                ctx.argument_node(node, "field"),
            )
    partition = tuple(args.get("partitionBy") or ())
    for key in partition:
        if key not in outputs.grouped:
            raise ctx.error(
                f"{name}: partitionBy {key}, which is not grouped: add groupBy: {{{key}: true}}",
                ctx.argument_node(node, "partitionBy"),
            )
    order = _order(ctx, ctx.argument_node(node, "orderBy"), args.get("orderBy"), outputs)
    if name in ORDERED_FUNCTIONS and not order:
        raise ctx.error(f"{name} over groups needs an orderBy", node)
    for arg in ("preceding", "following", "offset"):
        if args.get(arg) is not None and args[arg] < 0:
            raise ctx.error(
                f"{name}: {arg} must be 0 or more, got {args[arg]}", ctx.argument_node(node, arg)
            )
    if name == "ntile" and args["buckets"] < 1:
        raise ctx.error(
            f"ntile: buckets must be 1 or more, got {args['buckets']}",
            ctx.argument_node(node, "buckets"),
        )
    framed = args.get("preceding") is not None or args.get("following") is not None
    if framed and not order:
        raise ctx.error(f"{name}: a frame (preceding, following) needs an orderBy", node)
    default = args.get("default")
    if typed and field_column is not None:
        scalar = outputs.scalars[field_column]
        if scalar not in NUMBERS and (name == "share" or name.startswith("running_")):
            raise ctx.error(
                f"{name}: field {target!r} is not a number ({scalar})",
                ctx.argument_node(node, "field"),
            )
        if default is not None:
            try:
                default = check_scalar(scalar, default)
            except ValueError as exc:
                raise ctx.error(
                    f"{name}: default {exc} ({target} is {scalar})",
                    ctx.argument_node(node, "default"),
                ) from None
    return GroupWindow(
        name=column,
        function=name,
        field=field_column,
        offset=args.get("offset") if name in ("lag", "lead") else None,
        default=default,
        buckets=args.get("buckets"),
        partition_by=partition,
        order=order,
        preceding=args.get("preceding"),
        following=args.get("following"),
    )


def _order(
    ctx: Context, at: Node, items: list[dict[str, Any]] | None, outputs: Outputs
) -> tuple[OrderItem, ...]:
    out: list[OrderItem] = []
    for item in items or ():
        item = named_item(ctx, at, item, lambda k: not outputs.is_field(k))
        for name, direction in item.items():
            column = outputs.known(name)
            if column is None:
                raise ctx.error(f"orderBy {name}, which is not an output of this selection", at)
            out.append(order_item(ctx, at, column, direction, outputs.scalars[column]))
    return tuple(out)


def _scalar(post: Post, outputs: Outputs) -> str:
    if isinstance(post, Calc) or post.function == "share":
        return "Float"
    if post.function in INTEGER_FUNCTIONS:
        return "Int"
    if post.function in FIELD_TYPED_FUNCTIONS and post.field is not None:
        return outputs.scalars[post.field]
    return "Float"


def _levels(
    ctx: Context, pending: list[tuple[str, str, FieldNode]], outputs: Outputs
) -> tuple[tuple[Post, ...], ...]:
    level: dict[str, int] = {}
    nodes = {post_name(out): node for out, _, node in pending}

    def depth(name: str, path: tuple[str, ...]) -> int:
        if name in level:
            return level[name]
        if name in path:
            loop = " -> ".join(p.removesuffix(":post") for p in (*path[path.index(name) :], name))
            raise ctx.error(f"the outputs read each other in a loop: {loop}", nodes[name])
        inner = [d for d in post_reads(outputs.posts[name]) if d in outputs.posts]
        level[name] = 1 + max((depth(d, (*path, name)) for d in inner), default=0)
        return level[name]

    for name in outputs.posts:
        depth(name, ())
    top = max(level.values(), default=0)
    return tuple(
        tuple(p for n, p in outputs.posts.items() if level[n] == i) for i in range(1, top + 1)
    )


def split(where: Where | None, posts: set[str]) -> tuple[Where | None, Where | None]:
    """``having`` as (SQL's HAVING, SQL's QUALIFY): the conjuncts that test only groups,
    and those that test a post column, tested once those are computed."""
    if where is None:
        return None, None
    items = list(where.items) if isinstance(where, And) else [where]
    before = [w for w in items if not (_tests(w) & posts)]
    after = [w for w in items if _tests(w) & posts]

    def joined(parts: list[Where]) -> Where | None:
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else And(items=tuple(parts))

    return joined(before), joined(after)


def _tests(where: Where) -> set[str]:
    if isinstance(where, Compare):
        return {where.path[0]}
    if isinstance(where, (And, Or)):
        return set().union(*(_tests(w) for w in where.items)) if where.items else set()
    if isinstance(where, Not):
        return _tests(where.item)
    return set()


def per_group(
    ctx: Context, node: FieldNode, value: dict[str, Any] | None, outputs: Outputs
) -> PerGroup | None:
    """``limitPerGroup: {partitionBy, orderBy, limit}``, checked."""
    if value is None:
        return None
    at = ctx.argument_node(node, "limitPerGroup")
    partition = tuple(value["partitionBy"])
    for key in partition:
        if key not in outputs.grouped:
            raise ctx.error(
                f"limitPerGroup: partitionBy {key}, which is not grouped:"
                f" add groupBy: {{{key}: true}}",
                at,
            )
    order = _order(ctx, at, value["orderBy"], outputs)
    if not order:
        raise ctx.error("limitPerGroup needs an orderBy: which rows come first", at)
    if value["limit"] < 0:
        raise ctx.error(f"limitPerGroup: limit must be 0 or more, got {value['limit']}", at)
    return PerGroup(partition_by=partition, order=order, limit=value["limit"])
