"""The %fraiseql magics in a real IPython shell against the demo database."""

from __future__ import annotations

import datetime as dt
import time
import urllib.parse
import uuid

import psycopg
import pytest
from IPython.core.completer import provisionalcompleter
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from psycopg.conninfo import make_conninfo
from traitlets import TraitError

import fraiseql_nb as fq
from fraiseql_nb.notebook.magics import FraiseQL
from tests.conftest import shown
from tests.interrupting import Interrupter, until

from .conftest import fail, run

FIRST_USERS = [{"id": 1, "name": "Émilie Martin"}, {"id": 2, "name": "Mateo Smith"}]


def test_cell_value_is_the_result_and_o_stores_it(ip: InteractiveShell) -> None:
    r = run(ip, "%%fraiseql -o top\n{ users(limit: 2, orderBy: [{id: ASC}]) { id name } }")
    assert isinstance(r, fq.Result)
    assert r.backend == "wire"
    assert r.to_dicts() == FIRST_USERS
    assert ip.user_ns["top"] is r
    assert ip.user_ns["_"] is r  # the displayhook saw it


def test_a_fraiseql_request_takes_its_variables_from_the_notebook(ip: InteractiveShell) -> None:
    ip.user_ns["request"] = {
        "groupBy": {"region": True},
        "aggregates": [{"count": {}}],
        "orderBy": {"count": "DESC"},
        "limit": 2,
    }
    r = run(ip, "%%fraiseql --variables request -o top\n{ sales_aggregate }")
    assert isinstance(r, fq.Result)
    same = run(
        ip,
        "%%fraiseql\n{ sales_aggregate(groupBy: {region: true}, orderBy: {count: DESC},"
        " limit: 2) { region count } }",
    )
    assert r.to_dicts() == same.to_dicts() and len(r.to_dicts()) == 2
    # a window request takes the cell limit as its variable, not as an argument
    ip.user_ns["window"] = {"select": ["id"], "where": {"customer_id_eq": 3}}
    w = run(ip, "%%fraiseql --variables window --limit 2\n{ sales_window }")
    assert w.df.height == 2
    assert "no such variable" in str(
        fail(ip, "%%fraiseql --variables nothing\n{ sales_aggregate }")
    )
    ip.user_ns["text"] = "x"
    assert "a dict, not str" in str(fail(ip, "%%fraiseql --variables text\n{ sales_aggregate }"))


def test_line_form_and_several_root_fields(ip: InteractiveShell) -> None:
    r = run(ip, "%fraiseql { a: users(limit: 1) { id } b: sales_aggregate { count } }")
    assert isinstance(r, fq.Results)
    assert r.to_graphql() == {"data": {"a": [{"id": 1}], "b": [{"count": 100_000}]}}


@pytest.mark.parametrize("backend", ["arrow", "postgres"])
def test_backend_option_is_obeyed(ip: InteractiveShell, backend: str) -> None:
    r = run(
        ip,
        f"%%fraiseql --backend {backend}\n"
        "{ sales_aggregate(groupBy: {region: true}, orderBy: [{region: ASC}]) { region count } }",
    )
    assert r.backend == backend
    assert sum(r.df["count"]) == 100_000


def test_wrong_backend_for_the_query_fails_the_cell(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    err = fail(ip, "%%fraiseql --backend wire\n{ sales_aggregate { count } }")
    assert isinstance(err, fq.QueryError)
    out = capsys.readouterr().out
    assert "the 'wire' plane runs row queries only" in out
    assert "Traceback" not in out


def test_explain_option_runs_nothing(ip: InteractiveShell) -> None:
    before = len(_log(ip))
    plan = run(ip, "%%fraiseql --explain\n{ users(limit: 1) { id } }")
    assert plan["users"].backend == "wire"
    assert "LIMIT (1::bigint)" in plan["users"].sql["wire"]
    assert len(_log(ip)) == before


def test_no_cache_reloads(ip: InteractiveShell) -> None:
    q = "{ sales_aggregate(groupBy: {category: true}) { category revenue_sum } }"
    run(ip, f"%%fraiseql --backend arrow\n{q}")
    warm = run(ip, f"%%fraiseql --backend arrow\n{q}")
    assert warm.metrics.cache_hit is True
    fresh = run(ip, f"%%fraiseql --backend arrow --no-cache\n{q}")
    assert fresh.metrics.cache_hit is False
    assert fresh.metrics.bytes > 0
    a, b = fresh.df.sort("category"), warm.df.sort("category")
    assert a["category"].to_list() == b["category"].to_list()
    # Float sums may differ in the last bit: Polars adds in parallel chunks.
    assert a["revenue_sum"].to_list() == pytest.approx(b["revenue_sum"].to_list(), rel=1e-12)


def test_limit_option_and_autolimit(ip: InteractiveShell) -> None:
    r = run(ip, "%%fraiseql --limit 3\n{ users(orderBy: [{id: ASC}]) { id } }")
    assert r.df["id"].to_list() == [1, 2, 3]
    assert r.limited == 3
    assert "limited to 3 rows" in shown(r)["text/plain"]
    # An explicit limit in the query wins over the option.
    assert run(ip, "%fraiseql --limit 3 { users(limit: 1) { id } }").df.height == 1
    run(ip, "%config FraiseQL.autolimit = 4")
    try:
        assert run(ip, "%fraiseql { users { id } }").df.height == 4
        assert run(ip, "%fraiseql { sales_aggregate { count } }").df["count"][0] == 100_000
    finally:
        run(ip, "%config FraiseQL.autolimit = 0")
    assert run(ip, "%fraiseql { users { id } }").df.height == 10_000


def test_variables_bind_from_the_namespace(ip: InteractiveShell) -> None:
    ip.user_ns.update(n=2, names=("Mateo Smith", "Émilie Martin"), since=dt.date(1990, 1, 1))
    r = run(
        ip,
        "%%fraiseql\n"
        "{ users(limit: $n, orderBy: [{id: ASC}], where: {name: {in: $names}}) { id name } }",
    )
    assert r.to_dicts() == FIRST_USERS
    # Declared variables: the namespace's value, else the default.
    r = run(ip, "%%fraiseql\nquery ($n: Int = 5) { users(limit: $n) { id } }")
    assert r.df.height == 2
    del ip.user_ns["n"]
    r = run(ip, "%%fraiseql\nquery ($n: Int = 5) { users(limit: $n) { id } }")
    assert r.df.height == 5
    err = fail(ip, "%%fraiseql\n{ users(limit: $missing) { id } }")
    assert isinstance(err, fq.QueryError)
    assert "$missing is not declared and not defined in the notebook" in str(err)
    assert (err.line, err.column) == (2, 16)
    ip.user_ns["n"] = "three"
    err = fail(ip, "%fraiseql { users(limit: $n) { id } }")
    assert isinstance(err, fq.QueryError)
    assert "Int cannot represent" in str(err)


def test_a_bad_query_fails_short_with_the_cell_position(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    err = fail(ip, "%%fraiseql\n{\n  users { id nme }\n}")
    assert isinstance(err, fq.QueryError)
    assert (err.line, err.column) == (3, 14)
    out = capsys.readouterr().out
    assert out.splitlines()[:4] == [
        "QueryError: Cannot query field 'nme' on type 'User'. Did you mean 'name' or 'age'?",
        "  at cell line 3, column 14:",
        "      users { id nme }",
        "                 ^",
    ]
    assert len(out.splitlines()) <= 5
    # The same on one line: the column counts "%fraiseql " too.
    err = fail(ip, "%fraiseql { users(limit: 1) { nme } }")
    assert (err.line, err.column) == (1, 31)  # type: ignore[attr-defined]
    # A syntax error, with a bound variable inserted before it.
    ip.user_ns["k"] = 1
    err = fail(ip, "%%fraiseql\n{ users(limit: $k) { id ! } }")
    assert isinstance(err, fq.QueryError)
    assert (err.line, err.column) == (2, 25)


def test_user_code_errors_keep_their_traceback(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    ip.user_ns["fq"] = fq
    fail(ip, "def f():\n    raise fq.QueryError('from my code')\nf()")
    out = capsys.readouterr().out
    assert "from my code" in out
    assert "----> 3 f()" in out  # IPython's own traceback, pointing into the user's code


def test_a_database_failure_fails_the_cell(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    err = fail(
        ip, "%fraiseql connect 'postgresql://fq:sekrit-pw@127.0.0.1:1/nowhere?connect_timeout=2'"
    )
    assert isinstance(err, fq.BackendError)
    out = capsys.readouterr().out
    assert out.startswith("BackendError: ")
    assert "sekrit-pw" not in out
    assert "sekrit-pw" not in str(err)
    # The failed connect kept the session that was open.
    assert run(ip, "%fraiseql { user(id: 1) { id } }").to_graphql() == {"data": {"user": {"id": 1}}}


def test_password_never_shown_nor_kept_in_history(
    ip: InteractiveShell, demo_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "pw-" + uuid.uuid4().hex[:8]
    dsn = f"{demo_dsn} password={secret}"  # the embedded server trusts local users
    run(ip, f'%fraiseql connect "{dsn}"')
    shown = capsys.readouterr().out
    assert shown.startswith("connected to ")
    assert "password=***" in shown
    hm = ip.history_manager
    hm.writeout_cache()
    assert not [h for h in hm.input_hist_raw + hm.input_hist_parsed if secret in h]
    assert not [k for k, v in ip.user_ns.items() if isinstance(v, str) and secret in v]
    stored = [src for _, _, src in hm.get_range(raw=True)] + [
        src for _, _, src in hm.get_range(raw=False)
    ]
    assert not [s for s in stored if secret in s]
    assert secret not in repr(ip.magics_manager.registry["FraiseQL"].session)
    # A URI password, in a cell that also fails: gone from the history all the same.
    uri_secret = "pw-" + uuid.uuid4().hex[:8]
    fail(
        ip,
        f"%fraiseql connect postgresql://fq:{uri_secret}@127.0.0.1:1/x --config /nonexistent.toml",
    )
    assert uri_secret not in capsys.readouterr().out
    hm.writeout_cache()
    assert not [h for h in hm.input_hist_raw if uri_secret in h]
    assert not [s for _, _, s in hm.get_range(raw=True) if uri_secret in s]
    on_disk = hm.db.execute("SELECT source, source_raw FROM history").fetchall()
    assert any("%fraiseql connect" in raw for _, raw in on_disk)  # the history was written
    assert not [
        row for row in on_disk if uri_secret in row[0] + row[1] or secret in row[0] + row[1]
    ]
    run(ip, "%fraiseql connect $demo_dsn")


def test_subcommands(ip: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    schema = run(ip, "%fraiseql schema")
    text = shown(schema)["text/plain"]
    assert "users" in text and "sales_aggregate" in text
    assert "measures:" in text and "revenue Float" in text
    assert "<details>" in shown(schema)["text/html"]
    assert repr(schema) == "<Schema: 3 entities, 1 fact table, 0 problems>"
    health = run(ip, "%fraiseql health")
    assert health["status"] == "healthy"
    lines = repr(health).splitlines()
    assert lines[0] == "healthy"
    assert [line.split()[:2] for line in lines[1:4]] == [
        ["wire", "healthy"],
        ["arrow", "healthy"],
        ["postgres", "healthy"],
    ]
    assert "pool: size " in lines[1] and "{" not in repr(health)  # read, not JSON
    run(ip, "%fraiseql { sales_aggregate { count } }")
    log = run(ip, "%fraiseql metrics")
    assert "sql" not in log.columns
    assert log["root_field"][-1] == "sales_aggregate"
    text = repr(log)  # a formatted table, not Polars' debugging view with its dtype row
    assert text.splitlines()[0].split()[:3] == ["backend", "kind", "root_field"]
    assert text.endswith("(newest last)") and "┆" not in text and "i64" not in text
    assert "<table" in log._repr_html_()
    run(ip, "%fraiseql prefetch sales --wait")  # no load of it left running
    capsys.readouterr()
    run(ip, "%fraiseql refresh sales")
    assert capsys.readouterr().out.startswith("dropped ")
    reloaded = run(ip, "%fraiseql --backend arrow { sales_aggregate { count } }")
    assert reloaded.metrics.cache_hit is False  # refresh dropped the loaded copy
    assert reloaded.df["count"][0] == 100_000
    capsys.readouterr()
    assert run(ip, "%fraiseql schema --sdl") is None
    sdl = capsys.readouterr().out
    assert "type Query {" in sdl and "sales_aggregate(" in sdl and "input UserWhereInput {" in sdl
    err = fail(ip, "%fraiseql schema --json")
    assert isinstance(err, UsageError) and "schema takes only --sdl" in str(err)


def test_every_magic_line_takes_a_trailing_comment(
    ip: InteractiveShell, demo_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ip.user_ns["commented_dsn"] = demo_dsn
    run(ip, "%fraiseql connect $commented_dsn   # the demo database")
    assert "connected to" in capsys.readouterr().out
    run(ip, "%fraiseql schema --sdl  # for codegen")
    assert "type Query {" in capsys.readouterr().out
    assert run(ip, "%fraiseql health # all planes")["status"] == "healthy"
    assert isinstance(run(ip, "%fraiseql session  # the Python API"), fq.Session)
    r = run(ip, "%%fraiseql --backend postgres -o c  # on PostgreSQL\n{ users(limit: 2) { id } }")
    assert (r.backend, r.df["id"].to_list()) == ("postgres", [1, 2])
    # In a line query, "#" is GraphQL's own comment; inside a string it is text.
    r = run(ip, '%fraiseql { users(where: {name: {eq: "a # b"}}) { id } }  # none has it')
    assert r.df.height == 0
    run(ip, "%fraiseql prefetch sales --wait  # load it now")
    assert "sales" in capsys.readouterr().out
    run(ip, "%fraiseql refresh sales # start again")
    assert "of sales" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        ("--demo          # the embedded server", "--demo"),
        ("# only a comment", ""),
        ("password=a#b host=x  # a # inside a word stays", "password=a#b host=x"),
        ("'a # b' \"c # d\" # e", "'a # b' \"c # d\""),
        ("x \\# y", "x \\# y"),
        ("sales", "sales"),
    ],
)
def test_comments_are_read_as_a_shell_reads_them(line: str, kept: str) -> None:
    from fraiseql_nb.notebook.magics import without_comment

    assert without_comment(line) == kept


def test_usage_errors(ip: InteractiveShell) -> None:
    from IPython.core.error import UsageError

    for cell in (
        "%fraiseql",
        "%fraiseql --backend duck { users { id } }",
        "%fraiseql explore",
        "%%fraiseql schema\n{ users { id } }",
    ):
        assert isinstance(fail(ip, cell), UsageError), cell
    assert isinstance(fail(ip, "%fraiseql explore nothing"), fq.QueryError)


def test_config_options(ip: InteractiveShell) -> None:
    magics = ip.magics_manager.registry["FraiseQL"]
    assert isinstance(magics, FraiseQL)
    run(ip, "%config FraiseQL.displaylimit = 3")
    try:
        r = run(ip, "%fraiseql { users(limit: 10) { id } }")
        text = shown(r)["text/plain"]
        assert "showing 3 of 10 rows" in text
        assert text.splitlines()[3:-1] == [" 1", " 2", " 3"]
        assert "showing 3 of 10 rows" in shown(r)["text/html"]
    finally:
        run(ip, "%config FraiseQL.displaylimit = 20")
    with pytest.raises(TraitError):
        magics.displaylimit = -1
    run(ip, "%config FraiseQL.widgets = False")
    run(ip, "%config FraiseQL.progress = False")
    assert (magics.widgets, magics.progress) == (False, False)
    run(ip, "%config FraiseQL.widgets = True")
    run(ip, "%config FraiseQL.progress = True")
    from fraiseql_nb.notebook.display import OPTIONS, grid_html

    run(ip, "%config FraiseQL.gridlimit = 4")
    try:
        grid = grid_html(run(ip, "%fraiseql { users(limit: 10) { id } }"))
        assert OPTIONS.gridlimit == 4 and '"total":10' in grid and '"cells":[["1"],' in grid
        assert '"cells":[["1"],["2"],["3"],["4"]],' in grid  # four rows held
    finally:
        run(ip, "%config FraiseQL.gridlimit = 1000")
    with pytest.raises(TraitError):
        magics.gridlimit = -1


def test_not_connected_is_a_clear_error(demo_dsn: str) -> None:
    from IPython.core.error import UsageError

    shell = InteractiveShell.instance()
    magics = FraiseQL(shell=shell)
    with pytest.raises(UsageError, match="not connected: run %fraiseql connect --demo"):
        magics.fraiseql("{ users { id } }")


# ---------------------------------------------------------------- interrupt


@pytest.fixture
def endless_dsn(scratch_dsn: str) -> str:
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE VIEW v_endless AS"
            " SELECT g::bigint AS id, jsonb_build_object('id', g, 'pad', repeat('x', 100)) AS data"
            " FROM (SELECT generate_series(1, 1000000000) AS g) AS s"
        )
        conn.execute(
            "CREATE VIEW v_few AS SELECT g::bigint AS id, jsonb_build_object('id', g) AS data"
            " FROM generate_series(1, 3) AS g"
        )
    return scratch_dsn


def _active(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND state = 'active' AND pid <> pg_backend_pid()"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_interrupt_stops_the_server_query_and_the_next_cell_works(
    ip: InteractiveShell, endless_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ip.user_ns["endless"] = endless_dsn
    run(ip, "%fraiseql connect $endless")
    try:
        capsys.readouterr()
        started = time.monotonic()
        # A kernel interrupt is a SIGINT to the process, sent once the query runs on the
        # server and the progress line shows (after a second), whatever the machine's pace.
        sender = Interrupter(lambda: time.monotonic() - started > 1.5 and _active(endless_dsn) > 0)
        with sender:
            err = fail(ip, "%%fraiseql\n{ endlesses { id pad } }")
            took = sender.delay()
        assert isinstance(err, KeyboardInterrupt)
        assert took < 1.0
        deadline = time.monotonic() + 1.0
        while _active(endless_dsn) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _active(endless_dsn) == 0
        progress = capsys.readouterr().err
        assert "fraiseql: fetching " in progress
        assert "rows · " in progress and "batches" in progress
        assert "fraiseql: interrupted after " in progress
        r = run(ip, "%fraiseql { fews { id } }")
        assert r.df["id"].to_list() == [1, 2, 3]
    finally:
        run(ip, "%fraiseql connect $demo_dsn")


def _log(ip: InteractiveShell) -> list[object]:
    return ip.magics_manager.registry["FraiseQL"].session.query_log.to_dicts()


def test_a_real_kernel_interrupt(endless_dsn: str) -> None:
    """Through Jupyter's own machinery: a kernel, an interrupt request, the next cell."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:

        def execute(code: str, timeout: float = 60) -> dict[str, object]:
            msg_id = kc.execute(code)
            return kc.get_shell_msg(timeout=timeout)["content"] if msg_id else {}

        connect = execute(f"%load_ext fraiseql_nb\n%fraiseql connect {endless_dsn!r}")
        assert connect["status"] == "ok", connect
        msg_id = kc.execute("%%fraiseql\n{ endlesses { id pad } }")
        until(lambda: _active(endless_dsn) == 1)
        interrupted = time.monotonic()
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=30)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert time.monotonic() - interrupted < 1.5
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        deadline = time.monotonic() + 1.0
        while _active(endless_dsn) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _active(endless_dsn) == 0
        after = execute("r = %fraiseql { fews { id } }\nassert r.df['id'].to_list() == [1, 2, 3]")
        assert after["status"] == "ok", after
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_the_magics_never_show_the_password(
    ip: InteractiveShell, demo_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.hidden import SECRET, assert_hidden

    secret_dsn = make_conninfo(demo_dsn, password=SECRET)
    ip.user_ns["secret_dsn"] = secret_dsn
    bad = f"postgresql://fq:{urllib.parse.quote(SECRET, safe='')}@127.0.0.1:1/db"
    err = fail(ip, f"%fraiseql connect {bad}")
    assert_hidden(str(err), "a failed %fraiseql connect")
    ip.run_cell("%fraiseql connect $secret_dsn", store_history=True)
    shown = [
        ip.run_cell("%fraiseql health", store_history=True).result,
        ip.run_cell("%fraiseql metrics", store_history=True).result,
        ip.run_cell("%fraiseql session", store_history=True).result,
        ip.run_cell("%%fraiseql --explain\n{ users(limit: 1) { id } }", store_history=True).result,
    ]
    for value in shown:
        assert value is not None
        assert_hidden(repr(value), "a magic's output")
    assert_hidden(capsys.readouterr(), "what the magics printed")
    ip.run_cell("%fraiseql connect $demo_dsn", store_history=True)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("%%fraiseql\n{ us", ["user", "users"]),
        ("%%fraiseql\n{ users { na", ["name"]),
        ("%%fraiseql\n{ users(where: {age: {g", ["gt", "gte"]),
        ("%%fraiseql\n{ sales_aggregate(groupBy: {occurred_at_", None),
        (
            "%%fraiseql -o r\nquery { users(orderBy: [{age: D",
            ["DESC", "DESC_NULLS_FIRST", "DESC_NULLS_LAST"],
        ),
        ("%fraiseql { sales_window { lag(field: rev", ["revenue"]),
        # FraiseQL's aggregates and filter: are offered; its other spellings are not
        ("%%fraiseql\n{ sales_aggregate { category_s", ["category_string_agg"]),
        ("%%fraiseql\n{ sales_aggregate { channel_a", ["channel_array_agg"]),
        ("%%fraiseql\n{ sales_aggregate { web: revenue_sum(fi", ["filter"]),
        (
            "%%fraiseql\n{ users(where: {status: {n",
            ["neq", "nilike", "nin", "niregex", "nlike", "nregex"],
        ),
    ],
)
def test_tab_completes_from_the_schema(
    ip: InteractiveShell, cell: str, expected: list[str] | None
) -> None:
    with provisionalcompleter():
        found = sorted(c.text for c in ip.Completer.completions(cell, len(cell)))
    if expected is None:  # the time buckets of occurred_at
        units = ("day", "hour", "minute", "month", "quarter", "second", "week", "year")
        assert found == [f"occurred_at_{b}" for b in units]
    else:
        assert found == expected


def test_completion_leaves_python_cells_alone(ip: InteractiveShell) -> None:
    text = "import fraiseql_nb\nfraiseql_nb.con"
    with provisionalcompleter():
        found = [c.text for c in ip.Completer.completions(text, len(text))]
    assert "fraiseql_nb.connect" in found or "connect" in found
