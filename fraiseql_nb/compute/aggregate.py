"""Aggregates over loaded columns, in memory or streamed from disk: filter, time
buckets, groups, having, order and page, with SQL's semantics (see the package). Pure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from fraiseql_nb.compute.columns import output_schema
from fraiseql_nb.compute.filters import check_caseless, check_finite, check_times, where_expr
from fraiseql_nb.compute.groups import after_groups
from fraiseql_nb.compute.ordering import page, sort_frame
from fraiseql_nb.errors import UnsupportedError
from fraiseql_nb.language.aggregates import AGGREGATES, OUTPUT_DTYPES
from fraiseql_nb.language.vocabulary import CLOCK_BUCKETS, POLARS_TRUNCATE
from fraiseql_nb.query.ir import (
    Aggregate,
    AggregateQuery,
    OrderItem,
    post_reads,
)
from fraiseql_nb.schema.model import FactTable

__all__ = [
    "aggregate_expr",
    "aggregate_plan",
    "bucket",
    "bucket_expr",
    "exact_of",
    "filter_mask",
    "finish_aggregate",
    "groups",
    "run_aggregate",
    "run_aggregate_lazy",
]


_LOOKUP_DAYS = 200_000  # dates spanned (550 years) up to which buckets are looked up


def bucket(times: pl.Series, unit: str, timezone: str) -> pl.Series:
    """Each time's bucket: the first day of its day, week, month… in ``timezone``.

    Truncating 2M timestamps to months costs Polars ~90 ms; their local dates cost
    ~12 ms, and the bucket of every date between the first and the last, looked up
    by position, ~15 ms more. A range too long for a lookup table is truncated.
    """
    dtype = times.dtype
    if unit in CLOCK_BUCKETS:
        return times.to_frame().select(bucket_expr(times.name, dtype, unit, timezone)).to_series()
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None and dtype.time_zone != timezone:
            times = times.dt.convert_time_zone(timezone)
        days = times.dt.date()
    else:
        days = times
    if unit == "day":
        return days
    position = days.to_physical()
    low, high = position.min(), position.max()
    if low is None or high - low > _LOOKUP_DAYS:  # type: ignore[operator]
        return days.dt.truncate(POLARS_TRUNCATE[unit])
    calendar = pl.int_range(low, high + 1, eager=True, dtype=pl.Int32).cast(pl.Date)  # type: ignore[operator]
    return calendar.dt.truncate(POLARS_TRUNCATE[unit]).gather(position - low)


def bucket_expr(name: str, dtype: Any, unit: str, timezone: str) -> pl.Expr:
    """:func:`bucket` as an expression, for a lazy (streaming) query: the same buckets."""
    col = pl.col(name)
    if unit in CLOCK_BUCKETS:  # a time: truncated on the clock of the time zone
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            local = col.dt.convert_time_zone(timezone).dt.truncate(POLARS_TRUNCATE[unit])
            return local.dt.convert_time_zone(dtype.time_zone)
        return col.dt.truncate(POLARS_TRUNCATE[unit])
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None and dtype.time_zone != timezone:
            col = col.dt.convert_time_zone(timezone)
        col = col.dt.date()
    return col if unit == "day" else col.dt.truncate(POLARS_TRUNCATE[unit])


def aggregate_expr(agg: Aggregate, dtypes: dict[str, Any], timezone: str = "UTC") -> pl.Expr:
    """The aggregate's own Polars rendering (its row of the table), cast to its output —
    over the rows its filter passes (SQL's FILTER: a row the filter calls NULL is out)."""
    fn = AGGREGATES.get(agg.function)
    if fn is None or fn.polars is None:  # never answered as another aggregate
        raise UnsupportedError(f"the aggregate {agg.function}")
    passes = filter_mask(agg, dtypes, timezone)
    if passes is not None and fn.over == "rows":  # count: the rows that pass
        return passes.sum().cast(OUTPUT_DTYPES[fn.output]).alias(agg.name)
    col = pl.col(agg.field) if agg.field is not None else pl.lit(None)
    key = pl.col(agg.order) if agg.order is not None else None
    if passes is not None:
        col = col.filter(passes)
        key = key.filter(passes) if key is not None else None
    if key is not None:  # as SQL's ORDER BY <order> ASC NULLS LAST (stable: ids are unique)
        col = col.sort_by(key, nulls_last=True)
    num = col.cast(pl.Float64)
    exact = exact_of(col, num, dtypes.get(agg.field)) if agg.field is not None else num
    value = fn.polars(col, num, exact)
    if fn.output in OUTPUT_DTYPES:  # a list keeps its field's type
        value = value.cast(OUTPUT_DTYPES[fn.output])
    return value.alias(agg.name)


def filter_mask(agg: Aggregate, dtypes: dict[str, Any], timezone: str) -> pl.Expr | None:
    """The rows a conditional aggregate counts (SQL's FILTER: a row its filter calls NULL
    is out), or None when it has no filter."""
    if agg.filter is None:
        return None
    return where_expr(agg.filter, dtypes, timezone).fill_null(False)


def exact_of(col: pl.Expr, num: pl.Expr, dtype: Any) -> pl.Expr:
    """The measure as it is summed and compared: exact decimals (``exact_decimals``) stay
    decimals and integers become 128-bit integers — PostgreSQL adds both exactly (an
    integer's sum is numeric) and rounds once to float64; floats stay float64. (Int128
    sums cost about what Int64 ones do: half a decimal's.)"""
    if isinstance(dtype, pl.Decimal):
        return col
    if dtype is not None and dtype.is_integer():
        return col.cast(pl.Int128)
    return num


def run_aggregate(
    data: pl.DataFrame, query: AggregateQuery, fact: FactTable, *, timezone: str = "UTC"
) -> pl.DataFrame:
    """The output of an aggregate query over the loaded columns ``data``."""
    dtypes = dict(data.schema)
    check_caseless(data, *query.conditions())
    check_times(data)
    check_finite(data)
    lf = data.lazy()
    if query.where is not None:
        lf = lf.filter(where_expr(query.where, dtypes, timezone))
    bucketed = [k for k in query.group_keys if k.source == "bucket"]
    if bucketed:
        # Buckets are computed on the (filtered) rows as Series: see bucket().
        frame = lf.collect()
        frame = frame.with_columns(
            [
                bucket(frame[k.column or ""], k.unit or "day", timezone).alias(k.name)
                for k in bucketed
            ]
        )
        lf = frame.lazy()
    # Lazy: Polars runs the conditional aggregates (SQL's NULL sums) 3x faster so.
    return finish_aggregate(
        _grouped(lf, query, dtypes, timezone).collect(), query, fact, dtypes, timezone
    )


def run_aggregate_lazy(
    lf: pl.LazyFrame,
    query: AggregateQuery,
    fact: FactTable,
    *,
    timezone: str = "UTC",
    grouped_by: Callable[[pl.LazyFrame, dict[str, Any]], tuple[pl.DataFrame, int]] | None = None,
) -> tuple[pl.DataFrame, int]:
    """:func:`run_aggregate` over columns that stay on disk: filtered, bucketed and grouped
    by Polars' streaming engine (projection and predicate pushed into the scan), so only
    the groups are ever in memory; and the scans it took. The caller has run the checks
    from what it knows of the columns (:func:`check_time_bounds`, :func:`check_caseless_by`).

    A percentile needs its group's values at two ranks, which Polars finds holding every
    value: ``grouped_by`` (the filtered and bucketed rows, their dtypes → the groups and
    the scans taken) computes the groups instead, as
    :func:`~fraiseql_nb.compute.percentiles.grouped_by_selection` does within a budget."""
    dtypes = dict(lf.collect_schema())
    lf = _filtered_and_bucketed(lf, query, dtypes, timezone)
    if grouped_by is not None:
        grouped, scans = grouped_by(lf, dtypes)
    else:
        grouped, scans = _grouped(lf, query, dtypes, timezone).collect(engine="streaming"), 1
    return finish_aggregate(grouped, query, fact, dtypes, timezone), scans


def aggregate_plan(
    dtypes: dict[str, Any], query: AggregateQuery, *, timezone: str = "UTC", streaming: bool = False
) -> str:
    """Polars' optimised plan of the aggregate over columns of these dtypes (filter,
    buckets, groups), built over no rows: what :func:`run_aggregate` and
    :func:`run_aggregate_lazy` hand Polars, shown without computing anything."""
    lf = _filtered_and_bucketed(pl.LazyFrame(schema=dtypes), query, dtypes, timezone)
    return _grouped(lf, query, dtypes, timezone).explain(
        engine="streaming" if streaming else "auto"
    )


def _filtered_and_bucketed(
    lf: pl.LazyFrame, query: AggregateQuery, dtypes: dict[str, Any], timezone: str
) -> pl.LazyFrame:
    """The query's rows, with their time buckets as columns: lazily (the streaming path
    and the plan shown for an answer build the same)."""
    if query.where is not None:
        lf = lf.filter(where_expr(query.where, dtypes, timezone))
    bucketed = [k for k in query.group_keys if k.source == "bucket"]
    if bucketed:
        lf = lf.with_columns(
            [
                bucket_expr(
                    k.column or "", dtypes[k.column or ""], k.unit or "day", timezone
                ).alias(k.name)
                for k in bucketed
            ]
        )
    return lf


def groups(frame: pl.DataFrame, query: AggregateQuery, timezone: str = "UTC") -> pl.DataFrame:
    """The groups of rows already filtered and bucketed (the group keys are columns),
    before having, order and page: every group must be whole in ``frame``."""
    return _grouped(frame.lazy(), query, dict(frame.schema), timezone).collect()


def _grouped(
    lf: pl.LazyFrame, query: AggregateQuery, dtypes: dict[str, Any], timezone: str
) -> pl.LazyFrame:
    aggs = [aggregate_expr(a, dtypes, timezone) for a in query.aggregates]
    if query.group_keys:
        return lf.group_by([k.name for k in query.group_keys]).agg(aggs)
    return lf.select(aggs)


def _exact(dtype: Any) -> bool:
    return isinstance(dtype, pl.Decimal) or (dtype is not None and dtype.is_integer())


def finish_aggregate(
    out: pl.DataFrame,
    query: AggregateQuery,
    fact: FactTable,
    dtypes: dict[str, Any],
    timezone: str = "UTC",
) -> pl.DataFrame:
    """Groups to the query's output: having, what is computed after the groups (calcs,
    windows over them, qualify, limitPerGroup), order, page, the output's names and dtypes
    (``dtypes``: the input columns')."""
    if query.having is not None:
        out = out.filter(where_expr(query.having, dict(out.schema)))
    out = after_groups(out, query, timezone)
    order: list[tuple[str, OrderItem | None]] = [(o.path[0], o) for o in query.order]
    order += [(k.name, None) for k in query.group_keys]
    # A sum of exact decimals or integers is exact on both planes: it sorts as it is.
    accumulated = frozenset(
        a.name
        for a in query.aggregates
        if a.function in AGGREGATES
        and AGGREGATES[a.function].accumulated
        and not (a.function == "sum" and _exact(dtypes.get(a.field or "")))
    )
    # A calc or window over an accumulated value carries its rounding too; one over exact
    # values (counts, exact sums) sorts as PostgreSQL sorts it.
    for level in query.post:
        accumulated |= {p.name for p in level if post_reads(p) & accumulated}
    out = page(sort_frame(out, order, computed=accumulated), query.limit, query.offset)
    schema = output_schema(query, fact)
    return out.select(
        [pl.col(source).alias(name).cast(schema[name]) for name, source in query.columns]
    )
