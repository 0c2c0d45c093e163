"""The FraiseQL-style demo dataset: scales, loading, and what a database holds.

The data is generated inside PostgreSQL by ``data/demo.sql`` (see its header
for the layout). A load runs in one transaction guarded by an advisory lock:
a database ends with the complete dataset or with what it had before, never
half-loaded, and a second load started meanwhile is refused at once.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from fraiseql_nb.errors import BackendError, ConfigError
from fraiseql_nb.local import embedded
from fraiseql_nb.pg.conninfo import mask_dsn, with_database
from fraiseql_nb.pg.db import backend_error, connect

__all__ = [
    "DEFAULT_SCALE",
    "GENERATOR_VERSION",
    "SCALES",
    "Counts",
    "DemoObject",
    "LoadReport",
    "database_exists",
    "database_for",
    "describe",
    "ensure_database",
    "load",
    "loaded_counts",
    "resolve_target",
]

ENV_DSN = "FRAISEQL_DSN"
DEFAULT_SCALE = "small"
# Bump when demo.sql changes what it generates: an older load is then redone.
GENERATOR_VERSION = 2
_LOCK_KEY = 0x46514C44454D4F  # "FQLDEMO": one demo load per database at a time
_OWNED_TABLES = ("tb_user", "tb_product", "tb_order", "tb_order_item", "tf_sales")
_MAX_COUNT = 1_000_000_000


@dataclass(frozen=True)
class Counts:
    """How many rows of each kind a load generates."""

    users: int
    products: int
    orders: int
    sales: int

    def __post_init__(self) -> None:
        for name, value, low in (
            ("users", self.users, 1),
            ("products", self.products, 1),
            ("orders", self.orders, 0),
            ("sales", self.sales, 0),
        ):
            whole = isinstance(value, int) and not isinstance(value, bool)
            if not whole or not low <= value <= _MAX_COUNT:
                raise ConfigError(
                    f"{name} must be a whole number from {low} to {_MAX_COUNT:,}, got {value!r}",
                    key=name,
                )


SCALES: dict[str, Counts] = {
    "small": Counts(users=10_000, products=500, orders=20_000, sales=100_000),
    "medium": Counts(users=100_000, products=2_000, orders=100_000, sales=500_000),
    "large": Counts(users=1_000_000, products=10_000, orders=300_000, sales=2_000_000),
}


@dataclass(frozen=True)
class LoadReport:
    """The outcome of :func:`load`."""

    dsn: str
    scale: str
    counts: Counts
    seconds: float
    skipped: bool  # True when the same data was already there


@dataclass(frozen=True)
class DemoObject:
    """One queryable object of the demo database, for the summary."""

    name: str
    kind: str
    rows: int


def scale_of(counts: Counts) -> str:
    """The scale name for ``counts``, or ``"custom"``."""
    return next((name for name, c in SCALES.items() if c == counts), "custom")


def database_for(counts: Counts) -> str:
    """The database a dataset of these counts goes to on the embedded server."""
    return f"fraiseql_demo_{scale_of(counts)}"


def resolve_target(counts: Counts, database: str | None = None) -> str:
    """Return the DSN of the database a load should go to, creating it when needed.

    ``$FRAISEQL_DSN`` wins when set: its own database is used unless
    ``database`` names another one on that server. Otherwise the embedded
    server is started and ``database`` (default: one per scale) created.
    """
    server_dsn = os.environ.get(ENV_DSN)
    if server_dsn:
        return ensure_database(server_dsn, database) if database else server_dsn
    server = embedded.start()
    name = database or database_for(counts)
    ensure_database(server.dsn(), name)
    return server.dsn(name)


_EXISTS = "SELECT 1 FROM pg_database WHERE datname = %s"


def database_exists(server_dsn: str, name: str) -> bool:
    """True when the server of ``server_dsn`` has a database ``name``."""
    with connect(server_dsn, autocommit=True) as conn:
        return conn.execute(_EXISTS, (name,)).fetchone() is not None


def ensure_database(server_dsn: str, name: str) -> str:
    """Create database ``name`` on the server of ``server_dsn`` if missing; return its DSN."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]{0,62}", name):
        raise ConfigError(
            f"database name {name!r} is not a plain identifier (letters, digits, _, at most 63)",
            key="database",
        )
    with connect(server_dsn, autocommit=True) as conn:
        exists = conn.execute(_EXISTS, (name,)).fetchone()
        if not exists:
            # A fixed, OS-independent collation: text sorts by code point on
            # every machine, so results (and notebook outputs) are the same.
            (version,) = conn.execute("SHOW server_version_num").fetchone() or ("0",)
            locale = (
                "LOCALE_PROVIDER builtin BUILTIN_LOCALE 'C.UTF-8'"
                if int(version) >= 170000
                else "LOCALE 'C'"
            )
            try:
                conn.execute(
                    sql.SQL(
                        "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' " + locale
                    ).format(sql.Identifier(name))
                )
            except psycopg.errors.DuplicateDatabase:
                pass  # created by a concurrent load in the meantime
            except psycopg.Error as exc:
                raise backend_error(exc, server_dsn, action=f"create database {name}") from None
    return with_database(server_dsn, name)


def load(dsn: str, counts: Counts, *, if_missing: bool = False) -> LoadReport:
    """Generate the demo dataset into the database of ``dsn``, replacing any earlier load.

    Args:
        dsn: the target database (it must exist).
        counts: rows to generate.
        if_missing: keep an existing complete load of the same counts.

    Raises:
        BackendError: the database is unreachable, another load is running
            there, or it holds tables of the same names the loader did not make.
    """
    scale = scale_of(counts)
    started = time.perf_counter()
    with connect(dsn, application_name="fraiseql-nb demo load") as conn:
        try:
            # A client killed mid-load must not leave its transaction running.
            conn.execute("SET client_connection_check_interval = '1s'")
            got_lock = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (_LOCK_KEY,)).fetchone()
            if not (got_lock and got_lock[0]):
                raise BackendError(
                    f"another demo load is running on {mask_dsn(dsn)}; wait for it to finish"
                )
            _check_ownership(conn, dsn)
            if if_missing and loaded_counts(conn) == counts:
                conn.rollback()
                return LoadReport(dsn, scale, counts, time.perf_counter() - started, True)
            conn.execute("CREATE SCHEMA IF NOT EXISTS fraiseql_demo")
            conn.execute("DROP TABLE IF EXISTS fraiseql_demo.meta")
            conn.execute(
                "CREATE TABLE fraiseql_demo.meta (scale text NOT NULL, users bigint NOT NULL,"
                " products bigint NOT NULL, orders bigint NOT NULL, sales bigint NOT NULL,"
                " generator int NOT NULL, load_seconds float8, loaded_at timestamptz NOT NULL)"
            )
            conn.execute(render_sql(counts))
            seconds = time.perf_counter() - started
            conn.execute(
                "INSERT INTO fraiseql_demo.meta VALUES (%s, %s, %s, %s, %s, %s, %s, now())",
                (
                    scale,
                    counts.users,
                    counts.products,
                    counts.orders,
                    counts.sales,
                    GENERATOR_VERSION,
                    seconds,
                ),
            )
            conn.commit()
        except psycopg.Error as exc:
            raise backend_error(exc, dsn, action="load the demo dataset") from None
    return LoadReport(dsn, scale, counts, time.perf_counter() - started, False)


def loaded_counts(conn: psycopg.Connection[Any]) -> Counts | None:
    """The counts of the complete demo load in this database, or None (absent, old generator)."""
    row = conn.execute("SELECT to_regclass('fraiseql_demo.meta') IS NOT NULL").fetchone()
    if not (row and row[0]):
        return None
    meta = conn.execute(
        "SELECT users, products, orders, sales FROM fraiseql_demo.meta WHERE generator = %s",
        (GENERATOR_VERSION,),
    ).fetchone()
    return Counts(*(int(v) for v in meta)) if meta else None


def describe(dsn: str) -> list[DemoObject]:
    """List the entity views and fact tables of a database with their row counts."""
    with connect(dsn, autocommit=True) as conn:
        names = conn.execute(
            "SELECT c.relname, c.relkind FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm', 'p')"
            " AND (c.relname LIKE 'v\\_%' OR c.relname LIKE 'tv\\_%' OR c.relname LIKE 'tf\\_%')"
            " ORDER BY c.relname LIKE 'tf\\_%', c.relname"
        ).fetchall()
        objects = []
        for name, _kind in names:
            (rows,) = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))
            ).fetchone() or (0,)
            kind = "fact table" if name.startswith("tf_") else "entity view"
            objects.append(DemoObject(name, kind, int(rows)))
    return objects


def render_sql(counts: Counts) -> str:
    """``demo.sql`` with its ``:users``-style size variables replaced by the counts."""
    text = _sql_path().read_text(encoding="utf-8")
    values = {k: str(int(v)) for k, v in asdict(counts).items()}
    return re.sub(r"(?<!:):(users|products|orders|sales)\b", lambda m: values[m[1]], text)


def _sql_path() -> Path:
    # Installed wheels carry data/ inside the package; a source checkout
    # (including an editable install) reads the repository's data/ folder.
    packaged = resources.files("fraiseql_nb") / "_data" / "demo.sql"
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "data" / "demo.sql"


def _check_ownership(conn: psycopg.Connection[Any], dsn: str) -> None:
    """Refuse to replace same-named tables that an earlier demo load did not create."""
    ours = conn.execute("SELECT to_regclass('fraiseql_demo.meta') IS NOT NULL").fetchone()
    if ours and ours[0]:
        return
    found = [
        name
        for (name,) in conn.execute(
            "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND relname = ANY(%s) ORDER BY relname",
            (list(_OWNED_TABLES),),
        )
    ]
    if found:
        raise BackendError(
            f"{mask_dsn(dsn)} already has {', '.join(found)}, not made by the demo loader; "
            "load into another database (--database NAME)"
        )
