"""How results show: badge fields, formatted text and HTML tables, tabs, the grid."""

from __future__ import annotations

import json
import re

import pytest
from IPython.core.interactiveshell import InteractiveShell

import fraiseql_nb as fq
from fraiseql_nb.notebook import display
from fraiseql_nb.notebook.display import human_bytes
from tests.conftest import shown

from .conftest import run

AGG = "{ sales_aggregate(groupBy: {region: true}, orderBy: [{region: ASC}]) { region count } }"


def test_badge_carries_backend_duration_rows_bytes_and_cache(ip: InteractiveShell) -> None:
    r = run(ip, "%%fraiseql --no-cache --backend arrow\n" + AGG)
    bundle = shown(r)
    assert set(bundle) == {"text/plain", "text/html"}  # no widget: it would not survive a reopen
    first = bundle["text/plain"].splitlines()[0]
    assert re.fullmatch(
        r"sales_aggregate: arrow · \d+\.\d ms · 5 rows · \d+\.\d [kM]B · cache miss", first
    ), first
    html = bundle["text/html"]
    assert "cache miss" in html and ">arrow</span>" in html
    assert "<script" not in html  # self-contained: no kernel, no script, no network
    # The table, then folded sections that need no script nor style sheet.
    assert re.findall(r"data-section='(\w+)'", html) == ["SQL", "Metrics", "Plan"]
    assert "<input" not in html and "<style" not in html
    section = html.split("data-section='SQL'")[1].split("</details>")[0]
    assert (
        "<summary" in section and ">SQL</summary>" in section and "<pre class='fq-sql'" in section
    )
    assert "SELECT" in html
    assert "time to first row" in html
    assert re.search(r">EU</td><td style='[^']*text-align:right'>[\d,]+</td>", html)
    assert "5 rows" in html  # the caption
    warm = run(ip, "%%fraiseql --backend arrow\n" + AGG)
    assert shown(warm)["text/plain"].splitlines()[0].endswith("0 B · cache hit")
    sql = shown(warm)["text/html"].split("data-section='SQL'")[1].split("</details>")[0]
    assert "computed by the arrow plane" in sql
    assert "the same answer, computed inside PostgreSQL:" in sql and "GROUP BY" in sql
    assert warm.postgres_sql.startswith("SELECT") and "GROUP BY" in warm.postgres_sql


def test_row_results_have_no_cache_field(ip: InteractiveShell) -> None:
    r = run(ip, "%fraiseql { users(limit: 2) { id name } }")
    first = shown(r)["text/plain"].splitlines()[0]
    assert re.fullmatch(r"users: wire · \d+\.\d ms · 2 rows · \d+ B", first), first
    assert "Émilie Martin" in shown(r)["text/plain"]


def test_html_escapes_values(ip: InteractiveShell) -> None:
    r = run(ip, '%fraiseql { users(where: {name: {eq: "<b>x</b>"}}) { id name } }')
    assert r.df.height == 0
    assert "&lt;b&gt;x&lt;/b&gt;" in shown(r)["text/html"]


def test_numbers_strings_and_nulls_read_well(ip: InteractiveShell) -> None:
    r = run(
        ip,
        "%fraiseql { sales_aggregate(groupBy: {channel: true}, orderBy: [{channel: ASC}])"
        " { channel revenue_sum count } }",
    )
    text = shown(r)["text/plain"]
    lines = text.splitlines()
    assert lines[1].split() == ["channel", "revenue_sum", "count"]
    sums = [line.split()[1] for line in lines[3:-1]]
    assert all(re.fullmatch(r"\d{1,3}(,\d{3})*\.\d{2}", s) for s in sums), sums
    assert lines[-2].startswith("null ")  # the NULL channel, marked, sorted last
    assert '"' not in text and "e+" not in text and "e6" not in text
    html = shown(r)["text/html"]
    assert "font-style:italic'>null</span>" in html
    assert "&quot;" not in html.split("data-section='SQL'")[0]  # strings are not quoted


def test_every_grid_carries_its_own_small_script_and_the_table_inside(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = run(ip, "%fraiseql { users(limit: 3, orderBy: [{id: ASC}]) { id name } }")
    assert "fq-grid" not in shown(r)["text/html"]  # a terminal has no kernel
    monkeypatch.setattr(ip, "kernel", object(), raising=False)
    first = shown(r)["text/html"]
    second = shown(r)["text/html"]
    for html in (first, second):  # each output is whole: re-running another breaks nothing
        assert "class='fq-grid'" in html and "<script>" in html
        assert "application/json" in html and "https://" not in html  # nothing to fetch
        assert ">Émilie Martin</td>" in html  # the plain table, shown where scripts do not run
        assert len(html) < 20_000
    assert first.count("<script>") == 1
    both = run(ip, "%fraiseql { a: users(limit: 1) { id } b: users(limit: 1) { id } }")
    assert isinstance(both, fq.Results)
    assert shown(both)["text/html"].count("class='fq-grid'") == 2
    # What a large result stores is bounded: the first page as a table, the first
    # gridlimit rows for the grid; the rest stays in .df.
    big = run(ip, "%fraiseql { users { id name email age } }")
    html = shown(big)["text/html"]
    table = html.split("<details")[0]
    assert big.df.height == 10_000 and table.count("<tr>") == 21  # header and 20 rows
    data = json.loads(html.split("class='fq-data'>")[1].split("</script>")[0])
    assert len(data["cells"]) == 1_000 and data["total"] == 10_000 and data["page"] == 20
    assert 20 in data["sizes"]
    assert len(html) < 120_000
    run(ip, "%config FraiseQL.widgets = False")
    try:
        assert "fq-grid" not in shown(r)["text/html"]
    finally:
        run(ip, "%config FraiseQL.widgets = True")


def test_several_results_show_each(ip: InteractiveShell) -> None:
    both = run(ip, "%fraiseql { a: users(limit: 1) { id } b: sales_aggregate { count } }")
    text = shown(both)["text/plain"]
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
        assert "showing" not in shown(r)["text/plain"]
        assert shown(r)["text/plain"].splitlines()[-2].strip() == "30"
    finally:
        run(ip, "%config FraiseQL.displaylimit = 20")


def test_a_result_charts_itself_offline(ip: InteractiveShell) -> None:
    r = run(ip, "%fraiseql " + AGG.replace("region count", "region count revenue_sum"))
    chart = r.chart()
    bundle = chart._repr_mimebundle_()
    spec = bundle["application/vnd.vegalite.v5+json"]
    assert spec["$schema"].endswith("vega-lite/v5.json")  # what JupyterLab draws by itself
    assert spec["mark"]["type"] == "bar"
    assert (spec["encoding"]["x"]["field"], spec["encoding"]["y"]["field"]) == (
        "region",
        "revenue_sum",
    )
    assert [row["region"] for row in spec["data"]["values"]] == ["APAC", "EU", "LATAM", "MEA", "NA"]
    svg = bundle["image/svg+xml"]  # drawn here, for exported HTML and other front ends
    assert svg.startswith("<svg") and ">EU<" in svg
    text = json.dumps(bundle)
    assert "https://cdn" not in text and "<script" not in text
    line = run(
        ip,
        "%fraiseql { sales_aggregate(groupBy: {occurred_at_month: true})"
        " { occurred_at_month count } }",
    ).chart()
    assert line.to_dict()["mark"]["type"] == "line"
    assert line.to_dict()["encoding"]["x"]["type"] == "temporal"
    with pytest.raises(fq.QueryError, match="no column 'nope' to chart"):
        r.chart(x="nope")


def test_the_plan_section_shows_postgresql_s_plan(ip: InteractiveShell) -> None:
    rows = run(ip, "%fraiseql { users(where: {age: {gte: 30}}, limit: 3) { id } }")
    assert "Limit" in rows.plan()
    section = shown(rows)["text/html"].split("data-section='Plan'")[1].split("</details>")[0]
    assert "plan (EXPLAIN):" in section and "Limit" in section
    agg = run(
        ip,
        "%fraiseql --backend arrow { sales_aggregate(groupBy: {region: true}) { region count } }",
    )
    plan = agg.plan()  # the plan of the statement that answers the same in PostgreSQL
    assert "Aggregate" in plan and "tf_sales" in plan
    assert "plan of the same answer" in shown(agg)["text/html"]
    # How the arrow plane computed it: over what, and Polars' plan (nothing run).
    how = agg.engine_plan()
    assert how.startswith("Polars, in memory, over ") and " rows of the columns region\n" in how
    assert "AGGREGATE" in how and 'BY [col("region")]' in how
    section = shown(agg)["text/html"].split("data-section='Plan'")[1].split("</details>")[0]
    assert "computed by Polars, in memory" in section and "AGGREGATE" in section
    window = run(
        ip,
        "%fraiseql --backend arrow { sales_window(partitionBy: [region], orderBy: [{id: ASC}],"
        " limit: 2) { id row_number } }",
    )
    assert window.engine_plan().endswith(
        ": filtered, then each window function over its partitions (eager)"
    )
    assert rows.engine_plan() == ""  # PostgreSQL computed it: its own plan says how


def test_a_plan_asked_of_a_closed_session_says_so(demo_dsn: str) -> None:
    s = fq.connect(demo_dsn)
    r = s.execute("{ users(limit: 1) { id } }")
    s.close()
    with pytest.raises(fq.QueryError, match="this session is closed"):
        r.plan()  # type: ignore[union-attr]
    section = display.html_view(r).split("data-section='Plan'")[1]  # type: ignore[arg-type]
    assert "(no plan: this session is closed" in section
