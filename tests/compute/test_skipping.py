"""Skipping segments by their statistics: a segment is skipped only when the engine's own
filter would keep none of its rows, and it is skipped when its values rule the filter out."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraiseql_nb.compute.filters import where_expr
from fraiseql_nb.compute.skipping import MAX_VALUES, bounds, matching
from fraiseql_nb.query.ir import And, Compare, Not, Or, Where

SCALARS = {"n": "Int", "x": "Float", "d": "Float", "s": "String", "t": "DateTime"}
UTC = dt.timezone.utc


def frame_of(rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "n": pl.Int64,
            "x": pl.Float64,
            "d": pl.Decimal(12, 2),
            "s": pl.String,
            "t": pl.Datetime("us", "UTC"),
        },
        orient="row",
    )


def stats_of(segments: list[pl.DataFrame]) -> list[tuple[int, Any]]:
    return [(seg.height, bounds(seg)) for seg in segments]


ints = st.one_of(st.none(), st.integers(-50, 50))
rows = st.tuples(
    ints,
    st.one_of(st.none(), st.floats(-100, 100, allow_nan=False)),
    st.one_of(st.none(), st.decimals("-99.99", "99.99", places=2)),
    st.one_of(st.none(), st.sampled_from(["", "a", "ab", "b", "Z", "é", "zz"])),
    st.one_of(
        st.none(),
        st.datetimes(dt.datetime(2020, 1, 1), dt.datetime(2021, 1, 1)).map(
            lambda v: v.replace(tzinfo=UTC)
        ),
    ),
)


def values_for(name: str) -> st.SearchStrategy[Any]:
    return {
        "n": st.integers(-60, 60),
        "x": st.floats(-110, 110, allow_nan=False),
        "d": st.decimals("-120", "120", places=2).map(float),
        "s": st.sampled_from(["", "a", "ab", "b", "Z", "é", "zz", "m"]),
        "t": st.datetimes(dt.datetime(2019, 12, 1), dt.datetime(2021, 2, 1)).map(
            lambda v: v.isoformat() + "Z"
        ),
    }[name]


@st.composite
def compares(draw: st.DrawFn) -> Where:
    name = draw(st.sampled_from(sorted(SCALARS)))
    op = draw(st.sampled_from(["eq", "gt", "gte", "lt", "lte", "in", "isnull", "neq"]))
    if op == "isnull":
        value: Any = draw(st.booleans())
    elif op == "in":
        value = draw(st.lists(values_for(name), min_size=1, max_size=4))
    else:
        value = draw(values_for(name))
    return Compare(path=(name,), op=op, value=value, scalar=SCALARS[name])


wheres = st.recursive(
    compares(),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: And(items=tuple(xs))),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: Or(items=tuple(xs))),
        inner.map(lambda x: Not(item=x)),
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    segments=st.lists(st.lists(rows, min_size=0, max_size=6), min_size=1, max_size=5),
    where=wheres,
)
def test_a_skipped_segment_has_no_row_the_filter_keeps(
    segments: list[list[tuple[Any, ...]]], where: Where
) -> None:
    frames = [frame_of(seg) for seg in segments]
    dtypes = dict(frames[0].schema)
    keep = matching(where, stats_of(frames), dtypes, "UTC")
    for frame, kept in zip(frames, keep, strict=True):
        passing = frame.filter(where_expr(where, dtypes, "UTC")).height
        assert kept or passing == 0, (where, frame)


def test_segments_outside_a_range_are_skipped() -> None:
    day = dt.datetime(2024, 1, 1, tzinfo=UTC)
    frames = [
        frame_of(
            [
                (i, float(i), Decimal(i), chr(97 + k), day + dt.timedelta(days=i))
                for i in range(k * 10, k * 10 + 10)
            ]
        )
        for k in range(4)
    ]
    stats = stats_of(frames)
    dtypes = dict(frames[0].schema)

    def keep(where: Where) -> list[bool]:
        return matching(where, stats, dtypes, "UTC")

    assert keep(Compare(path=("n",), op="lt", value=10, scalar="Int")) == [
        True,
        False,
        False,
        False,
    ]
    assert keep(Compare(path=("n",), op="gte", value=35, scalar="Int")) == [
        False,
        False,
        False,
        True,
    ]
    assert keep(Compare(path=("d",), op="eq", value=15.0, scalar="Float")) == [
        False,
        True,
        False,
        False,
    ]
    assert keep(Compare(path=("s",), op="in", value=["b", "d"], scalar="String")) == [
        False,
        True,
        False,
        True,
    ]
    assert keep(
        Compare(path=("t",), op="gte", value="2024-01-31T00:00:00Z", scalar="DateTime")
    ) == [
        False,
        False,
        False,
        True,
    ]
    either = Or(
        items=(
            Compare(path=("n",), op="lt", value=3, scalar="Int"),
            Compare(path=("n",), op="gt", value=36, scalar="Int"),
        )
    )
    assert keep(either) == [True, False, False, True]
    both = And(
        items=(
            Compare(path=("n",), op="gte", value=12, scalar="Int"),
            Compare(path=("x",), op="lte", value=18.5, scalar="Float"),
        )
    )
    assert keep(both) == [False, True, False, False]
    assert (
        keep(Compare(path=("n",), op="isnull", value=True, scalar="Int")) == [False] * 4
    )  # no NULLs
    assert (
        keep(Not(item=Compare(path=("n",), op="lt", value=10, scalar="Int"))) == [True] * 4
    )  # not judged
    assert matching(None, [(0, {}), (3, None)], dtypes, "UTC") == [False, True]  # empty


def test_bounds_leave_out_what_cannot_be_ordered() -> None:
    frame = pl.DataFrame(
        {"x": [1.0, float("nan")], "s": ["a" * 300, "b"], "b": [True, False], "n": [None, None]},
        schema={"x": pl.Float64, "s": pl.String, "b": pl.Boolean, "n": pl.Int32},
    )
    assert bounds(frame) == {"n": [None, None, 2, "i"]}


def test_text_of_few_values_is_judged_on_each_of_them() -> None:
    """A segment records the distinct values of a text column while they are at most
    MAX_VALUES: one of "books" and "toys" cannot hold "food" (its range can), one of
    more values is judged on its range only, one of NULLs only holds none."""
    many = [f"v{i:03d}" for i in range(MAX_VALUES + 1)]
    frames = [
        pl.DataFrame({"c": ["books", "toys", "books"]}),
        pl.DataFrame({"c": many}),
        pl.DataFrame({"c": [None, None]}, schema={"c": pl.String}),
        pl.DataFrame({"c": ["food", None]}),
    ]
    stats = stats_of(frames)
    assert [len(b["c"]) for _, b in stats if b] == [5, 4, 5, 5]
    assert stats[0][1] and stats[0][1]["c"][4] == ["books", "toys"]
    for dtype in (pl.String, pl.Categorical):
        for op, value, expected in (
            ("eq", "food", [False, False, False, True]),
            ("eq", "v010", [False, True, False, False]),
            ("in", ["food", "toys"], [True, False, False, True]),
            ("gte", "t", [True, True, False, False]),
            ("lt", "c", [True, False, False, False]),
        ):
            where = Compare(path=("c",), op=op, value=value, scalar="String")
            assert matching(where, stats, {"c": dtype}, "UTC") == expected, (op, value)
            for frame, kept in zip(frames, expected, strict=True):
                typed = frame.with_columns(pl.col("c").cast(dtype))
                found = typed.filter(where_expr(where, {"c": dtype}, "UTC")).height
                assert kept or found == 0, (op, value)


def test_values_merge_while_few() -> None:
    from fraiseql_nb.planes.arrow.disktable import merge_bounds

    a = bounds(pl.DataFrame({"c": ["a", "b"]}))
    b = bounds(pl.DataFrame({"c": ["b", None, "c"]}))
    assert merge_bounds(a, b) == {"c": ["a", "c", 1, "s", ["a", "b", "c"]]}
    wide = bounds(pl.DataFrame({"c": [f"w{i:03d}" for i in range(MAX_VALUES)]}))
    assert merge_bounds(a, wide) == {"c": ["a", "w031", 0, "s"]}  # 34 values: range only
    assert merge_bounds(a, {"c": ["a", "z", 0, "s"]}) == {"c": ["a", "z", 0, "s"]}


def test_text_stored_as_categoricals_is_judged_as_text() -> None:
    """A table on disk stores text of few values as Categoricals: its bounds are text, and
    Polars compares Categoricals as their text."""
    frames = [pl.DataFrame({"c": v}) for v in (["a", "c", "b"], ["d", "f", None])]
    stats = stats_of(frames)
    dtypes = {"c": pl.Categorical}
    for op, value, expected in (
        ("eq", "e", [False, False]),  # between d and f, but neither: its values are known
        ("in", ["b", "zz"], [True, False]),
        ("gt", "c", [False, True]),
        ("lt", "b", [True, False]),
    ):
        where = Compare(path=("c",), op=op, value=value, scalar="String")
        assert matching(where, stats, dtypes, "UTC") == expected, op
        for frame, kept in zip(frames, expected, strict=True):
            cats = frame.with_columns(pl.col("c").cast(pl.Categorical))
            assert kept or cats.filter(where_expr(where, dtypes, "UTC")).height == 0


def test_long_text_values_are_not_recorded() -> None:
    """A long value between short least and greatest ones would fill the meta: the list
    is left out, the range kept."""
    got = bounds(pl.DataFrame({"c": ["a", "b" * 300, "z"]}))
    assert got == {"c": ["a", "z", 0, "s"]}
