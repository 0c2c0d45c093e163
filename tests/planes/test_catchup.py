"""The pure steps of bringing loaded rows up to now: key ranges, which changed keys can
replace loaded rows, and cutting rows out of a frame. No database."""

from __future__ import annotations

import itertools

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from fraiseql_nb.planes.arrow.catchup import superseded
from fraiseql_nb.planes.arrow.inmemory import without
from fraiseql_nb.planes.arrow.loader import key_runs


def test_consecutive_keys_are_read_as_ranges() -> None:
    assert key_runs([1, 2, 3, 7, 9, 10]) == [(1, 3), (7, 7), (9, 10)]
    assert key_runs([]) == []
    assert key_runs([-2, -1, 0]) == [(-2, 0)]


@given(st.sets(st.integers(-50, 50)))
def test_ranges_cover_exactly_the_keys(keys: set[int]) -> None:
    runs = key_runs(sorted(keys))
    covered = [k for a, b in runs for k in range(a, b + 1)]
    assert covered == sorted(keys)
    assert all(b + 1 < c for (_, b), (c, _) in itertools.pairwise(runs))


def test_keys_past_the_greatest_loaded_id_replace_nothing() -> None:
    keys = pl.Series("id", [3, 10, 11, 12])
    assert superseded(keys, 10).to_list() == [3, 10]
    assert superseded(keys, None).to_list() == [3, 10, 11, 12]  # unknown: all may
    text = pl.Series("id", ["a", "z"])
    assert superseded(text, "m").to_list() == ["a", "z"]  # only integers are ordered so


@given(st.lists(st.booleans(), max_size=60))
def test_without_removes_exactly_the_marked_rows(marks: list[bool]) -> None:
    frame = pl.DataFrame({"id": list(range(len(marks))), "v": [i * 2 for i in range(len(marks))]})
    out = without(frame, pl.Series(marks, dtype=pl.Boolean))
    expected = [i for i, gone in enumerate(marks) if not gone]
    assert out["id"].to_list() == expected
    assert out["v"].to_list() == [i * 2 for i in expected]
