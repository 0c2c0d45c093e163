"""A Result is immutable once built: more is said about it by a copy (``evolve``), never
by changing the one a caller may hold. No database."""

from __future__ import annotations

import time

import polars as pl
import pytest

from fraiseql_nb.result import Result, measured


def built() -> Result:
    frame = pl.DataFrame({"region": ["EU", "NA"], "count": [3, 4]})
    return measured(
        key="sales_aggregate",
        kind="aggregate",
        backend="arrow",
        frame=frame,
        started=time.perf_counter(),
    )


def test_a_result_cannot_be_changed_after_it_is_built() -> None:
    result = built()
    with pytest.raises(AttributeError, match=r"immutable once built: use evolve\(reason=…\)"):
        result.reason = "cached"
    with pytest.raises(AttributeError, match="immutable"):
        result._engine = lambda: "x"
    assert result.reason == ""


def test_evolve_is_a_copy_with_more_said_and_the_rows_shared() -> None:
    result = built()
    more = result.evolve(
        reason="cached", limited=10, constants=((0, "__typename", "SalesAggregate"),)
    )
    assert (more.reason, more.limited) == ("cached", 10)
    assert more.df.columns == ["__typename", "region", "count"]
    assert more.df["__typename"].to_list() == ["SalesAggregate"] * 2
    assert (result.reason, result.limited) == ("", None)
    assert result.df.columns == ["region", "count"]  # the original is as it was
    assert more.metrics is result.metrics
    with pytest.raises(TypeError, match="does not set colour"):
        result.evolve(colour="red")
