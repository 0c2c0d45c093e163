"""The aggregate explorer: controls re-run the query; a chart follows."""

from __future__ import annotations

import base64

import polars as pl
import pytest
from IPython.core.interactiveshell import InteractiveShell

from fraiseql_nb.notebook.explorer import Explorer

from .conftest import run


def test_explorer_runs_and_follows_the_controls(ip: InteractiveShell) -> None:
    run(ip, "%fraiseql prefetch sales --wait")  # no load of it still running from earlier cells
    run(ip, "%fraiseql refresh sales")
    ex = run(ip, "%fraiseql explore sales")
    assert isinstance(ex, Explorer)
    first = ex.result
    assert first is not None
    # Cold: PostgreSQL answers the first view while the table loads in the background.
    assert (first.backend, first.reason) == ("postgres", "arrow cold: loading in the background")
    run(ip, "%fraiseql session").prefetch("sales", wait=True)
    key = ex.group.value[0]
    assert first.df.columns == [key, "count", f"{ex.measures.value[0]}_sum"]
    assert sum(first.df["count"]) == 100_000
    assert ex.chart is not None and ex.chart.to_dict()["mark"]["type"] == "bar"

    assert key == "region"  # dimensions come first
    ex.group.value = ("category",)
    assert ex.result is not first
    assert ex.result.df.height == 8
    ex.group.value = ("region",)
    assert ex.result.metrics.cache_hit is True  # its columns are loaded already
    assert sorted(ex.result.df["region"].to_list()) == ["APAC", "EU", "LATAM", "MEA", "NA"]

    ex.bucket.value = "occurred_at_year"
    frame = ex.result.df
    assert frame.columns[:2] == ["occurred_at_year", "region"]
    spec = ex.chart.to_dict()
    assert spec["mark"]["type"] == "line"
    assert spec["encoding"]["x"]["field"] == "occurred_at_year"
    assert spec["encoding"]["color"]["field"] == "region"

    ex.functions.value = ("sum", "median")
    m = ex.measures.value[0]
    assert f"{m}_median" in ex.result.df.columns
    # One control says what the chart draws, and the rows are ordered by the same.
    assert ex.charted.options == (f"{m}_sum", f"{m}_median") and ex.charted.value == f"{m}_sum"
    assert ex.chart.to_dict()["encoding"]["y"]["field"] == f"{m}_sum"
    ex.charted.value = f"{m}_median"
    assert ex.chart.to_dict()["encoding"]["y"]["field"] == f"{m}_median"
    ex.bucket.value = "(none)"
    assert f"orderBy: [{{{m}_median: DESC}}" in ex.query()
    medians = ex.result.df[f"{m}_median"].to_list()
    assert medians == sorted(medians, reverse=True)
    ex.bucket.value = "occurred_at_year"

    ex.filter_field.value = "region"
    ex.filter_value.value = "EU"
    assert set(ex.result.df["region"]) == {"EU"}
    assert 'where: {region: {eq: "EU"}}' in ex.query()
    ex.filter_op.value = "in"
    ex.filter_value.value = "EU, NA"
    assert set(ex.result.df["region"]) == {"EU", "NA"}
    assert repr(ex).startswith("<Explorer sales: { sales_aggregate(")
    # The last state as plain HTML: badge, table, the chart as an SVG picture (an image:
    # an untrusted notebook's sanitizer strips inline SVG), the query; its one script
    # only replaces JupyterLab's "model not found" with a note.
    snapshot = ex.snapshot
    assert "<svg" not in snapshot and "<img alt=" in snapshot
    picture = snapshot.split("src='data:image/svg+xml;base64,")[1].split("'")[0]
    svg = base64.b64decode(picture).decode()
    assert svg.startswith("<svg") and ">EU<" in svg and ">NA<" in svg
    assert 'fill="#ffffff"' not in svg  # transparent: no white box in the dark theme
    assert snapshot.count("<script") == 1 and "Error displaying widget" in snapshot
    assert ">EU</td>" in snapshot and ">NA</td>" in snapshot
    assert "sales_aggregate(where: {region: {in: [&quot;EU&quot;, &quot;NA&quot;]}}" in snapshot

    # After the groups: a calc over the selected aggregates, each row's share of its year.
    ex.calc.value = f"{m}_sum / count"
    frame = ex.result.df
    assert frame["calc"].to_list() == pytest.approx(
        [s / n for s, n in zip(frame[f"{m}_sum"], frame["count"], strict=True)]
    )
    ex.share.value = True
    assert "partitionBy: [occurred_at_year]" in ex.query()
    shares = ex.result.df.group_by("occurred_at_year").agg(pl.col("share").sum())["share"]
    assert shares.to_list() == pytest.approx([1.0] * shares.len())
    ex.calc.value = "nope * 2"
    assert "nope" in (ex.last_error or "") and "is not a column" in (ex.last_error or "")


def test_explorer_shows_errors_instead_of_swallowing_them(ip: InteractiveShell) -> None:
    ex = run(ip, "%fraiseql explore sales")
    measure = ex.measures.value[0]
    ex.filter_field.value = measure
    ex.filter_op.value = "gt"
    before = ex.result
    ex.filter_value.value = "lots"  # not a number: said plainly, and no query is sent
    assert ex.last_error == f"filter: {measure} expects a number, and 'lots' is not one"
    assert "lots" in ex.error.value
    assert ex.result is before
    ex.filter_field.value = "occurred_at"
    ex.filter_op.value = "gte"
    ex.filter_value.value = "2024-0"  # half-typed
    assert ex.last_error == (
        "filter: occurred_at expects a date or time like 2024-01-31 or 2024-01-31T12:00,"
        " and '2024-0' is not one"
    )
    ex.filter_value.value = "2024-01-01"
    assert ex.last_error is None and ex.result is not before
    ex.filter_field.value = measure
    ex.filter_value.value = "100"
    assert ex.last_error is None and ex.error.value == ""
    assert ex.result is not None and ex.result.df.height > 0
