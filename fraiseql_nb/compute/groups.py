"""After the groups, in Polars: calcs and window functions over the grouped rows (level
by level), QUALIFY and limitPerGroup — what :mod:`fraiseql_nb.sql.groups` says in SQL,
with the same conventions (float8 arithmetic, ``x / 0`` is NULL, ``round`` as
PostgreSQL's numeric round, ties broken on the group keys). The grouped rows are few:
this runs wherever the groups end up (in memory, from disk, on the cluster's driver).
Pure."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Context, Decimal

import polars as pl

from fraiseql_nb.compute.filters import where_expr
from fraiseql_nb.compute.ordering import sort_frame
from fraiseql_nb.compute.window import window_series
from fraiseql_nb.errors import UnsupportedError
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

__all__ = ["after_groups", "calc_series"]

_ROW = "fq:row"
_WIDE = Context(prec=400)  # every digit of a float8's 15-digit decimal, rounded anywhere


def after_groups(frame: pl.DataFrame, query: AggregateQuery, timezone: str = "UTC") -> pl.DataFrame:
    """The grouped rows (having applied) with every post column, QUALIFY and
    limitPerGroup applied."""
    if not query.post and query.per_group is None:
        return frame
    keys = [k.name for k in query.group_keys]
    # The groups in one order whatever order the group-by gave them: a partition's total
    # (share) adds its floats in that order, so every run gives the same last digit.
    frame = sort_frame(frame, [(k, None) for k in keys]).with_row_index(_ROW)
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
        return calc_series(post.expr, frame)
    if post.function == "share":
        value = pl.col(post.field or "").cast(pl.Float64)
        over = list(post.partition_by)
        total = value.sum().over(over) if over else value.sum()
        some = value.count().over(over) if over else value.count()
        # The total as a column of its own: Polars divides by a broadcast value as a
        # multiplication by its reciprocal, a last digit off PostgreSQL's division.
        # (a Series of every row's total, not a broadcast value Polars keeps as one).
        parts = pl.DataFrame(
            {
                name: _whole(frame.select(e).to_series(), frame.height)
                for name, e in (("v", value), ("t", total), ("n", some))
            }
        )
        share = pl.when((pl.col("n") > 0) & (pl.col("t") != 0)).then(pl.col("v") / pl.col("t"))
        return parts.select(share.alias("fq:v"))["fq:v"]
    return window_series(frame, post, keys, timezone)


def _whole(series: pl.Series, n: int) -> pl.Series:
    """``series`` as ``n`` values (one value, broadcast, is repeated)."""
    if series.len() == n:
        return series
    return pl.repeat(series[0], n, dtype=series.dtype, eager=True)


def calc_series(expr: Expr, frame: pl.DataFrame) -> pl.Series:
    """A calc's values over the grouped rows, as PostgreSQL's float8 computes them: each
    operation on whole columns (a column divided by another divides each value; by a
    broadcast number Polars would multiply by its reciprocal, a last digit off), NULL
    where ``x / 0``, and an overflow or underflow refused, as PostgreSQL refuses it."""
    n = frame.height
    if isinstance(expr, Num):
        return pl.repeat(float(expr.value), n, dtype=pl.Float64, eager=True)
    if isinstance(expr, Ref):
        return frame[expr.name].cast(pl.Float64)
    if isinstance(expr, Unary):
        operand = calc_series(expr.operand, frame)
        return -operand if expr.op == "-" else operand
    args = pl.DataFrame(
        {f"a{i}": calc_series(a, frame) for i, a in enumerate(_operands(expr))},
        schema={f"a{i}": pl.Float64 for i in range(len(_operands(expr)))},
    )
    a = [pl.col(f"a{i}") for i in range(args.width)]
    if isinstance(expr, Binary):
        value = {"+": a[0] + a[1], "-": a[0] - a[1], "*": a[0] * a[1]}.get(expr.op)
        if value is None:
            value = pl.when(a[1] != 0).then(a[0] / a[1])
        out = args.with_columns(value.alias("r"))
        _check_range(out, expr.op)
        return out["r"]
    assert isinstance(expr, Call)
    name = expr.function
    if name == "abs":
        value = a[0].abs()
    elif name == "round":
        digits = int(expr.args[1].value) if len(expr.args) > 1 else 0  # type: ignore[union-attr]
        return args["a0"].map_elements(lambda x: _round(x, digits), return_dtype=pl.Float64)
    elif name == "coalesce":
        value = pl.coalesce(a)
    elif name == "nullif":
        value = pl.when(a[0] == a[1]).then(None).otherwise(a[0]).cast(pl.Float64)
    elif name == "least":
        value = pl.min_horizontal(a)
    else:
        value = pl.max_horizontal(a)
    return args.select(value.alias("r"))["r"]


def _operands(expr: Expr) -> tuple[Expr, ...]:
    if isinstance(expr, Binary):
        return (expr.left, expr.right)
    if isinstance(expr, Call):
        return expr.args[:1] if expr.function == "round" else expr.args
    return ()


def _check_range(out: pl.DataFrame, op: str) -> None:
    """PostgreSQL refuses a float8 result out of range ("value out of range"): the arrow
    plane declines it too (auto then says what PostgreSQL says)."""
    finite = pl.col("a0").is_finite() & pl.col("a1").is_finite()
    over = (~pl.col("r").is_finite()) & finite
    under = pl.lit(False)
    if op in ("*", "/"):
        under = (pl.col("r") == 0) & (pl.col("a0") != 0) & (pl.col("a1") != 0)
    if out.select((over | under).fill_null(False).any()).item():
        raise UnsupportedError("a calc whose value is out of float8's range")


def _round(value: float, digits: int) -> float:
    """PostgreSQL's ``round(x::numeric, n)::float8``: the decimal of 15 significant digits
    that float8 to numeric keeps, rounded half away from zero (2.675 -> 2.68, where the
    binary value, 2.67499…, would round down), read back as the nearest float8."""
    exact = Decimal(f"{value:.15g}")
    return float(exact.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP, context=_WIDE))
