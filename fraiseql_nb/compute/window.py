"""Window functions over loaded columns: ranks, offsets, running and framed
aggregates, ordered like PostgreSQL's. Pure."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from fraiseql_nb.compute.columns import output_schema
from fraiseql_nb.compute.filters import check_caseless, check_finite, check_times, where_expr
from fraiseql_nb.compute.literals import literal_value
from fraiseql_nb.compute.ordering import page, sort_frame
from fraiseql_nb.errors import UnsupportedError
from fraiseql_nb.language.vocabulary import ROW_ORDER_FUNCTIONS
from fraiseql_nb.query.ir import (
    GroupWindow,
    OrderItem,
    WindowColumn,
    WindowFunction,
    WindowQuery,
)
from fraiseql_nb.schema.model import FactTable

__all__ = ["finish_window", "run_window", "window_series", "window_values"]


def run_window(
    data: pl.DataFrame, query: WindowQuery, fact: FactTable, *, timezone: str = "UTC"
) -> pl.DataFrame:
    """The output of a window query over the loaded columns ``data``."""
    dtypes = dict(data.schema)
    check_caseless(data, query.where)
    check_times(data)
    check_finite(data)
    frame = data
    if query.where is not None:
        frame = frame.filter(where_expr(query.where, dtypes, timezone))
    return finish_window(window_values(frame, query, fact, timezone), query, fact)


def window_values(
    frame: pl.DataFrame, query: WindowQuery, fact: FactTable, timezone: str = "UTC"
) -> pl.DataFrame:
    """``frame`` (filtered rows, in load order) with every window function's value: each
    window partition must be whole in it."""
    frame = frame.with_row_index("fq:row")
    results: dict[str, pl.Series] = {}
    for i, out in enumerate(query.outputs):
        if isinstance(out, WindowFunction):
            ties = [fact.id_column] if fact.id_column else []
            results[value_column(i)] = window_series(frame, out, ties, timezone)
    return frame.with_columns([s.alias(name) for name, s in results.items()])


def value_column(position: int) -> str:
    """Where the window function at ``position`` of the outputs keeps its values. Internal
    names hold a ":", which no GraphQL name can: a user's alias never replaces a column
    the computation reads (``region: lag(…)`` beside ``partitionBy: [region]``)."""
    return f"fq:w{position}"


def finish_window(frame: pl.DataFrame, query: WindowQuery, fact: FactTable) -> pl.DataFrame:
    """Rows with their window values to the query's output: order, page, names, dtypes."""
    order: list[tuple[str, OrderItem | None]] = [(o.path[0], o) for o in query.order]
    order.append((fact.id_column, None) if fact.id_column else ("fq:row", None))
    frame = page(sort_frame(frame, order), query.limit, query.offset)
    schema = output_schema(query, fact)
    columns = []
    for i, o in enumerate(query.outputs):
        source = o.column if isinstance(o, WindowColumn) else value_column(i)
        columns.append(pl.col(source).alias(o.name).cast(schema[o.name]))
    return frame.select(columns)


def window_series(
    frame: pl.DataFrame,
    fn: WindowFunction | GroupWindow,
    ties: list[str],
    timezone: str = "UTC",
) -> pl.Series:
    """The function's value for every row of ``frame`` (numbered in ``fq:row``), in
    ``frame``'s order; a function whose value depends on the order among peers breaks
    ties on ``ties`` (the fact's id; over groups, the group keys)."""
    part = list(fn.partition_by)
    keys: list[tuple[str, OrderItem | None]] = [(p, None) for p in part]
    keys += [(o.path[0], o) for o in fn.order]
    if fn.function in ROW_ORDER_FUNCTIONS:
        keys += [(t, None) for t in ties]
    keys.append(("fq:row", None))
    ordered = sort_frame(frame, keys).with_row_index("fq:i")
    over = part or None

    def by_partition(expr: pl.Expr) -> pl.Expr:
        return expr.over(over) if over else expr

    i = pl.col("fq:i").cast(pl.Int64)
    start = by_partition(i.min())
    n = by_partition(pl.len().cast(pl.Int64))
    number = i - start + 1
    name = fn.function
    if name == "row_number":
        value: pl.Expr = number
    elif name in ("rank", "dense_rank", "percent_rank", "cume_dist"):
        value = _rank(name, fn, i, start, n, by_partition)
    elif name == "ntile":
        value = _ntile(number, n, fn.buckets or 1)
    elif name in ("lag", "lead"):
        assert fn.field is not None
        shift = (fn.offset if fn.offset is not None else 1) * (1 if name == "lag" else -1)
        col = pl.col(fn.field)
        dtype = frame.schema[fn.field]
        if isinstance(dtype, (pl.Enum, pl.Categorical)):
            col, dtype = col.cast(pl.String), pl.String  # a default may be no category
        default = (
            pl.lit(literal_value(fn.default, dtype, timezone), dtype=dtype)
            if fn.default is not None
            else None
        )
        shifted = by_partition(col.shift(shift))
        if default is not None:
            # The default fills positions outside the partition only, not NULL values.
            position = number - 1 - shift
            outside = (position < 0) | (position >= n)
            shifted = pl.when(outside).then(default).otherwise(shifted)
        value = shifted
    else:
        return _back_frame(_framed(ordered, fn, over))
    computed = ordered.select(pl.col("fq:row"), value.alias("fq:value"))
    return _back_frame(computed)


def _rank(
    name: str,
    fn: WindowFunction | GroupWindow,
    i: pl.Expr,
    start: pl.Expr,
    n: pl.Expr,
    by_partition: Callable[[pl.Expr], pl.Expr],
) -> pl.Expr:
    keys = [pl.col(o.path[0]) for o in fn.order]
    first = i == start
    changed = first
    for k in keys:
        changed = changed | by_partition(k.ne_missing(k.shift(1)))
    peer_start = pl.when(changed).then(i).forward_fill()
    rank = peer_start - start + 1
    if name == "rank":
        return rank
    if name == "dense_rank":
        return by_partition(changed.cast(pl.Int64).cum_sum())
    if name == "percent_rank":
        return pl.when(n > 1).then((rank - 1).cast(pl.Float64) / (n - 1)).otherwise(0.0)
    last = by_partition(changed.shift(-1).fill_null(True))
    peer_end = pl.when(last).then(i).backward_fill()
    return (peer_end - start + 1).cast(pl.Float64) / n


def _ntile(number: pl.Expr, n: pl.Expr, buckets: int) -> pl.Expr:
    size = n // buckets
    extra = n % buckets
    big = extra * (size + 1)
    return (
        pl.when(size == 0)
        .then(number)
        .when(number <= big)
        .then((number - 1) // (size + 1) + 1)
        .otherwise(extra + (number - big - 1) // pl.max_horizontal(size, 1) + 1)
    )


def _framed(
    ordered: pl.DataFrame, fn: WindowFunction | GroupWindow, over: list[str] | None
) -> pl.DataFrame:
    """Frame aggregates (running_*, first/last_value) by a rolling window over row positions."""
    kind = fn.function
    if not fn.order:
        if fn.preceding is not None or fn.following is not None:
            raise UnsupportedError(f"{kind} with a frame but no orderBy")
        # No order: the frame is the whole partition.
        expr = _frame_agg(kind, fn.field)
        part = over or []
        value = expr.over(part) if part else expr
        return ordered.select(pl.col("fq:row"), value.alias("fq:value"))
    size = ordered.height + 1
    whole = kind in ("first_value", "last_value") and fn.preceding is None and fn.following is None
    before = fn.preceding if fn.preceding is not None else size
    after = fn.following if fn.following is not None else (size if whole else 0)
    rolled = ordered.rolling(
        index_column="fq:i",
        period=f"{before + after + 1}i",
        offset=f"{-before - 1}i",
        group_by=over,
    ).agg(_frame_agg(kind, fn.field).alias("fq:value"), pl.col("fq:row").last().alias("fq:own"))
    # rolling() yields one row per input row, keyed by its index.
    return rolled.join(ordered.select("fq:i", "fq:row"), on="fq:i").select(
        pl.col("fq:row"), pl.col("fq:value")
    )


def _frame_agg(kind: str, field: str | None) -> pl.Expr:
    if kind == "running_count":
        return pl.col(field).count().cast(pl.Int64) if field else pl.len().cast(pl.Int64)
    assert field is not None
    col = pl.col(field)
    if kind == "first_value":
        return col.first()
    if kind == "last_value":
        return col.last()
    num = col.cast(pl.Float64)
    if kind == "running_sum":
        return pl.when(col.count() > 0).then(num.sum())
    return {"running_avg": num.mean(), "running_min": num.min(), "running_max": num.max()}[kind]


def _back_frame(computed: pl.DataFrame) -> pl.Series:
    """Values keyed by fq:row, put back in the order of the frame they came from."""
    return computed.sort("fq:row")["fq:value"]
