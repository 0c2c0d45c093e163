"""A password never reaches what is printed, returned or logged, on any path.

The embedded server trusts local connections, so a DSN carrying a password
connects all the same: every output of a working session is searched for
it, and every error of a failing one, through the library, the command
line, the HTTP endpoint and the notebook magics.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

import fraiseql_nb as fq
from tests.conftest import run_cli, shown
from tests.hidden import SECRET, assert_hidden
from tests.web.serving import graphql, request, serve


@pytest.fixture
def secret_dsn(demo_dsn: str) -> str:
    return make_conninfo(demo_dsn, password=SECRET)


def test_a_working_session_never_shows_its_password(
    secret_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with fq.connect(secret_dsn) as s:
        for what, value in {
            "repr(session)": repr(s),
            "session.dsn": s.dsn,
            "config": repr(s.config),
            "health": json.dumps(s.health()),
            "ready": json.dumps(s.ready()),
            "metrics": s.metrics_text(),
            "pool stats": s.pool_stats(),
            "cache stats": s.cache_stats(),
        }.items():
            assert_hidden(value, what)
        for text in ("{ users(limit: 2) { id name } }", "{ sales_aggregate { revenue_sum } }"):
            for backend in ("auto", "postgres"):
                result = s.execute(text, backend=backend)
                assert_hidden(repr(result), "a result's repr")
                assert_hidden(json.dumps(shown(result), default=str), "a result's display")
                assert_hidden(result.sql, "a result's SQL")
            assert_hidden(repr(s.explain(text)), "explain")
            assert_hidden(s.explain(text)._repr_html_(), "explain as HTML")
        assert_hidden(s.query_log.write_csv(), "the query log")
        with pytest.raises(fq.QueryError) as info:
            s.execute("{ users { nope } }")
        assert_hidden(str(info.value), "a query error")
    assert_hidden(caplog.text, "the log")


def test_failures_never_show_the_password(
    secret_dsn: str, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    unreachable = f"postgresql://fq:{urllib.parse.quote(SECRET, safe='')}@127.0.0.1:1/db"
    for dsn in (
        unreachable,
        f"host=127.0.0.1 port=1 user=fq password={SECRET}",
        f"host=127.0.0.1 port=notaport password='{SECRET}'",
        f"postgresql+psycopg://fq:{SECRET}@/db?host=/nonexistent",
        f"postgresql://fq:{SECRET}%zz@/db",
        f"host=/tmp sslpassword={SECRET} password='{SECRET}",
    ):
        with pytest.raises(fq.FraiseQLError) as info:
            fq.connect(dsn)
        assert_hidden(str(info.value), f"connect({dsn[:20]}…)")
        assert_hidden(repr(info.value), "the error's repr")
    with pytest.raises(fq.BackendError) as err:
        fq.connect(secret_dsn, config={"connections": {"statement_timeout_ms": 1}})
    assert "reading the schema failed" in str(err.value)
    assert_hidden(str(err.value), "a schema read past the timeout")
    with fq.connect(secret_dsn, config={"connections": {"statement_timeout_ms": 50}}) as s:
        with pytest.raises(fq.BackendError) as err:
            s.execute(
                "{ sales_window(orderBy: [{revenue: DESC}]) { id n: row_number } }",
                backend="postgres",
            )
        assert "statement timeout" in str(err.value)
        assert_hidden(str(err.value), "a timeout")
        assert_hidden(s.query_log.write_csv(), "the query log after errors")
        assert_hidden(s.metrics_text(), "metrics after errors")
    # The database goes away under a session.
    with fq.connect(secret_dsn) as s:
        s.execute("{ users(limit: 1) { id } }")
        with psycopg.connect(secret_dsn, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name LIKE 'fraiseql-nb%' AND pid <> pg_backend_pid()"
            )
        try:
            s.execute("{ users(limit: 1) { id } }", backend="wire")
        except fq.BackendError as exc:
            assert_hidden(str(exc), "a lost connection")
        assert_hidden(json.dumps(s.health()), "health after a lost connection")
    assert_hidden(caplog.text, "the log")


def test_the_command_line_never_shows_the_password(secret_dsn: str, tmp_path: Path) -> None:
    bad = f"host=127.0.0.1 port=1 user=fq password={SECRET}"
    for args, env in (
        (("demo",), {"FRAISEQL_DSN": bad}),
        (("demo", "load", "--scale", "small"), {"FRAISEQL_DSN": bad}),
        (("serve", "--port", "1"), {"FRAISEQL_DSN": bad}),
        (("serve", "--dsn", bad), {}),
        (("cache", "status"), {"FRAISEQL_DSN": bad}),
    ):
        out = run_cli(*args, env=env, timeout=120)
        assert out.returncode != 0 or args[0] == "cache", args
        assert_hidden(out.stdout + out.stderr, f"fraiseql-nb {' '.join(args)}")
    dsn_file = tmp_path / "dsn"
    dsn_file.write_text(bad, encoding="utf-8")
    out = run_cli("serve", "--dsn-file", str(dsn_file), timeout=120)
    assert out.returncode != 0
    assert_hidden(out.stdout + out.stderr, "serve --dsn-file")


def test_serve_never_shows_the_password(secret_dsn: str, tmp_path: Path) -> None:
    """The process list, the answers (200, 400, 503) and the server's own output."""
    with serve(secret_dsn, tmp_path) as served:
        command = subprocess.run(
            ["ps", "-o", "args=", "-p", str(served.proc.pid)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        assert "fraiseql_nb" in command
        assert_hidden(command, "the process list")
        answers = [
            graphql(served, {"query": "{ users(limit: 1) { id } }"}),
            graphql(served, {"query": "{ users { nope } }"}),
            graphql(served, {"query": "{ users { id } }", "extensions": {"backend": "nope"}}),
            request(f"{served.url}/health", method="GET"),
            request(f"{served.url}/ready", method="GET"),
            request(f"{served.url}/metrics", method="GET"),
        ]
        # Request errors are 200s with "errors" under application/json (GraphQL over HTTP).
        assert [status for status, _ in answers] == [200, 200, 200, 200, 200, 200]
        assert [isinstance(b, dict) and "errors" in b for _, b in answers[:3]] == [
            False,
            True,
            True,
        ]
        for status, body in answers:
            assert_hidden(json.dumps(body), f"an HTTP {status}")
        # The access log line is written once the response is out: give it a moment.
        deadline = time.monotonic() + 10
        log = served.stderr()
        while "GET /metrics 200" not in log and time.monotonic() < deadline:
            time.sleep(0.05)
            log = served.stderr()
    assert "GET /metrics 200" in log
    assert_hidden(log, "the server's output")


def test_no_environment_variable_leaks_into_a_child_command_line() -> None:
    """``fraiseql-nb`` never re-executes itself with the DSN as an argument."""
    env = {**os.environ, "FRAISEQL_DSN": f"host=127.0.0.1 port=1 password={SECRET}"}
    proc = subprocess.run(
        [sys.executable, "-m", "fraiseql_nb", "db", "status"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert_hidden(proc.stdout + proc.stderr, "db status")
