"""Progress reports from the planes, and how the notebook shows them."""

from __future__ import annotations

import io

import ipywidgets as w

import fraiseql_nb as fq
from fraiseql_nb.notebook.progressbar import ProgressView
from fraiseql_nb.ops import progress


def test_planes_report_loads_and_fetches(session: fq.Session) -> None:
    seen: list[tuple[str, int, int]] = []
    session.refresh("sales")
    with progress.listening(lambda *r: seen.append(r)):
        session.execute("{ sales_aggregate { revenue_sum } }", backend="arrow")
        session.execute("{ orders { id } }")
    loads = [r for r in seen if r[0] == "load"]
    fetches = [r for r in seen if r[0] == "fetch"]
    assert loads and loads[-1][1] == 100_000 and loads[-1][2] > 0
    assert [r[1] for r in loads] == sorted(r[1] for r in loads)  # rows so far only grow
    assert fetches and fetches[-1][1] == 20_000
    # Nothing listens outside the block.
    seen.clear()
    session.execute("{ orders(limit: 5) { id } }")
    assert seen == []


def test_text_progress_shows_only_after_the_threshold() -> None:
    out = io.StringIO()
    view = ProgressView("fraiseql", widget=False, after_s=3600, stream=out)
    view("load", 10, 100)
    view.close("done")
    assert out.getvalue() == ""  # quick: nothing shown at all
    view = ProgressView("fraiseql", widget=False, after_s=0, every_s=0, stream=out)
    view("load", 10, 1500)
    view("load", 20_000, 2_500_000)
    view.close("interrupted")
    text = out.getvalue()
    assert "\rfraiseql: loading 10 rows · 1 batches · 1.5 kB · " in text
    assert "\rfraiseql: loading 20,000 rows · 2 batches · 2.5 MB · " in text
    assert text.rstrip().split("\r")[-1].startswith("fraiseql: interrupted after ")
    assert text.endswith("\n")


def test_widget_progress_goes_away_when_done() -> None:
    view = ProgressView("fraiseql", widget=True, after_s=0, every_s=0)
    view("fetch", 5, 50)
    shown = view._view
    assert isinstance(shown, w.HTML)
    assert "fetching 5 rows" in shown.value
    view.close()
    assert view._view is None
    assert shown.comm is None  # closed: the front end removes it
