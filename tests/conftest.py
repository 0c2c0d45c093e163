"""Test harness: a real PostgreSQL with the small demo dataset loaded.

``$FRAISEQL_TEST_DSN`` is used when set; otherwise an embedded server is
started in a fresh temporary folder (never the user's) and deleted when the
test session ends. Tests that write get a database of their own
(:func:`scratch_dsn`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

import fraiseql_nb as fq
from fraiseql_nb.local import demo, embedded
from fraiseql_nb.pg.conninfo import with_database

pytest_plugins = ["tests.guards"]

ENV_TEST_DSN = "FRAISEQL_TEST_DSN"
ENV_STORE = "FRAISEQL_ARROW_BACKEND_STORE_DIR"
REPO = Path(__file__).resolve().parent.parent
# A user's own settings must not leak into the tests (nor the tests into them).
_USER_ENV = ("FRAISEQL_DSN", "FRAISEQL_HOME", "FRAISEQL_CONFIG")


def pytest_configure(config: pytest.Config) -> None:
    for name in _USER_ENV:
        os.environ.pop(name, None)
    # Loaded columns persist between sessions: the tests keep theirs in a folder of their own.
    os.environ[ENV_STORE] = str(short_tempdir("fqs-"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # "No tests ran" means the suite is broken (wrong path, bad filter): fail loudly.
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def short_tempdir(prefix: str) -> Path:
    """A temporary folder with a short path (unix socket paths are limited to ~100 bytes)."""
    base = "/tmp" if os.path.isdir("/tmp") else None
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    # atexit runs last-registered first: this runs after pgserver's own cleanup.
    atexit.register(shutil.rmtree, path, True)
    return path


@pytest.fixture(scope="session")
def embedded_home() -> Path | None:
    """The embedded test server's folder (None when $FRAISEQL_TEST_DSN is used)."""
    if os.environ.get(ENV_TEST_DSN):
        return None
    home = short_tempdir("fqt-")
    embedded.start(home, cleanup="delete")
    return home


@pytest.fixture(scope="session")
def server_dsn(embedded_home: Path | None) -> str:
    """A DSN on the test server, for creating databases."""
    env = os.environ.get(ENV_TEST_DSN)
    if env:
        return env
    assert embedded_home is not None
    return embedded.status(embedded_home).dsn()


@pytest.fixture(scope="session")
def demo_dsn(server_dsn: str) -> str:
    """The small demo dataset, loaded once per session (kept if already there)."""
    target = os.environ.get(ENV_TEST_DSN) or demo.ensure_database(server_dsn, "fraiseql_demo_small")
    demo.load(target, demo.SCALES["small"], if_missing=True)
    return target


@contextlib.contextmanager
def own_database(server_dsn: str, prefix: str = "fq_scratch") -> Iterator[str]:
    """A new empty database on the test server, dropped afterwards (its DSN)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    dsn = demo.ensure_database(server_dsn, name)
    try:
        yield dsn
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def scratch_dsn(server_dsn: str) -> Iterator[str]:
    """A new empty database for a test that writes; dropped afterwards."""
    with own_database(server_dsn) as dsn:
        yield dsn


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> CliResult:
    """Run ``fraiseql-nb`` in a separate process, as a user would."""
    full_env = {k: v for k, v in os.environ.items() if k not in _USER_ENV}
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "fraiseql_nb", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def shown(obj: Any) -> dict[str, Any]:
    """What IPython (a Jupyter kernel, a terminal) shows for ``obj``: the bundle its display
    formatters make, with the formatters the notebook layer registers."""
    from IPython import get_ipython
    from IPython.core.interactiveshell import InteractiveShell

    from fraiseql_nb.notebook.display import register_formatters

    shell = get_ipython() or InteractiveShell.instance()
    register_formatters(shell)
    formatter = shell.display_formatter
    active = formatter.active_types
    formatter.active_types = formatter.format_types  # a terminal shows text only: all, as Jupyter
    try:
        data, _ = formatter.format(obj)
    finally:
        formatter.active_types = active
    return data


def database_dsn(server_dsn: str, name: str) -> str:
    return with_database(server_dsn, name)


@pytest.fixture(scope="session")
def demo_schema(demo_dsn: str) -> Any:
    """The introspected schema of the small demo database."""
    from fraiseql_nb.schema import introspect

    with psycopg.connect(demo_dsn) as conn:
        return introspect(conn)


SCHEMA_FILE = REPO / "tests" / "data" / "demo_schema.json"


@pytest.fixture(scope="session")
def schema() -> Any:
    """The demo schema saved in tests/data, for pure tests that need no database."""
    from fraiseql_nb.schema import Schema

    return Schema.load(SCHEMA_FILE)


@pytest.fixture(scope="module")
def session(demo_dsn: str) -> Iterator[fq.Session]:
    """A session on the small demo database, shared by a module's tests."""
    s = fq.connect(demo_dsn)
    yield s
    s.close()


CONVENTIONS_SQL = REPO / "tests" / "data" / "conventions.sql"
TENANT_ROLE = "fq_tenant_reader"


@pytest.fixture(scope="session")
def conventions_dsn(server_dsn: str) -> str:
    """A database laid out with real FraiseQL conventions (tests/data/conventions.sql),
    rebuilt once per test session, with a login role subject to its row-level security."""
    name = "fq_conventions"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
    dsn = demo.ensure_database(server_dsn, name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(CONVENTIONS_SQL.read_text(encoding="utf-8"))  # type: ignore[arg-type]
        conn.execute(
            sql.SQL(
                "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {name}) THEN"
                " CREATE ROLE {role} LOGIN; END IF; END $$"
            ).format(name=sql.Literal(TENANT_ROLE), role=sql.Identifier(TENANT_ROLE))
        )
        conn.execute(
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(
                sql.Identifier(TENANT_ROLE)
            )
        )
    return dsn


def tenant_dsn(dsn: str, tenant: int | None) -> str:
    """``dsn`` as the row-level-security-bound role, for ``tenant`` (None: no tenant set)."""
    from psycopg.conninfo import make_conninfo

    options = f"-c app.tenant_id={tenant}" if tenant is not None else ""
    return make_conninfo(dsn, user=TENANT_ROLE, options=options)


SLOW_ROWS = 600  # 10 ms a row: about 6 s to read whole


@pytest.fixture
def slow_fact(scratch_dsn: str) -> str:
    """``tf_slow``: a fact view that takes ~6 s to read whole, but is quick filtered on id
    (the filter comes before the sleep)."""
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE VIEW tf_slow AS SELECT g::bigint AS id, g::float8 AS amount,"
            " (SELECT 1 FROM pg_sleep(0.01 + 0 * g))::int AS flag_id"
            f" FROM generate_series(1, {SLOW_ROWS}) AS g"
        )
    return scratch_dsn


TINY = demo.Counts(users=200, products=20, orders=50, sales=3_000)


@pytest.fixture
def tiny(scratch_dsn: str) -> str:
    """A database of its own with the tiny demo dataset."""
    demo.load(scratch_dsn, TINY)
    return scratch_dsn


def plane_of(session: fq.Session, name: str) -> Any:
    """A session's plane, for tests that look inside one (load counts, store flushes): the
    one place tests reach past the public API for it."""
    return session._planes[name]
