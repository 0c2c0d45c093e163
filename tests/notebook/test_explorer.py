"""The aggregate explorer: controls re-run the query; a chart follows."""

from __future__ import annotations

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
    assert f"{ex.measures.value[0]}_median" in ex.result.df.columns

    ex.filter_field.value = "region"
    ex.filter_value.value = "EU"
    assert set(ex.result.df["region"]) == {"EU"}
    assert 'where: {region: {eq: "EU"}}' in ex.query()
    ex.filter_op.value = "in"
    ex.filter_value.value = "EU, NA"
    assert set(ex.result.df["region"]) == {"EU", "NA"}
    bundle = ex._repr_mimebundle_()
    assert bundle["text/plain"].startswith("<Explorer sales: { sales_aggregate(")
    assert "text/html" in bundle


def test_explorer_shows_errors_instead_of_swallowing_them(ip: InteractiveShell) -> None:
    ex = run(ip, "%fraiseql explore sales")
    measure = ex.measures.value[0]
    ex.filter_field.value = measure
    ex.filter_op.value = "gt"
    ex.filter_value.value = "lots"  # not a number
    assert ex.last_error is not None and "ValueError" in ex.last_error
    assert "lots" in ex.error.value
    ex.filter_value.value = "100"
    assert ex.last_error is None and ex.error.value == ""
    assert ex.result is not None and ex.result.df.height > 0
