"""After the groups, in Polars: calcs and window functions over the grouped rows (level
by level), QUALIFY and limitPerGroup — what :mod:`fraiseql_nb.sql.groups` says in SQL,
with the same conventions (float8 arithmetic, ``x / 0`` is NULL, ``round`` as
PostgreSQL's numeric round, ties broken on the group keys). The grouped rows are few:
this runs wherever the groups end up (in memory, from disk, on the cluster's driver).
Pure."""

from __future__ import annotations

import polars as pl

from fraiseql_nb.compute.filters import where_expr
from fraiseql_nb.compute.ordering import sort_frame
from fraiseql_nb.compute.window import window_series
from fraiseql_nb.query.ir import (
    AggregateQuery,
    Binary,
    Calc,
    Call,
    Expr,
    GroupWindow,
    Num,
    OrderItem,
    Ref,
    Unary,
)

__all__ = ["after_groups", "calc_expr"]

_ROW = "fq:row"


def after_groups(frame: pl.DataFrame, query: AggregateQuery, timezone: str = "UTC") -> pl.DataFrame:
    """The grouped rows (having applied) with every post column, QUALIFY and
    limitPerGroup applied."""
    if not query.post and query.per_group is None:
        return frame
    keys = [k.name for k in query.group_keys]
    frame = frame.with_row_index(_ROW)
    for level in query.post:
        columns = [_post(frame, p, keys, timezone).alias(p.name) for p in level]
        frame = frame.with_columns(columns)
    if query.qualify is not None:
        frame = frame.filter(where_expr(query.qualify, dict(frame.schema), timezone))
    group = query.per_group
    if group is not None and frame.height:
        order: list[tuple[str, OrderItem | None]] = [(p, None) for p in group.partition_by]
        order += [(o.path[0], o) for o in group.order] + [(k, None) for k in keys]
        ranked = sort_frame(frame, order)
        number = pl.int_range(pl.len())
        if group.partition_by:
            number = number.over(list(group.partition_by))
        frame = ranked.filter(number < group.limit)
    return frame.drop(_ROW)


def _post(
    frame: pl.DataFrame, post: Calc | GroupWindow, keys: list[str], timezone: str
) -> pl.Series:
    if isinstance(post, Calc):
        # with_columns: a calc of numbers only is as many rows as the groups
        return frame.with_columns(calc_expr(post.expr).alias("fq:v"))["fq:v"]
    if post.function == "share":
        value = pl.col(post.field or "").cast(pl.Float64)
        total = value.sum().over(list(post.partition_by)) if post.partition_by else value.sum()
        # NULL where the partition has no value or its total is 0, as x / nullif(total, 0)
        some = value.count().over(list(post.partition_by)) if post.partition_by else value.count()
        share = pl.when((some > 0) & (total != 0)).then(value / total)
        return frame.with_columns(share.alias("fq:v"))["fq:v"]
    return window_series(frame, post, keys, timezone)


def calc_expr(expr: Expr) -> pl.Expr:
    """A calc's expression over the grouped rows' columns, in float64."""
    if isinstance(expr, Num):
        return pl.lit(float(expr.value), dtype=pl.Float64)
    if isinstance(expr, Ref):
        return pl.col(expr.name).cast(pl.Float64)
    if isinstance(expr, Unary):
        operand = calc_expr(expr.operand)
        return -operand if expr.op == "-" else operand
    if isinstance(expr, Binary):
        left, right = calc_expr(expr.left), calc_expr(expr.right)
        if expr.op == "+":
            return left + right
        if expr.op == "-":
            return left - right
        if expr.op == "*":
            return left * right
        return pl.when(right != 0).then(left / right)
    assert isinstance(expr, Call)
    args = [calc_expr(a) for a in expr.args]
    name = expr.function
    if name == "abs":
        return args[0].abs()
    if name == "round":
        digits = int(expr.args[1].value) if len(expr.args) > 1 else 0  # type: ignore[union-attr]
        return _round(args[0], digits)
    if name == "coalesce":
        return pl.coalesce(args)
    if name == "nullif":
        return pl.when(args[0] == args[1]).then(None).otherwise(args[0]).cast(pl.Float64)
    if name == "least":
        return pl.min_horizontal(args)
    return pl.max_horizontal(args)


def _round(value: pl.Expr, digits: int) -> pl.Expr:
    """PostgreSQL's ``round(x::numeric, n)``: the float's decimal of 15 significant digits
    (what float8 to numeric keeps), rounded half away from zero (2.675 -> 2.68, where the
    binary value, 2.67499…, would round down)."""
    scale = 10.0**digits
    shifted = (value.round_sig_figs(15) * scale).round_sig_figs(15)
    return shifted.round(0, mode="half_away_from_zero") / scale
