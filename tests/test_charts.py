"""Charts of results: pure (a frame in, a Vega-Lite spec out)."""

from __future__ import annotations

import polars as pl

from fraiseql_nb.charts import chart_for


def test_short_bar_labels_read_level_and_long_ones_turn() -> None:
    short = chart_for(pl.DataFrame({"region": ["EU", "NA", "APAC"], "n": [1, 2, 3]}))
    assert short.to_dict()["encoding"]["x"]["axis"] == {"labelAngle": 0}
    names = [f"a rather long product name {i}" for i in range(30)]
    long = chart_for(pl.DataFrame({"name": names, "n": list(range(30))}))
    assert "axis" not in long.to_dict()["encoding"]["x"]
