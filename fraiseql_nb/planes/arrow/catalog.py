"""What the catalogue says about a fact table: who it is, its version now, what loading costs.

Cheap reads on a pooled psycopg connection (never the loading connection,
so they never wait behind a load):

- **identity** (once per session and table): the database's system identifier
  and name, the table's oid and kind, and what decides which rows a
  connection may see — the role, the ``row_security`` setting, whether
  row-level security is on for the table. Loaded columns are kept under
  that key, so no cache or store ever serves rows to a connection that could
  not read them; tables with row-level security, and views (whose base
  tables may have it), are not persisted at all.
- **version** (before each answer): the current snapshot, the file nodes of
  the table and its partitions (TRUNCATE and rewrites change them) and a
  digest of its columns (an ALTER TABLE changes it).
- **estimate**: rows and bytes of loading some columns, from the planner's
  statistics.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from fraiseql_nb.config import Config
from fraiseql_nb.errors import BackendError, QueryError
from fraiseql_nb.pg.db import error_text, query_error
from fraiseql_nb.planes._fetch import pooled
from fraiseql_nb.schema.model import FactTable

__all__ = ["Catalog", "LoadEstimate", "TableIdentity", "Version", "regclass"]

# The table and every table it reads rows from: partitions and inheritance children
# (a query of the parent scans them all), at any depth.
_TREE = sql.SQL("""
WITH RECURSIVE tree(relid) AS (
    SELECT %(rel)s::regclass::oid
    UNION SELECT i.inhrelid FROM pg_inherits AS i JOIN tree ON i.inhparent = tree.relid
)
""")
_IDENTITY = _TREE + sql.SQL(
    """
SELECT current_database(), d.oid::bigint, c.oid::bigint, c.relkind::text, current_user::text,
       current_setting('row_security'), pg_postmaster_start_time()::text,
       EXISTS (SELECT 1 FROM tree JOIN pg_class AS p ON p.oid = tree.relid
               WHERE p.relrowsecurity)
FROM pg_class AS c, pg_database AS d
WHERE c.oid = %(rel)s::regclass AND d.datname = current_database()
"""
)
_SYSTEM = "SELECT system_identifier::text FROM pg_control_system()"
_VERSION = _TREE + sql.SQL(
    """
SELECT pg_current_snapshot()::text,
       (SELECT string_agg(t.relid::text || ':' || COALESCE(pg_relation_filenode(t.relid)::text,
                                                           '-'), ',' ORDER BY t.relid)
        FROM tree AS t),
       (SELECT md5(string_agg(a.attname || ':' || a.atttypid || ':' || a.atttypmod, ','
                              ORDER BY a.attnum))
        FROM pg_attribute AS a
        WHERE a.attrelid = %(rel)s::regclass AND a.attnum > 0 AND NOT a.attisdropped)
"""
)
_ESTIMATE = _TREE + sql.SQL(
    """
SELECT COALESCE(sum(GREATEST(c.reltuples, 0)), 0)::bigint, COALESCE(sum(c.relpages), 0)::bigint,
       COALESCE(bool_or(c.reltuples < 0 AND c.relkind IN ('r', 'm', 'v', 'f')), true)
FROM tree AS t JOIN pg_class AS c ON c.oid = t.relid
"""
)
_UNDEFINED_TABLE = "42P01"
_UNDEFINED_COLUMN = "42703"
_WIDTHS = "SELECT attname, avg_width FROM pg_stats WHERE schemaname = %s AND tablename = %s"


def regclass(fact: FactTable) -> str:
    """The fact table's name as regclass text, quoted (names may need it)."""
    return sql.Identifier(fact.schema, fact.relation).as_string(None)


@dataclass(frozen=True)
class TableIdentity:
    """Who a fact table is, and who is looking at it."""

    system: str  # the cluster's system identifier ("" when this role may not read it)
    database: str
    database_oid: int
    server: str  # when the server started: a restarted (or copied) server starts over
    timezone: str  # loads cast text to timestamptz in the session time zone
    oid: int
    kind: str  # relkind: r table, p partitioned table, v view, m materialized view, f foreign
    role: str
    row_security: str
    rls: bool  # row-level security is on for the table or one of its partitions
    relation: str  # schema.relation, for messages
    #: which columns, as loaded, when they decide what is stored (a table on disk: two
    #: sessions loading other columns keep their own files); empty otherwise
    columns: str = ""

    @property
    def key(self) -> str:
        """The cache key: the table, and everything that decides which of its rows are seen."""
        parts = (
            self.system,
            self.server,
            self.database,
            str(self.database_oid),
            str(self.oid),
            self.role,
            self.row_security,
            self.timezone,
            *((self.columns,) if self.columns else ()),
        )
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]

    @property
    def persistable(self) -> bool:
        """Whether loaded columns may be written to the store for other processes."""
        return bool(self.system) and self.kind in ("r", "p") and not self.rls

    @property
    def reusable(self) -> bool:
        """Whether loaded rows may answer a later query at all. A foreign table's rows change
        with no transaction here: every query reads them again."""
        return self.kind != "f"

    @property
    def partitioned(self) -> bool:
        return self.kind == "p"

    @property
    def heap(self) -> bool:
        """Whether its rows carry transaction ids (xmin): tables and materialized views do,
        views and foreign tables do not (their loads are exact at one snapshot only)."""
        return self.kind in ("r", "p", "m")


@dataclass(frozen=True)
class Version:
    """What the table is now: the snapshot, its files and its columns."""

    snapshot: str
    files: str
    attrs: str


@dataclass(frozen=True)
class LoadEstimate:
    """What loading columns of a fact table would cost."""

    rows: int
    bytes: int
    cached: bool

    @property
    def mb(self) -> float:
        return self.bytes / 2**20


class Catalog:
    """Catalogue reads for the analytics plane, on the session's pool."""

    def __init__(self, pool: ConnectionPool, dsn: str, config: Config) -> None:
        self._pool = pool
        self._dsn = dsn
        self._config = config
        self._identities: dict[str, TableIdentity] = {}
        self._lock = threading.Lock()

    def identity(self, fact: FactTable) -> TableIdentity:
        """The table's identity (read once per session)."""
        with self._lock:
            known = self._identities.get(fact.name)
        if known is not None:
            return known
        rel = regclass(fact)
        with self._reading(fact) as conn:
            row = conn.execute(_IDENTITY, {"rel": rel}).fetchone()
            try:
                with conn.transaction():
                    system = conn.execute(_SYSTEM).fetchone()
            except psycopg.errors.InsufficientPrivilege:
                system = None  # no cluster identity: nothing is persisted
        assert row is not None
        found = TableIdentity(
            system=system[0] if system else "",
            database=row[0],
            database_oid=int(row[1]),
            server=row[6],
            timezone=self._config.routing.timezone,
            oid=int(row[2]),
            kind=row[3],
            role=row[4],
            row_security=row[5],
            rls=bool(row[7]),
            relation=f"{fact.schema}.{fact.relation}",
        )
        with self._lock:
            self._identities[fact.name] = found
        return found

    def version(self, fact: FactTable) -> Version:
        """The table's version now (one small statement)."""
        with self._reading(fact) as conn:
            row = conn.execute(_VERSION, {"rel": regclass(fact)}).fetchone()
        assert row is not None
        return Version(snapshot=row[0], files=row[1] or "", attrs=row[2] or "")

    def estimate(self, fact: FactTable, names: list[str]) -> LoadEstimate:
        """Rows and bytes of loading ``names`` unfiltered (from the planner's statistics)."""
        with self._reading(fact) as conn:
            row = conn.execute(_ESTIMATE, {"rel": regclass(fact)}).fetchone()
            assert row is not None
            rows, pages, unknown = row
            if unknown:
                # Never analysed (or a view): the planner still estimates, from the
                # relation's pages, or through the view; "0 rows" would let any load pass.
                plan = conn.execute(
                    sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1 FROM {}").format(
                        sql.Identifier(fact.schema, fact.relation)
                    )
                ).fetchone()
                assert plan is not None
                rows = max(int(rows), int(plan[0][0]["Plan"]["Plan Rows"]))
            widths = dict(conn.execute(_WIDTHS, (fact.schema, fact.relation)).fetchall())
        rows = int(rows) or int(pages) * 100
        per_row = sum(_width(fact, n, widths) for n in names)
        return LoadEstimate(rows=rows, bytes=rows * per_row, cached=False)

    def known(self) -> dict[str, TableIdentity]:
        """The identities read so far, by fact table name."""
        with self._lock:
            return dict(self._identities)

    def connection(self, fact: FactTable) -> contextlib.AbstractContextManager[Any]:
        """A pooled connection (autocommit) whose errors name ``fact``: for the cluster
        plane's own statements."""
        return self._reading(fact)

    @contextlib.contextmanager
    def _reading(self, fact: FactTable) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection whose errors say which fact table could not be read."""
        try:
            with pooled(self._pool, self._dsn, self._config) as conn:
                yield conn
        except psycopg.Error as exc:
            error = table_error(exc, fact, self._dsn, self._config)
            assert error is not None
            raise error from None


def table_error(
    exc: BaseException, fact: FactTable, dsn: str, config: Config
) -> BackendError | QueryError | None:
    """A BackendError naming the fact table when it is gone or changed (psycopg and ADBC
    errors alike carry the SQLSTATE), else the psycopg plane's usual one (None for others)."""
    where = f"{fact.schema}.{fact.relation}"
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate == _UNDEFINED_TABLE:
        return BackendError(
            f"the fact table {where} does not exist any more (dropped or renamed since the"
            " session connected); reconnect to read the schema again",
            sqlstate=sqlstate,
        )
    if sqlstate == _UNDEFINED_COLUMN:
        detail = error_text(exc).split("ERROR:", 1)[-1].strip()
        return BackendError(
            f"the fact table {where} has changed since the session connected"
            f" ({detail}); reconnect to read the schema again",
            sqlstate=sqlstate,
        )
    if isinstance(exc, psycopg.Error):
        return query_error(exc, dsn, timeout_ms=config.connections.statement_timeout_ms)
    return None


def _width(fact: FactTable, name: str, widths: dict[str, int]) -> int:
    """Arrow bytes a row of ``name`` takes (about: the planner's average widths)."""
    if fact.dimension(name) is not None:
        dim = fact.dimension(name)
        assert dim is not None
        # A JSON document spends about half its bytes on keys and punctuation.
        whole = widths.get(dim.column, 64)
        return max(4, min(64, whole // (2 * max(1, len(fact.dimensions))))) + 4
    scalar = fact.scalar_of(name) or "String"
    if scalar in ("String", "ID", "JSON"):
        return widths.get(name, 16) + 8
    return 8
