"""Percentiles over more values than memory holds, exact: selected by ranges of value.

A percentile needs two values of its group at given ranks, not every value at once.
One streaming scan computes the query's other aggregates and, per group, how many
values each percentile has and their least and greatest; each further scan counts the
values of every group's interval in buckets of value (a histogram per group) and keeps
the one bucket holding the wanted ranks, until the values left in the intervals fit the
budget; a last scan gathers them, and the ranks are read off them sorted. A scan holds
what the budget pays for: many groups take several scans a level (and their values are
gathered in shares), and so many that the caller's limit of scans would be passed are
declined after the first scan. The answer is
interpolated as Polars interpolates (``quantile(p, "linear")``), so it is the in-memory
engine's to the bit. Values are finite (the planes decline NaN and infinities). Pure.
"""

from __future__ import annotations

import functools
from typing import Any

import polars as pl

from fraiseql_nb.compute.aggregate import aggregate_expr, filter_mask
from fraiseql_nb.errors import UnsupportedError
from fraiseql_nb.language.aggregates import AGGREGATES, OUTPUT_DTYPES
from fraiseql_nb.query.ir import Aggregate, AggregateQuery

__all__ = ["grouped_by_selection", "nulls_shift_rank"]

# A histogram cell in memory while Polars' streaming engine groups a scan's rows into
# them (its hash tables per thread): measured about 1 KB a cell (0.5-2 KB, 65,536 to 1M).
_CELL_BYTES = 1024
# A gathered value while a streaming scan collects it with its group's number, then
# sorted in a list per group: measured 80-100 bytes.
_GATHERED_BYTES = 96
_MIN_BUCKETS, _MAX_BUCKETS = 16, 4096  # per group and level
_MAX_LEVELS = 8  # histogram scans before the values left are gathered, whatever they take

# Columns of the work tables (the group keys are the query's names, never these).
_GROUP = "__pct_group"  # the one group of a query without group keys
_WHICH = "__pct_which"  # which percentile aggregate of the query
_ID = "__pct_id"  # a group and percentile, numbered: what the later scans carry
_VALUE = "__pct_value"
_BUCKET = "__pct_bucket"


@functools.cache
def nulls_shift_rank() -> bool:
    """Whether this Polars' linear quantile counts the NULLs in its rank arithmetic (2.1
    does: 0.1 of 0, 1, 2 and one NULL is 0.19999999999999996 there; 2.2 reads 0.2)."""
    return pl.Series([0.0, 1.0, 2.0, None]).quantile(0.1, "linear") != 0.2


def grouped_by_selection(
    lf: pl.LazyFrame,
    query: AggregateQuery,
    dtypes: dict[str, Any],
    timezone: str,
    budget_bytes: int,
    max_scans: int | None = None,
) -> tuple[pl.DataFrame, int]:
    """The query's groups over ``lf`` (its rows filtered and bucketed, the group keys
    columns), as the in-memory engine computes them — with its percentiles selected
    within about ``budget_bytes`` of histograms and gathered values (the plane gives at
    least 1 MB; less forces more levels), many groups a share of them per scan — and the
    scans of ``lf`` it took. ``dtypes``: the columns' before bucketing.

    Raises:
        UnsupportedError: the groups need more than ``max_scans`` scans within the budget
            (told after the first scan, before the others).
    """
    budget = max(budget_bytes, 1)
    cells_max = max(budget // _CELL_BYTES, 1)  # histogram cells a scan may hold
    values_max = max(budget // _GATHERED_BYTES, 1)  # values a scan may gather
    wanted = [a for a in query.aggregates if a.percentile is not None]
    keys = [k.name for k in query.group_keys]
    groups = keys or [_GROUP]
    values = [_value(a, dtypes, timezone) for a in wanted]
    first = _first_scan(lf, query, wanted, values, dtypes, timezone)
    if not wanted:
        return first, 1
    if not keys:
        first = first.with_columns(pl.lit(0, pl.Int32).alias(_GROUP))
    # Each percentile's values with their group's keys: read again by every later scan.
    rows = [
        lf.select(
            *(pl.col(k) for k in keys),
            *([] if keys else [pl.lit(0, pl.Int32).alias(_GROUP)]),
            value.alias(_VALUE),
        ).filter(pl.col(_VALUE).is_not_null())
        for value in values
    ]
    pending = _ranks(first, wanted, groups)
    resolved = [_resolved_at_once(pending, groups)]
    pending = pending.filter(pl.col("__pct_lo") < pl.col("__pct_hi"))
    if max_scans is not None:
        _check_scans(pending, groups, cells_max, values_max, max_scans, budget)
    scans, levels = 1, 0
    while pending.height and levels < _MAX_LEVELS:
        # Buckets whose width overflows (values near ±1.8e308) cannot be cut: gathered.
        cut = pending.filter((pl.col("__pct_hi") - pl.col("__pct_lo")).is_finite())
        if not cut.height:
            break
        count = _buckets(cut.height, cells_max)
        per_scan = max(cells_max // count, 1)  # groups a histogram scan holds
        gathering = len(_shares(pending, values_max))
        if gathering <= -(-cut.height // per_scan) + 1:  # no more scans than a level's
            # Gathered in shares, but a group of more values than a share holds is cut.
            cut = cut.filter(pl.col("__pct_left") > values_max)
            if not cut.height:
                break
            count = _buckets(cut.height, cells_max)
            per_scan = max(cells_max // count, 1)
        # Groups of near intervals side by side: each scan's rows fall in a narrower range.
        cut = cut.sort(_WHICH, "__pct_lo")
        narrowed_parts = []
        for piece in cut.iter_slices(per_scan):
            cells = _histogram(_within(rows, piece, groups), count).collect(engine="streaming")
            scans += 1
            done, narrowed = _narrow(piece, cells, groups)
            resolved.append(done)
            narrowed_parts.append(narrowed)
        levels += 1
        narrowed = pl.concat(narrowed_parts, how="vertical")
        left = pending.join(cut.select(_ID), on=_ID, how="anti")
        pending = pl.concat([narrowed, left.select(narrowed.columns)], how="vertical")
    for share in _shares(pending, values_max):
        resolved.append(_gathered(_within(rows, share, groups), share, groups))
        scans += 1
    answer = _answer(first, query, wanted, groups, pl.concat(resolved, how="vertical"))
    return answer, scans


def _size(budget: int) -> str:
    return f"{budget / 2**20:,.0f} MB" if budget >= 2**20 else f"{budget // 1024:,} KB"


def _buckets(groups: int, cells_max: int) -> int:
    """Buckets per group of one level: as many as a scan's cells allow, within bounds."""
    return min(max(cells_max // max(groups, 1), _MIN_BUCKETS), _MAX_BUCKETS)


def _shares(pending: pl.DataFrame, values_max: int) -> list[pl.DataFrame]:
    """The pending groups in shares of at most ``values_max`` values each (a group of more
    is a share of its own), packed in order: one gathering scan each."""
    pending = pending.sort("__pct_left", maintain_order=True)
    numbers = _share_numbers(pending, values_max)
    if not numbers:
        return []
    numbered = pending.with_columns(pl.Series("__pct_share", numbers, dtype=pl.Int64))
    return [
        part.drop("__pct_share")
        for part in numbered.partition_by("__pct_share", maintain_order=True)
    ]


def _share_numbers(pending: pl.DataFrame, values_max: int) -> list[int]:
    """Each pending group's share (:func:`_shares`); ``pending`` ordered by its values
    left (so that how many shares does not depend on the order groups came in)."""
    numbers, share, held = [], 0, 0
    for left in pending["__pct_left"].to_list():
        if held and held + left > values_max:
            share, held = share + 1, 0
        numbers.append(share)
        held += left
    return numbers


def _check_scans(
    pending: pl.DataFrame,
    groups: list[str],
    cells_max: int,
    values_max: int,
    max_scans: int,
    budget: int,
) -> None:
    """Decline, before scanning again, percentiles of so many groups that the budget
    lets each scan hold only a few of them: more than ``max_scans`` scans to gather them
    all, and as many for the first level of histograms alone (later levels may add
    scans: the count is a least)."""
    if not pending.height:
        return
    gather = len(_shares(pending, values_max))
    count = _buckets(pending.height, cells_max)
    level = -(-pending.height // max(cells_max // count, 1)) + 1  # and a gathering at least
    needed = 1 + min(gather, level)
    if needed > max_scans:
        raise UnsupportedError(
            f"percentiles of {pending.select(groups).n_unique():,} groups within {_size(budget)}"
            f" ([arrow_backend] memory_mb): {needed} scans of the table at least"
        )


def _value(agg: Aggregate, dtypes: dict[str, Any], timezone: str) -> pl.Expr:
    """The percentile's values as Polars takes its quantile: float64, NULL where its
    filter leaves the row out."""
    num = pl.col(agg.field or "").cast(pl.Float64)
    passes = filter_mask(agg, dtypes, timezone)
    return num if passes is None else pl.when(passes).then(num)


def _first_scan(
    lf: pl.LazyFrame,
    query: AggregateQuery,
    wanted: list[Aggregate],
    values: list[pl.Expr],
    dtypes: dict[str, Any],
    timezone: str,
) -> pl.DataFrame:
    """The other aggregates and, per percentile, its values' count, NULLs (which Polars
    counts into the rank it interpolates at), least and greatest: one streaming scan."""
    exprs = [aggregate_expr(a, dtypes, timezone) for a in query.aggregates if a not in wanted]
    for i, (agg, value) in enumerate(zip(wanted, values, strict=True)):
        nulls = pl.col(agg.field or "").is_null()
        passes = filter_mask(agg, dtypes, timezone)
        exprs += [
            value.count().cast(pl.Int64).alias(f"__pct_n{i}"),
            (nulls if passes is None else nulls & passes).sum().cast(pl.Int64).alias(f"__pct_z{i}"),
            value.min().alias(f"__pct_lo{i}"),
            value.max().alias(f"__pct_hi{i}"),
        ]
    keys = [k.name for k in query.group_keys]
    grouped = lf.group_by(keys).agg(exprs) if keys else lf.select(exprs)
    return grouped.collect(engine="streaming")


def _ranks(first: pl.DataFrame, wanted: list[Aggregate], groups: list[str]) -> pl.DataFrame:
    """Per group with values and percentile, numbered: the ranks (0-based, among its
    values) of the two values it interpolates between, and the interval [lo, hi] holding
    them, ``left`` values, ``below`` values under it.

    Polars' linear quantile of n values and z NULLs reads the rank pos = (n - 1) * p + z
    (up to Polars 2.1: it sorts the NULLs first; from 2.2 z is 0) between the values at
    floor(pos) - z and ceil(pos) - z, by pos - floor(pos) — the NULLs move the
    fraction's rounding, so whether they count is asked of the Polars installed."""
    shift = 1 if nulls_shift_rank() else 0
    tables = []
    for i, agg in enumerate(wanted):
        n, z = pl.col(f"__pct_n{i}"), pl.col(f"__pct_z{i}") * shift
        pos = (n.cast(pl.Float64) - 1.0) * (agg.percentile or 0.0) + z.cast(pl.Float64)
        tables.append(
            first.filter(n > 0).select(
                *groups,
                pl.lit(i, pl.Int32).alias(_WHICH),
                (pos - pos.floor()).alias("__pct_fraction"),
                (pos.floor().cast(pl.Int64) - z).alias("__pct_r0"),
                (pos.ceil().cast(pl.Int64) - z).alias("__pct_r1"),
                pl.col(f"__pct_lo{i}").alias("__pct_lo"),
                pl.col(f"__pct_hi{i}").alias("__pct_hi"),
                n.alias("__pct_left"),
                pl.lit(0, pl.Int64).alias("__pct_below"),
            )
        )
    return pl.concat(tables, how="vertical").with_row_index(_ID)


def _resolved_at_once(pending: pl.DataFrame, groups: list[str]) -> pl.DataFrame:
    """The groups whose values are all equal: both values are that one."""
    return pending.filter(pl.col("__pct_lo") == pl.col("__pct_hi")).select(
        *groups,
        _WHICH,
        "__pct_fraction",
        pl.col("__pct_lo").alias("__pct_a"),
        pl.col("__pct_lo").alias("__pct_b"),
    )


def _within(rows: list[pl.LazyFrame], table: pl.DataFrame, groups: list[str]) -> pl.LazyFrame:
    """The values of each numbered group and percentile of ``table`` in its interval
    [lo, hi] (with its number, lo and hi): the percentiles one after the other, in one
    scan's plan."""
    parts = []
    for i, values in enumerate(rows):
        intervals = table.filter(pl.col(_WHICH) == i).select(*groups, _ID, "__pct_lo", "__pct_hi")
        if intervals.height:
            # Every interval lies within the least and greatest of them: the rows outside
            # are dropped before the join (twice as fast when they are narrow).
            low, high = intervals["__pct_lo"].min(), intervals["__pct_hi"].max()
            parts.append(
                values.filter(pl.col(_VALUE).is_between(low, high))
                .join(
                    intervals.lazy(),
                    on=groups,
                    how="inner",
                    nulls_equal=True,  # NULL is a group key of its own
                    build_side="force_right",  # the intervals, never the rows
                )
                .filter(pl.col(_VALUE).is_between(pl.col("__pct_lo"), pl.col("__pct_hi")))
                .select(_ID, _VALUE, "__pct_lo", "__pct_hi")
            )
    return pl.concat(parts, how="vertical")


def _histogram(within: pl.LazyFrame, count: int) -> pl.LazyFrame:
    """Each group's values in its interval, counted in ``count`` buckets of equal width
    with their least and greatest. The bucket grows with the value (every step rounds
    monotonically), so a bucket holds exactly its group's values between its least and
    its greatest."""
    lo, hi, value = pl.col("__pct_lo"), pl.col("__pct_hi"), pl.col(_VALUE)
    bucket = ((value - lo) / (hi - lo) * count).floor().clip(0, count - 1).cast(pl.Int32)
    return within.group_by(_ID, bucket.alias(_BUCKET)).agg(
        pl.len().cast(pl.Int64).alias("__pct_cell_n"),
        value.min().alias("__pct_cell_lo"),
        value.max().alias("__pct_cell_hi"),
    )


def _narrow(
    cut: pl.DataFrame, cells: pl.DataFrame, groups: list[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """From each group's histogram: the groups whose two values are now known (a rank
    first or last in its bucket is the bucket's least or greatest; two ranks in
    different buckets are the last of one and the first of the next), and the others
    narrowed to the bucket holding both ranks."""
    located = (
        cells.sort(_ID, _BUCKET)
        .join(cut.select(_ID, "__pct_below"), on=_ID, maintain_order="left")
        .with_columns(
            __pct_start=pl.col("__pct_below")
            + pl.col("__pct_cell_n").cum_sum().over(_ID)
            - pl.col("__pct_cell_n")
        )
        .with_columns(__pct_end=pl.col("__pct_start") + pl.col("__pct_cell_n"))
    )
    parts = ("__pct_start", "__pct_end", "__pct_cell_lo", "__pct_cell_hi")

    def holding(rank: str, tag: str) -> pl.DataFrame:
        """The bucket holding each group's value at ``rank``: its columns tagged."""
        at = located.join(cut.select(_ID, rank), on=_ID)
        inside = (pl.col("__pct_start") <= pl.col(rank)) & (pl.col(rank) < pl.col("__pct_end"))
        return at.filter(inside).select(_ID, *(pl.col(c).alias(c + tag) for c in parts))

    r0, r1 = pl.col("__pct_r0"), pl.col("__pct_r1")
    start0, end0, lo0, hi0 = (pl.col(c + "0") for c in parts)
    start1, end1, lo1, hi1 = (pl.col(c + "1") for c in parts)
    both = (
        cut.join(holding("__pct_r0", "0"), on=_ID)
        .join(holding("__pct_r1", "1"), on=_ID)
        .with_columns(
            __pct_a=pl.when((r0 == end0 - 1) | (lo0 == hi0)).then(hi0).when(r0 == start0).then(lo0),
            __pct_b=pl.when((r1 == start1) | (lo1 == hi1)).then(lo1).when(r1 == end1 - 1).then(hi1),
        )
    )
    known = pl.col("__pct_a").is_not_null() & pl.col("__pct_b").is_not_null()
    done = both.filter(known).select(*groups, _WHICH, "__pct_fraction", "__pct_a", "__pct_b")
    # Not known: both ranks are in one bucket (ranks in two buckets are known).
    narrowed = both.filter(~known).select(
        *groups,
        _WHICH,
        _ID,
        "__pct_fraction",
        "__pct_r0",
        "__pct_r1",
        lo0.alias("__pct_lo"),
        hi0.alias("__pct_hi"),
        (end0 - start0).alias("__pct_left"),
        start0.alias("__pct_below"),
    )
    return done, narrowed


def _gathered(within: pl.LazyFrame, pending: pl.DataFrame, groups: list[str]) -> pl.DataFrame:
    """The values of every pending group's interval, gathered by one streaming scan with
    the group's number and sorted per group: its two values are read at their ranks less
    the values below the interval. (A list per group, not one frame sorted by number and
    value: 5x faster.)"""
    got = (
        within.select(_ID, _VALUE)
        .collect(engine="streaming")
        .group_by(_ID)
        .agg(pl.col(_VALUE).sort())
    )
    values = pl.col(_VALUE).list
    return pending.join(got, on=_ID).select(
        *groups,
        _WHICH,
        "__pct_fraction",
        values.get(pl.col("__pct_r0") - pl.col("__pct_below")).alias("__pct_a"),
        values.get(pl.col("__pct_r1") - pl.col("__pct_below")).alias("__pct_b"),
    )


def _answer(
    first: pl.DataFrame,
    query: AggregateQuery,
    wanted: list[Aggregate],
    groups: list[str],
    resolved: pl.DataFrame,
) -> pl.DataFrame:
    """The groups with their percentiles, as ``aggregate_expr`` names, casts and orders
    them after the group keys. Interpolated as Polars does: the lower value when the two
    are equal, else fraction * (upper - lower) + lower (NULL for a group without
    values)."""
    a, b = pl.col("__pct_a"), pl.col("__pct_b")
    value = pl.when(a == b).then(a).otherwise(pl.col("__pct_fraction") * (b - a) + a)
    out = first
    for i, agg in enumerate(wanted):
        output = OUTPUT_DTYPES[AGGREGATES[agg.function].output]
        mine = resolved.filter(pl.col(_WHICH) == i).select(*groups, value.alias(agg.name))
        out = out.join(mine, on=groups, how="left", nulls_equal=True).with_columns(
            pl.col(agg.name).cast(output)
        )
    keys = [k.name for k in query.group_keys]
    return out.select(*keys, *(a.name for a in query.aggregates))
