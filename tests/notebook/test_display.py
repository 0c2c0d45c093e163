"""How results show: badge fields, text and HTML, the widget view."""

from __future__ import annotations

import re

import ipywidgets as w
import pytest
from IPython.core.interactiveshell import InteractiveShell

import fraiseql_nb as fq
from fraiseql_nb.notebook import display
from fraiseql_nb.notebook.display import WIDGET_VIEW, human_bytes, result_widget

from .conftest import run

AGG = "{ sales_aggregate(groupBy: {region: true}, orderBy: [{region: ASC}]) { region count } }"


def test_badge_carries_backend_duration_rows_bytes_and_cache(ip: InteractiveShell) -> None:
    r = run(ip, "%%fraiseql --no-cache --backend arrow\n" + AGG)
    bundle = r._repr_mimebundle_()
    assert set(bundle) >= {"text/plain", "text/html"}
    first = bundle["text/plain"].splitlines()[0]
    assert re.fullmatch(
        r"sales_aggregate: arrow · \d+\.\d ms · 5 rows · \d+\.\d [kM]B · cache miss", first
    ), first
    html = bundle["text/html"]
    assert "cache miss" in html and ">arrow</span>" in html and "5 rows" in html
    assert "<details><summary>SQL</summary><pre>SELECT" in html
    assert "<details><summary>Metrics</summary>" in html
    assert re.search(r"<td>&quot;EU&quot;</td><td>\d+</td>", html)  # the table's EU row
    warm = run(ip, "%%fraiseql --backend arrow\n" + AGG)
    assert warm._repr_mimebundle_()["text/plain"].splitlines()[0].endswith("0 B · cache hit")
    assert "answered from the cache" in warm._repr_mimebundle_()["text/html"]


def test_row_results_have_no_cache_field(ip: InteractiveShell) -> None:
    r = run(ip, "%fraiseql { users(limit: 2) { id name } }")
    first = r._repr_mimebundle_()["text/plain"].splitlines()[0]
    assert re.fullmatch(r"users: wire · \d+\.\d ms · 2 rows · \d+ B", first), first
    assert "Émilie Martin" in r._repr_mimebundle_()["text/plain"]


def test_html_escapes_values(ip: InteractiveShell) -> None:
    r = run(ip, '%fraiseql { users(where: {name: {eq: "<b>x</b>"}}) { id name } }')
    assert r.df.height == 0
    assert "&lt;b&gt;x&lt;/b&gt;" in r._repr_mimebundle_()["text/html"]


def test_widget_view_with_tabs(ip: InteractiveShell) -> None:
    r = run(ip, "%fraiseql { users(limit: 2, orderBy: [{id: ASC}]) { id name } }")
    view = result_widget(r)
    assert isinstance(view, w.VBox)
    badge, tab = view.children
    assert "wire" in badge.value and "2 rows" in badge.value
    assert tab.titles == ("Results", "SQL", "Metrics", "Plan")
    results, sql, metrics, plan = tab.children
    assert "Mateo Smith" in results.value
    assert "v_user" in sql.value
    assert "time to first row" in metrics.value
    assert "row query" in plan.value


def test_mimebundle_adds_the_widget_view_only_in_a_kernel(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = run(ip, "%fraiseql { users(limit: 1) { id } }")
    assert WIDGET_VIEW not in r._repr_mimebundle_()  # a terminal shell has no kernel
    monkeypatch.setattr(ip, "kernel", object(), raising=False)
    bundle = r._repr_mimebundle_()
    assert WIDGET_VIEW in bundle
    assert bundle["text/plain"].startswith("users: wire")  # still readable without widgets
    both = run(ip, "%fraiseql { a: users(limit: 1) { id } b: users(limit: 1) { id } }")
    assert isinstance(both, fq.Results)
    assert WIDGET_VIEW in both._repr_mimebundle_()
    run(ip, "%config FraiseQL.widgets = False")
    try:
        assert WIDGET_VIEW not in r._repr_mimebundle_()
    finally:
        run(ip, "%config FraiseQL.widgets = True")


def test_several_results_show_each(ip: InteractiveShell) -> None:
    both = run(ip, "%fraiseql { a: users(limit: 1) { id } b: sales_aggregate { count } }")
    text = both._repr_mimebundle_()["text/plain"]
    assert text.startswith("a: wire")
    assert "\n\nb: " in text


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (2_679_891, "2.7 MB"),
        (5 * 10**12, "5000.0 GB"),
    ],
)
def test_human_bytes(n: int, text: str) -> None:
    assert human_bytes(n) == text


def test_display_options_reach_results(ip: InteractiveShell) -> None:
    assert display.OPTIONS.displaylimit == 20
    run(ip, "%config FraiseQL.displaylimit = 0")
    try:
        r = run(ip, "%fraiseql { users(limit: 30) { id } }")
        assert "showing" not in r._repr_mimebundle_()["text/plain"]
        assert "│ 30  │" in r._repr_mimebundle_()["text/plain"]
    finally:
        run(ip, "%config FraiseQL.displaylimit = 20")
