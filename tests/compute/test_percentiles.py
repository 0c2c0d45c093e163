"""Percentiles selected by ranges of value (compute/percentiles.py) are the in-memory
engine's percentiles to the bit, whatever the values, the groups, the filters and the
budget (a tiny one forces several levels of histograms)."""

from __future__ import annotations

import datetime as dt
import math
import random
import re
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraiseql_nb.compute.aggregate import _filtered_and_bucketed, _grouped
from fraiseql_nb.compute.percentiles import grouped_by_selection
from fraiseql_nb.errors import UnsupportedError
from fraiseql_nb.language.aggregates import percentiles
from fraiseql_nb.query.ir import Aggregate, AggregateQuery, Compare, GroupKey

FRACTIONS = percentiles()  # median: 0.5, p90: 0.9, …
KEYS = {
    "region": GroupKey(name="region", source="column"),
    "shop": GroupKey(name="shop", source="column"),
    "at_month": GroupKey(name="at_month", source="bucket", column="at", unit="month"),
}
SCHEMA = {
    "region": pl.String,
    "shop": pl.Int64,
    "at": pl.Datetime("us", "UTC"),
    "amount": pl.Float64,
    "price": pl.Decimal(12, 2),
    "units": pl.Int64,
    "flag": pl.Int64,
}
HUGE = [1e300, -1e300, 1.7e308, -1.7e308]  # the last two: a bucket width overflows


def query_of(keys: list[str], aggregates: list[Aggregate], where: Any = None) -> AggregateQuery:
    columns = tuple((n, n) for n in [*keys, *(a.name for a in aggregates)])
    return AggregateQuery(
        key="t_aggregate",
        fact="t",
        columns=columns,
        group_keys=tuple(KEYS[k] for k in keys),
        aggregates=tuple(aggregates),
        where=where,
    )


def percentile(field: str, function: str, flag_below: int | None = None) -> Aggregate:
    condition = (
        None
        if flag_below is None
        else Compare(path=("flag",), op="lt", value=flag_below, scalar="Int")
    )
    suffix = "" if flag_below is None else f"_if{flag_below}"
    return Aggregate(
        name=f"{field}_{function}{suffix}",
        function=function,
        field=field,
        percentile=FRACTIONS[function],
        filter=condition,
    )


# The other aggregates of the first scan: exact ones (a float sum's last digits depend on
# the order Polars adds in, which the streaming engine does not fix).
EXACT_OTHERS = [
    Aggregate(name="count", function="count"),
    Aggregate(name="amount_min", function="min", field="amount"),
    Aggregate(name="amount_max", function="max", field="amount"),
    Aggregate(name="units_sum", function="sum", field="units"),
    Aggregate(name="price_sum", function="sum", field="price"),
]


def expected_and_got(
    frame: pl.DataFrame, query: AggregateQuery, budget: int
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    dtypes = dict(frame.schema)
    lf = _filtered_and_bucketed(frame.lazy(), query, dtypes, "UTC")
    expected = _grouped(lf, query, dtypes, "UTC").collect()
    got, scans = grouped_by_selection(lf, query, dtypes, "UTC", budget)
    keys = [k.name for k in query.group_keys]
    if keys:
        expected, got = expected.sort(keys), got.sort(keys)
    return expected, got, scans


def assert_same(expected: pl.DataFrame, got: pl.DataFrame) -> None:
    assert got.schema == expected.schema
    assert got.equals(expected), (expected, got)
    # equals() calls -0.0 and 0.0 equal: the bits too (NULLs as NULLs).
    for name, dtype in expected.schema.items():
        if dtype == pl.Float64:
            assert [None if v is None else math.copysign(1, v) for v in got[name]] == [
                None if v is None else math.copysign(1, v) for v in expected[name]
            ], name


@st.composite
def amounts(draw: st.DrawFn) -> float | None:
    """Values with NULLs, heavy ties, spreads of every scale, skew and huge outliers."""
    pool = draw(st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=3))
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return None
    if kind <= 3:
        return draw(st.sampled_from(pool))  # ties
    if kind == 4:
        return math.exp(draw(st.floats(0, 40)))  # exponentially skewed
    if kind == 5 and draw(st.integers(0, 4)) == 0:
        return draw(st.sampled_from(HUGE))
    return draw(st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))


@st.composite
def frames(draw: st.DrawFn) -> pl.DataFrame:
    n = draw(st.integers(0, 120))
    start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    rows = {
        "region": draw(st.lists(st.sampled_from(["n", "s", None]), min_size=n, max_size=n)),
        "shop": draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)),
        "at": [
            start + dt.timedelta(days=d)
            for d in draw(st.lists(st.integers(0, 120), min_size=n, max_size=n))
        ],
        "amount": draw(st.lists(amounts(), min_size=n, max_size=n)),
        "price": [
            None if c is None else Decimal(c) / 100
            for c in draw(
                st.lists(st.one_of(st.none(), st.integers(-(10**9), 10**9)), min_size=n, max_size=n)
            )
        ],
        "units": draw(
            st.lists(st.one_of(st.none(), st.integers(-(2**40), 2**40)), min_size=n, max_size=n)
        ),
        "flag": draw(st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=n, max_size=n)),
    }
    return pl.DataFrame(rows, schema=SCHEMA)


@st.composite
def queries(draw: st.DrawFn) -> AggregateQuery:
    keys = draw(st.lists(st.sampled_from(list(KEYS)), unique=True, max_size=2))
    chosen = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["amount", "price", "units"]),
                st.sampled_from(sorted(FRACTIONS)),
                st.one_of(st.none(), st.integers(0, 3)),
            ),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    others = draw(st.lists(st.sampled_from(EXACT_OTHERS), unique=True, max_size=3))
    wanted = [percentile(field, fn, below) for field, fn, below in chosen]
    aggregates = draw(st.permutations([*wanted, *others]))
    where = draw(
        st.one_of(st.none(), st.just(Compare(path=("flag",), op="gte", value=1, scalar="Int")))
    )
    return query_of(keys, aggregates, where)


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    frame=frames(),
    query=queries(),
    # 4 KB holds 4 histogram cells and 42 gathered values: one group a histogram scan,
    # shares of values gathered, several levels for few groups of many values.
    budget=st.sampled_from([2**12, 2**14, 2**17, 2**30]),
)
def test_selection_is_the_in_memory_answer(
    frame: pl.DataFrame, query: AggregateQuery, budget: int
) -> None:
    expected, got, scans = expected_and_got(frame, query, budget)
    assert_same(expected, got)
    # The first scan, then at most 8 levels and a gathering, each at most one scan a
    # group and percentile.
    pending = max(expected.height, 1) * sum(a.percentile is not None for a in query.aggregates)
    assert 1 <= scans <= 1 + 9 * pending


def skewed(n: int, seed: int = 7) -> pl.DataFrame:
    """Exponential values with a few huge outliers and NULLs, in three regions."""
    rng = random.Random(seed)
    amount = [
        None if rng.random() < 0.05 else rng.expovariate(1.0) * (1e9 if i % 997 == 0 else 1.0)
        for i in range(n)
    ]
    return pl.DataFrame(
        {
            "region": [rng.choice(["n", "s", "e"]) for _ in range(n)],
            "shop": [rng.randint(0, 2) for _ in range(n)],
            "at": [dt.datetime(2024, 1 + i % 12, 1, tzinfo=dt.timezone.utc) for i in range(n)],
            "amount": amount,
            "price": [Decimal(rng.randint(0, 10**6)) / 100 for _ in range(n)],
            "units": [rng.randint(0, 50) for _ in range(n)],
            "flag": [rng.randint(0, 3) for _ in range(n)],
        },
        schema=SCHEMA,
    )


@pytest.mark.parametrize("keys", [["region"], []], ids=["grouped", "global"])
def test_a_tiny_budget_takes_several_levels_and_the_same_answer(keys: list[str]) -> None:
    """100,000 values against 4 KB: each histogram keeps about 1/28 of a group's values,
    so about three levels pass before the values left fit; a large budget gathers them
    after the first scan."""
    frame = skewed(100_000)
    query = query_of(
        keys,
        [
            Aggregate(name="count", function="count"),
            percentile("amount", "median"),
            percentile("amount", "p99"),
            percentile("price", "p25", flag_below=2),
            percentile("units", "p90"),
        ],
    )
    expected, got, scans = expected_and_got(frame, query, 4096)
    assert_same(expected, got)
    assert scans >= 4, scans  # the first scan, two levels at least, the values gathered
    expected, got, scans = expected_and_got(frame, query, 2**30)
    assert_same(expected, got)
    assert scans == 2


def test_empty_groups_and_no_rows_are_null() -> None:
    frame = skewed(2_000).with_columns(
        pl.when(pl.col("region") == "n").then(None).otherwise(pl.col("amount")).alias("amount")
    )
    query = query_of(["region"], [percentile("amount", "median"), percentile("units", "p95", 0)])
    expected, got, _ = expected_and_got(frame, query, 1)
    assert_same(expected, got)
    assert got.filter(pl.col("region") == "n")["amount_median"].to_list() == [None]
    for keys in (["region"], []):
        query = query_of(
            keys, [Aggregate(name="count", function="count"), percentile("amount", "p90")]
        )
        expected, got, scans = expected_and_got(frame.clear(), query, 1)
        assert_same(expected, got)
        assert scans == 1 and got.height == (0 if keys else 1)


def test_group_keys_named_like_the_work_columns() -> None:
    """The selection's own columns never clash with a group key's name."""
    rng = random.Random(7)
    names = ["lo", "hi", "left", "below", "a", "b", "start", "end", "fraction", "r0"]
    frame = pl.DataFrame(
        {
            **{n: [rng.randint(0, 2) for _ in range(3000)] for n in names},
            "amount": [rng.random() * 100 for _ in range(3000)],
        }
    )
    query = AggregateQuery(
        key="t_aggregate",
        fact="t",
        columns=tuple((n, n) for n in [*names, "amount_median"]),
        group_keys=tuple(GroupKey(name=n, source="column") for n in names[:3]),
        aggregates=(percentile("amount", "median"),),
    )
    dtypes = dict(frame.schema)
    lf = _filtered_and_bucketed(frame.lazy(), query, dtypes, "UTC")
    expected = _grouped(lf, query, dtypes, "UTC").collect().sort(names[:3])
    got, scans = grouped_by_selection(lf, query, dtypes, "UTC", 2_000)
    assert scans > 2
    assert_same(expected, got.sort(names[:3]))


def many_groups(groups: int, each: int, seed: int = 3) -> pl.DataFrame:
    rng = random.Random(seed)
    return skewed(groups * each, seed).with_columns(
        pl.Series("shop", [rng.randrange(groups) for _ in range(groups * each)])
    )


def test_many_groups_take_a_share_of_them_per_scan() -> None:
    """A scan holds the histogram cells or gathered values the budget pays for: 300 groups
    of 40 values against 64 KB (64 cells, 682 values) are histogrammed four groups a scan,
    or gathered in shares — more scans, the same answer."""
    frame = many_groups(300, 40)
    query = query_of(["shop"], [percentile("amount", "median"), percentile("units", "p90")])
    expected, got, scans = expected_and_got(frame, query, 2**16)
    assert_same(expected, got)
    assert scans > 10, scans  # 24,000 values in shares of 682 at least
    expected, got, scans = expected_and_got(frame, query, 2**30)
    assert_same(expected, got)
    assert scans == 2


def test_too_many_scans_are_declined_before_they_are_made() -> None:
    frame = many_groups(300, 40)
    query = query_of(["shop"], [percentile("amount", "median")])
    dtypes = dict(frame.schema)
    lf = _filtered_and_bucketed(frame.lazy(), query, dtypes, "UTC")
    with pytest.raises(UnsupportedError) as declined:
        grouped_by_selection(lf, query, dtypes, "UTC", 2**16, max_scans=16)
    message = str(declined.value)
    found = re.search(r"percentiles of (\d+) groups within 64 KB .*: (\d+) scans", message)
    assert found is not None, message
    # 300 groups of about 38 values (NULLs aside) in shares of 682: 17 or so, and the first
    assert int(found.group(1)) == 300 and 17 <= int(found.group(2)) <= 19
    got, scans = grouped_by_selection(
        lf, query, dtypes, "UTC", 2**16, max_scans=int(found.group(2))
    )
    assert 16 < scans <= int(found.group(2)) + 1
    expected = _grouped(lf, query, dtypes, "UTC").collect()
    assert_same(expected.sort("shop"), got.sort("shop"))


def test_a_group_larger_than_a_share_is_cut_and_shares_stay_within_it() -> None:
    """400 groups of 20 values and one of 20,000 against 128 KB (1,365 gathered values a
    scan): the big group is histogrammed until it fits, the others are gathered in shares
    packed up to the limit — no gathering scan holds more than a share."""
    from fraiseql_nb.compute import percentiles

    rng = random.Random(5)
    shops = [i // 20 for i in range(8000)] + [400] * 20_000
    frame = pl.DataFrame(
        {"shop": shops, "amount": [rng.random() * 1000 for _ in shops]},
        schema={"shop": pl.Int64, "amount": pl.Float64},
    )
    query = AggregateQuery(
        key="t_aggregate",
        fact="t",
        columns=(("shop", "shop"), ("amount_median", "amount_median")),
        group_keys=(GroupKey(name="shop", source="column"),),
        aggregates=(percentile("amount", "median"),),
    )
    dtypes = dict(frame.schema)
    lf = _filtered_and_bucketed(frame.lazy(), query, dtypes, "UTC")
    gathered: list[int] = []
    real = percentiles._gathered

    def counting(within: pl.LazyFrame, pending: pl.DataFrame, groups: list[str]) -> pl.DataFrame:
        gathered.append(int(pending["__pct_left"].sum()))
        return real(within, pending, groups)

    percentiles._gathered = counting  # type: ignore[assignment]
    try:
        got, scans = grouped_by_selection(lf, query, dtypes, "UTC", 2**17)
    finally:
        percentiles._gathered = real  # type: ignore[assignment]
    expected = _grouped(lf, query, dtypes, "UTC").collect()
    assert_same(expected.sort("shop"), got.sort("shop"))
    limit = 2**17 // 96
    assert gathered and max(gathered) <= limit, gathered
    assert sum(gathered) < 8000 + limit  # the big group's values were narrowed first
    assert scans > 1 + len(gathered)  # the first scan, histograms of the big group, shares


def test_shares_are_packed_up_to_the_limit() -> None:
    from fraiseql_nb.compute.percentiles import _shares

    pending = pl.DataFrame({"__pct_left": [99, 99, 1, 300, 50, 50]})
    shares = [s["__pct_left"].to_list() for s in _shares(pending, 100)]
    # By values left (the count then does not depend on the order groups came in).
    assert shares == [[1, 50], [50], [99], [99], [300]]
    assert _shares(pending.clear(), 100) == []
