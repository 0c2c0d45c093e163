"""Aggregates and windows computed in parts and merged exactly: what the cluster plane
runs on each partition, and how the parts make the answer. Pure.

A query over many partitions takes one of two paths:

- **merge** — every aggregate is one whose parts merge exactly (``count``, ``sum``,
  ``min``, ``max``, ``avg``, ``stddev``, ``variance``): each partition gives, per group,
  its row count, and per measure its count of values, sum (exact decimals stay
  decimals, integers are summed as Int128), least, greatest, and for a spread its
  least value r and the mean and sum of squared deviations (M2) of its values less r.
  The parts are added up per group; avg is the merged sum over the merged count
  (decimals divided as the single-process engine does); the spread merges by Chan's
  formula ``M2 = Σ M2ᵢ + Σ nᵢ (meanᵢ − mean)²`` about the group's least value, which
  keeps float64's precision where ``Σx² − n·mean²`` — or large values with a small
  spread — would cancel it away.
- **shuffle** — anything else (``count_distinct``, ``median``, percentiles; windows):
  each partition's filtered rows are split by a hash of the group keys (of the window's
  partitionBy), so every group is whole in one bucket; each bucket is then computed by
  the single-process engine, and the buckets are put together. Exact, never estimated.

Having, order and page run after the merge, on the driver (:func:`finish_aggregate`).
"""

from __future__ import annotations

import polars as pl

from fraiseql_nb.compute.aggregate import bucket, exact_of, filter_mask
from fraiseql_nb.compute.filters import check_caseless, check_finite, check_times, where_expr
from fraiseql_nb.language.aggregates import AGGREGATES, shifted
from fraiseql_nb.query.ir import AggregateQuery, WindowFunction, WindowQuery

__all__ = [
    "MERGEABLE",
    "merge",
    "mergeable",
    "partial",
    "prepare",
    "shuffle_keys",
    "split",
]

#: The aggregates whose per-partition parts this module merges exactly.
MERGEABLE = frozenset({"count", "sum", "avg", "min", "max", "stddev", "variance"})


def mergeable(query: AggregateQuery) -> bool:
    """Whether every aggregate of ``query`` merges from per-partition parts (its row says
    "parts", and this module implements it); else rows are shuffled to one worker per
    group."""
    return all(
        a.function in MERGEABLE
        and a.function in AGGREGATES
        and AGGREGATES[a.function].merge == "parts"
        for a in query.aggregates
    )


def shuffle_keys(query: AggregateQuery | WindowQuery) -> list[str] | None:
    """The columns whose hash sends a row to its bucket: the group keys (none: one bucket),
    or the keys every window function partitions by — None when a window function has
    no partitionBy (its partition is the whole table: one process must see every row)."""
    if isinstance(query, AggregateQuery):
        return [k.name for k in query.group_keys]
    functions = [o for o in query.outputs if isinstance(o, WindowFunction)]
    common: set[str] | None = None
    for fn in functions:
        common = set(fn.partition_by) if common is None else common & set(fn.partition_by)
    if not common:
        return None
    first = functions[0].partition_by
    return [k for k in first if k in common]


def prepare(
    data: pl.DataFrame,
    query: AggregateQuery | WindowQuery,
    timezone: str = "UTC",
    columns: list[str] | None = None,
) -> pl.DataFrame:
    """One partition's rows of the query: filtered, with its time buckets as columns.
    Text keys are plain strings, so that parts from other processes line up. With
    ``columns`` (the query's own), only those and the buckets are kept: a shuffle then
    moves what the query reads, not every loaded column."""
    if columns is not None:
        keep = set(columns)
        data = data.select([c for c in data.columns if c in keep])
    conditions = query.conditions() if isinstance(query, AggregateQuery) else (query.where,)
    check_caseless(data, *conditions)
    check_times(data)
    check_finite(data)
    frame = data
    if query.where is not None:
        frame = frame.filter(where_expr(query.where, dict(data.schema), timezone))
    bucketed = []
    if isinstance(query, AggregateQuery):
        bucketed = [k for k in query.group_keys if k.source == "bucket"]
        if bucketed:
            frame = frame.with_columns(
                [
                    bucket(frame[k.column or ""], k.unit or "day", timezone).alias(k.name)
                    for k in bucketed
                ]
            )
    casts = [
        pl.col(n).cast(pl.String)
        for n, t in frame.schema.items()
        if isinstance(t, (pl.Categorical, pl.Enum))
    ]
    return frame.with_columns(casts) if casts else frame


def split(frame: pl.DataFrame, keys: list[str], buckets: int) -> list[pl.DataFrame]:
    """``frame``'s rows in ``buckets`` parts by a hash of ``keys`` (the same in every
    process: Polars' seeded hash), each in the order it had."""
    if buckets <= 1 or not keys:
        return [frame] + [frame.clear() for _ in range(buckets - 1)]
    share = frame.select((pl.struct(keys).hash(seed=0) % buckets).alias("b"))["b"]
    return [frame.filter(share == i) for i in range(buckets)]


# ------------------------------------------------------------------ merge path


def partial(frame: pl.DataFrame, query: AggregateQuery, timezone: str = "UTC") -> pl.DataFrame:
    """One partition's part of each group (``frame`` as :func:`prepare` gives it); a
    conditional aggregate's parts are over the rows its filter passes."""
    dtypes = dict(frame.schema)
    exprs: list[pl.Expr] = []
    for a in query.aggregates:
        passes = filter_mask(a, dtypes, timezone)
        if a.function == "count":
            n = pl.len() if passes is None else passes.sum()
            exprs.append(n.cast(pl.Int64).alias(f"{a.name}:n"))
            continue
        assert a.field is not None
        col = pl.col(a.field) if passes is None else pl.col(a.field).filter(passes)
        # As the single-process engine: decimals and integers exact, floats float64.
        exact = exact_of(col, col.cast(pl.Float64), dtypes.get(a.field))
        exprs.append(col.count().cast(pl.Int64).alias(f"{a.name}:c"))
        if a.function in ("sum", "avg"):
            exprs.append(exact.sum().alias(f"{a.name}:s"))
        elif a.function == "min":
            exprs.append(exact.min().alias(f"{a.name}:s"))
        elif a.function == "max":
            exprs.append(exact.max().alias(f"{a.name}:s"))
        else:  # stddev, variance: moments about the part's least value (see merge)
            values = shifted(exact)
            mean = values.mean()
            exprs.append(exact.min().alias(f"{a.name}:r"))
            exprs.append(mean.alias(f"{a.name}:m"))
            exprs.append(((values - mean) ** 2).sum().alias(f"{a.name}:q"))
    keys = [k.name for k in query.group_keys]
    return frame.group_by(keys).agg(exprs) if keys else frame.select(exprs)


def merge(parts: list[pl.DataFrame], query: AggregateQuery) -> pl.DataFrame:
    """The groups of the whole table from every partition's :func:`partial`: the group
    keys and one column per aggregate, before having, order and page."""
    frame = pl.concat([p for p in parts], how="vertical_relaxed")
    exprs: list[pl.Expr] = []
    for a in query.aggregates:
        if a.function == "count":
            exprs.append(pl.col(f"{a.name}:n").sum().cast(pl.Int64).alias(a.name))
            continue
        c, s = pl.col(f"{a.name}:c").sum(), pl.col(f"{a.name}:s")
        some = pl.when(c > 0).then(c)  # a divisor: NULL where no value (decimals would raise)
        if a.function == "sum":
            value = pl.when(c > 0).then(s.sum())
        elif a.function == "avg":
            if isinstance(frame.schema.get(f"{a.name}:s"), pl.Decimal):
                value = s.sum().cast(pl.Decimal(38, 18)) / some
            else:
                value = s.sum() / some
        elif a.function == "min":
            value = s.min()
        elif a.function == "max":
            value = s.max()
        else:
            # Each part's mean is about its own least value r; about the group's least,
            # it is (r − least) + m, the difference exact (decimals) or nearly (floats).
            n, m, q = pl.col(f"{a.name}:c"), pl.col(f"{a.name}:m"), pl.col(f"{a.name}:q")
            r = pl.col(f"{a.name}:r")
            m = (r - r.min()).cast(pl.Float64) + m
            mean = (n * m).sum() / some
            m2 = (q + n * (m - mean) ** 2).sum()
            var = pl.when(c > 1).then(m2 / (c - 1))
            value = var.sqrt() if a.function == "stddev" else var
        exprs.append(value.cast(pl.Float64).alias(a.name))
    keys = [k.name for k in query.group_keys]
    if keys:
        return frame.group_by(keys).agg(exprs)
    return frame.select(exprs)
