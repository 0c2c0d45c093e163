"""The command line as a user meets it: the main job, bad input, concurrent and killed loads."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from fraiseql_nb.local import demo, embedded
from fraiseql_nb.pg.conninfo import with_database
from tests.conftest import run_cli, short_tempdir

# Big enough that a load is still running a second or two after it starts.
SLOW_LOAD = ("--users", "2000", "--products", "100", "--orders", "1000", "--sales", "1500000")
TINY = demo.Counts(users=200, products=20, orders=100, sales=1_000)


def assert_one_line_error(result_stderr: str, *, forbidden: tuple[str, ...] = ()) -> None:
    lines = result_stderr.strip().splitlines()
    assert len(lines) == 1, result_stderr
    assert re.match(r"fraiseql-nb( \w+)?: error: ", lines[0]), lines[0]
    assert "Traceback" not in result_stderr
    for word in forbidden:
        assert word not in result_stderr


# ------------------------------------------------------------- the main job


def test_demo_starts_the_server_loads_once_and_prints_a_summary() -> None:
    home = short_tempdir("fqd-")
    env = {"FRAISEQL_HOME": str(home)}
    try:
        first = run_cli("demo", env=env)
        assert first.returncode == 0, first.stderr
        assert (
            "scale small (10,000 users, 500 products, 20,000 orders, 100,000 sales), loaded in"
            in first.stdout
        )
        for line in (
            "v_user     entity view      10,000",
            "tf_sales   fact table      100,000",
            "v_order    entity view      20,000",
            "v_product  entity view         500",
        ):
            assert line in first.stdout
        assert f"data {home / 'pgdata'}" in first.stdout
        dsn = next(w for w in first.stdout.split() if w.startswith("postgresql://"))
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT count(*) FROM v_user").fetchone() == (10_000,)

        # The showcase ran every query kind through the router.
        assert "row query (wire plane, streamed): wire (row query) · " in first.stdout
        # A new database: PostgreSQL answers at once while the arrow plane loads aside.
        assert (
            "aggregate, first time: postgres (arrow cold: loading in the background) · "
            in first.stdout
        )
        assert "(the arrow plane loaded tf_sales in the background: waited" in first.stdout
        assert "the same aggregate again: arrow (cached) · " in first.stdout
        assert "cache hit" in first.stdout
        assert "window query: " in first.stdout
        assert "health: healthy (wire healthy, arrow healthy, postgres healthy)" in first.stdout

        second = run_cli("demo", env=env)
        assert second.returncode == 0, second.stderr
        assert "already loaded" in second.stdout
        # A new process: the loaded columns come from the store, no load at all.
        assert "aggregate, first time: arrow (stored) · " in second.stdout
    finally:
        embedded.stop(home)


def test_fraiseql_dsn_wins_over_the_embedded_server(scratch_dsn: str, tmp_path: Path) -> None:
    dsn = f"{scratch_dsn} password=sekret-1234"  # trust auth ignores it; output must hide it
    home = tmp_path / "unused-home"
    result = run_cli(
        "demo",
        "--users",
        "50",
        "--products",
        "5",
        "--orders",
        "10",
        "--sales",
        "100",
        env={"FRAISEQL_DSN": dsn, "FRAISEQL_HOME": str(home)},
    )
    assert result.returncode == 0, result.stderr
    assert "server: $FRAISEQL_DSN" in result.stdout
    assert "password=***" in result.stdout
    assert "sekret" not in result.stdout + result.stderr
    assert not home.exists()  # no embedded server was started
    with psycopg.connect(scratch_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM tf_sales").fetchone() == (100,)


# --------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("demo", "--scale", "huge"), "invalid choice: 'huge'"),
        (("demo", "load", "--users", "-5"), "must not be negative, got -5"),
        (("demo", "load", "--sales", "lots"), "expected a whole number, got 'lots'"),
        (("demo", "unload"), "invalid choice: 'unload'"),
        (("db", "restart"), "invalid choice: 'restart'"),
    ],
)
def test_bad_arguments_get_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    result = run_cli(*args, env={"FRAISEQL_HOME": "/nonexistent/never-used"})
    assert result.returncode == 2
    assert_one_line_error(result.stderr)
    assert message in result.stderr


def test_zero_users_is_refused_with_the_valid_range() -> None:
    result = run_cli("demo", "load", "--users", "0", env={"FRAISEQL_DSN": "host=/nonexistent"})
    assert result.returncode == 1
    assert_one_line_error(result.stderr)
    assert "users must be a whole number from 1" in result.stderr


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("postgresql://fq:s3cret-pw@127.0.0.1:1/nowhere", "Connection refused"),
        ("host=127.0.0.1 port=1 user=fq password=s3cret-pw", "Connection refused"),
        ("this is not a dsn password=s3cret-pw", "not a valid connection string"),
    ],
)
def test_unreachable_or_wrong_fraiseql_dsn(dsn: str, message: str) -> None:
    result = run_cli("demo", env={"FRAISEQL_DSN": dsn})
    assert result.returncode == 1
    assert_one_line_error(result.stderr, forbidden=("s3cret",))
    assert message in result.stderr
    assert "FRAISEQL_DSN" in result.stderr  # says what to fix


def test_fraiseql_dsn_naming_a_missing_database(server_dsn: str) -> None:
    dsn = with_database(server_dsn, "no_such_database") + " password=s3cret-pw"
    result = run_cli("demo", env={"FRAISEQL_DSN": dsn})
    assert result.returncode == 1
    assert_one_line_error(result.stderr, forbidden=("s3cret",))
    assert 'database "no_such_database" does not exist' in result.stderr


# ------------------------------------------------- concurrent and killed loads


def _start_slow_load(server_dsn: str, database: str) -> subprocess.Popen[str]:
    env = {**os.environ, "FRAISEQL_DSN": server_dsn}
    return subprocess.Popen(
        [sys.executable, "-m", "fraiseql_nb", "demo", "load", *SLOW_LOAD, "--database", database],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _load_backends(server_dsn: str, database: str) -> int:
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        (n,) = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
            " AND application_name = 'fraiseql-nb demo load'",
            (database,),
        ).fetchone()
    return int(n)


def _wait_until_loading(server_dsn: str, database: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while _load_backends(server_dsn, database) == 0:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the load never started"
        time.sleep(0.05)
    time.sleep(0.5)  # well inside the generation, not in the first statements


def _wait_until_gone(server_dsn: str, database: str) -> None:
    deadline = time.monotonic() + 30
    while _load_backends(server_dsn, database):
        assert time.monotonic() < deadline, "the killed load's backend kept running"
        time.sleep(0.1)


def _tables(dsn: str) -> tuple[bool, demo.Counts | None]:
    with psycopg.connect(dsn) as conn:
        (has_user,) = conn.execute("SELECT to_regclass('public.tb_user') IS NOT NULL").fetchone()
        return bool(has_user), demo.loaded_counts(conn)


def test_a_second_load_while_one_runs_is_refused(server_dsn: str, scratch_dsn: str) -> None:
    database = conninfo_to_dict(scratch_dsn)["dbname"]
    first = _start_slow_load(server_dsn, database)
    try:
        _wait_until_loading(server_dsn, database, first)
        second = run_cli(
            "demo",
            "load",
            "--scale",
            "small",
            "--database",
            database,
            env={"FRAISEQL_DSN": server_dsn},
        )
        assert second.returncode == 1
        assert_one_line_error(second.stderr)
        assert "another demo load is running" in second.stderr
    finally:
        _out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert _tables(scratch_dsn) == (True, demo.Counts(2000, 100, 1000, 1_500_000))


def test_a_killed_load_leaves_the_database_as_it_was(server_dsn: str, scratch_dsn: str) -> None:
    database = conninfo_to_dict(scratch_dsn)["dbname"]

    def kill_a_load_midway() -> None:
        proc = _start_slow_load(server_dsn, database)
        _wait_until_loading(server_dsn, database, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _wait_until_gone(server_dsn, database)

    kill_a_load_midway()  # empty before: empty after
    assert _tables(scratch_dsn) == (False, None)

    demo.load(scratch_dsn, TINY)
    kill_a_load_midway()  # complete before: the same complete load after
    assert _tables(scratch_dsn) == (True, TINY)
    with psycopg.connect(scratch_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM tf_sales").fetchone() == (TINY.sales,)

    # And the next load works.
    assert not demo.load(scratch_dsn, TINY).skipped


def test_serve_answers_over_http(demo_dsn: str) -> None:
    import json
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "FRAISEQL_DSN": demo_dsn}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fraiseql_nb", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as resp:
                    assert json.loads(resp.read())["ready"] is True
                    break
            except OSError:
                assert time.monotonic() < deadline, "serve never became ready"
                time.sleep(0.2)
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/graphql",
            data=json.dumps({"query": "{ user(id: 2) { name } }"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert json.loads(resp.read()) == {"data": {"user": {"name": "Mateo Smith"}}}
    finally:
        proc.terminate()
        proc.wait(timeout=20)
