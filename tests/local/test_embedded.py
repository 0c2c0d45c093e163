"""The embedded server: start, reuse from another process, stop, status, data folder."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from fraiseql_nb import BackendError
from fraiseql_nb.local import embedded
from tests.conftest import run_cli, short_tempdir

is_root = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def home() -> Iterator[Path]:
    """A fresh FRAISEQL_HOME; its server is stopped afterwards."""
    path = short_tempdir("fqe-")
    yield path
    embedded.stop(path)


def _pid(stdout: str) -> int:
    words = stdout.split()
    return int(words[words.index("pid") + 1])


def test_start_reuses_the_running_server_and_stop_stops_it(home: Path) -> None:
    env = {"FRAISEQL_HOME": str(home)}
    first = run_cli("db", "start", env=env)
    assert first.returncode == 0, first.stderr
    second = run_cli("db", "start", env=env)  # another process: must reuse, not start anew
    assert second.returncode == 0, second.stderr
    assert _pid(first.stdout) == _pid(second.stdout)
    assert embedded.start(home).pid == _pid(first.stdout)  # and from this process too

    status = run_cli("db", "status", env=env)
    assert status.returncode == 0
    assert _pid(status.stdout) == _pid(first.stdout)

    dsn = run_cli("db", "dsn", env=env).stdout.strip()
    assert dsn.startswith("postgresql://postgres@/postgres?host=")
    assert "demo " not in status.stdout  # not loaded in this server
    demo_dsn = run_cli("db", "dsn", "--demo", env=env).stdout.strip()
    assert demo_dsn.startswith("postgresql://postgres@/fraiseql_demo_small?host=")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (7)")

    stopped = run_cli("db", "stop", env=env)
    assert stopped.returncode == 0
    assert stopped.stdout.startswith("stopped")
    after = run_cli("db", "status", env=env)
    assert after.returncode == 3
    assert after.stdout.startswith("not running")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=3)
    assert run_cli("db", "stop", env=env).stdout.startswith("not running")

    again = embedded.start(home)
    assert again.running
    assert again.pid != _pid(first.stdout)
    with psycopg.connect(again.dsn()) as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [(7,)]


def test_server_settings_offer_change_capture_and_print_utc(home: Path) -> None:
    with psycopg.connect(embedded.start(home).dsn()) as conn:
        settings = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings"
                " WHERE name IN ('wal_level', 'TimeZone', 'max_replication_slots')"
            ).fetchall()
        )
        version = conn.execute("SHOW server_version_num").fetchone()[0]
    assert settings == {"wal_level": "logical", "TimeZone": "UTC", "max_replication_slots": "16"}
    assert int(version) >= 180000


def test_a_server_made_by_an_earlier_version_moves_to_logical_when_it_starts(
    home: Path,
) -> None:
    embedded.start(home)
    embedded.stop(home)
    conf = home / "pgdata" / "postgresql.conf"
    text = conf.read_text(encoding="utf-8")
    conf.write_text(
        text.replace(
            "wal_level = logical\nmax_wal_senders = 4\nmax_replication_slots = 16\n",
            "wal_level = minimal\nmax_wal_senders = 0\n",
        ),
        encoding="utf-8",
    )
    with psycopg.connect(embedded.start(home).dsn()) as conn:
        assert conn.execute("SHOW wal_level").fetchone() == ("logical",)


def test_status_of_a_new_home_starts_nothing(tmp_path: Path) -> None:
    home = tmp_path / "never-started"
    result = run_cli("db", "status", env={"FRAISEQL_HOME": str(home)})
    assert result.returncode == 3
    assert result.stdout.startswith("not running")
    assert not home.exists()
    assert not embedded.status(home).running


def test_fraiseql_home_overrides_the_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FRAISEQL_HOME", str(tmp_path / "h"))
    assert embedded.resolve_home() == (tmp_path / "h", None)
    assert embedded.status().pgdata == tmp_path / "h" / "pgdata"


def test_dsn_of_a_stopped_server_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="not running; start it with"):
        embedded.status(tmp_path).dsn()


@pytest.mark.skipif(not is_root, reason="only root runs PostgreSQL as another user")
def test_as_root_a_private_cache_folder_is_not_opened(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    private = tmp_path / "private-home"
    private.mkdir(mode=0o700)
    monkeypatch.delenv("FRAISEQL_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(private / ".cache"))
    home, note = embedded.resolve_home()
    assert home == embedded.ROOT_HOME
    assert note is not None
    assert str(private / ".cache") in note
    assert stat.S_IMODE(private.stat().st_mode) == 0o700


@pytest.mark.skipif(not is_root, reason="only root runs PostgreSQL as another user")
def test_as_root_every_permission_change_is_reported() -> None:
    outer = short_tempdir("fqp-")
    outer.chmod(0o700)
    home = outer / "h"
    try:
        result = run_cli("db", "start", env={"FRAISEQL_HOME": str(home)})
        assert result.returncode == 0, result.stderr
        assert f"traversable by all users: {outer}" in result.stderr
        assert stat.S_IMODE(outer.stat().st_mode) == 0o755  # what the note said happened
        # Once opened, a second start has nothing more to report.
        assert "traversable" not in run_cli("db", "start", env={"FRAISEQL_HOME": str(home)}).stderr
    finally:
        embedded.stop(home)
