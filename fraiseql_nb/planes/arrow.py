"""The analytics plane (``arrow``): fact-table columns loaded once through ADBC, queried in Polars.

**Loading.** ADBC (``adbc-driver-postgresql``) reads exactly the columns a
query needs: measures cast to float8 (ADBC would hand ``numeric`` over as
opaque strings), dimension paths extracted from JSONB in SQL, filter
columns as they are. Values in a load's SQL are literals, never bound
parameters (with parameters ADBC skips COPY and materialises the whole
result). Record batches stream into Arrow arrays; the ADBC connection stays
open and is reused (it reads the type catalogue when it connects).

**Cache.** Columns of a fact table are kept in memory and reused: a later
query that needs columns already loaded touches no table at all, one that
needs more loads only the missing columns. Unfiltered loads of one table
return rows in the same physical order (``synchronize_seqscans`` is off on
the loading connection), so columns from several loads line up; the id
column is loaded with each and compared to prove it. Where loading the
needed columns unfiltered would exceed ``[routing] max_load_mb``, the
query's filters are pushed into the load instead and that load is cached
for the same filters only. The cache is an LRU bounded by
``[arrow_backend] cache_size_mb``.

**Freshness.** Before using cached columns, one cheap statement (a
fraction of a millisecond) reads the fact table's version: the next
transaction id to be assigned (``pg_current_snapshot()``: unchanged means no
write transaction has started anywhere since the load, so the cache is
exact), the table's (and its partitions') file nodes (TRUNCATE and rewrites
change them), and its cumulative insert/update/delete counters (which a
writing session flushes before it acknowledges its commit, at most once a
second). A changed file node or counter drops the cached columns. Views
have no counters: any new transaction drops them. ``Session.refresh()`` and
``[arrow_backend] cache_ttl_s`` cover writes the counters have not shown yet.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql
from psycopg_pool import ConnectionPool

from fraiseql_nb import progress
from fraiseql_nb.config import Config
from fraiseql_nb.conninfo import mask_dsn, secrets_of
from fraiseql_nb.errors import BackendError
from fraiseql_nb.planes._fetch import pooled
from fraiseql_nb.planes.engine import needed_columns, run_aggregate, run_window
from fraiseql_nb.query.ir import AggregateQuery, WindowQuery
from fraiseql_nb.result import Result
from fraiseql_nb.schema.model import FactTable
from fraiseql_nb.sql.facts import compile_load, where_field
from fraiseql_nb.sql.params import Params
from fraiseql_nb.sql.where import compile_where
from fraiseql_nb.telemetry import QueryMetrics

__all__ = ["ArrowPlane", "LoadEstimate", "arrow_available"]

_PROBE = """
SELECT pg_snapshot_xmax(pg_current_snapshot())::text,
       COALESCE(sum(pg_stat_get_tuples_inserted(t.relid) + pg_stat_get_tuples_updated(t.relid)
                    + pg_stat_get_tuples_deleted(t.relid)), 0)::bigint,
       string_agg(COALESCE(pg_relation_filenode(t.relid)::text, '-'), ',' ORDER BY t.relid),
       bool_and(c.relkind IN ('r', 'p'))
FROM (SELECT relid FROM pg_partition_tree(%(rel)s::regclass)
      UNION SELECT %(rel)s::regclass) AS t JOIN pg_class AS c ON c.oid = t.relid
"""
_ESTIMATE = """
SELECT COALESCE(sum(GREATEST(c.reltuples, 0)), 0)::bigint, COALESCE(sum(c.relpages), 0)::bigint
FROM (SELECT relid FROM pg_partition_tree(%(rel)s::regclass)
      UNION SELECT %(rel)s::regclass) AS t JOIN pg_class AS c ON c.oid = t.relid
"""
_WIDTHS = """
SELECT attname, avg_width FROM pg_stats WHERE schemaname = %s AND tablename = %s
"""


def arrow_available() -> bool:
    """Whether the analytics packages (ADBC's PostgreSQL driver) can be imported."""
    try:
        import adbc_driver_postgresql.dbapi  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class Version:
    """What the probe read of a fact table."""

    xmax: str
    changes: int
    files: str
    tables_only: bool

    def still(self, now: Version) -> bool:
        """Whether data loaded at ``self`` is still what the table holds at ``now``."""
        if self.files != now.files:
            return False
        if self.xmax == now.xmax:
            return True  # no write transaction has started anywhere since
        return now.tables_only and self.changes == now.changes


@dataclass(frozen=True)
class LoadEstimate:
    """What loading columns of a fact table would cost."""

    rows: int
    bytes: int
    cached: bool

    @property
    def mb(self) -> float:
        return self.bytes / 2**20


@dataclass
class _Store:
    """Cached columns of one fact table (all rows, or the rows of one filter)."""

    version: Version
    columns: dict[str, pa.ChunkedArray] = field(default_factory=dict)
    loaded_at: float = field(default_factory=time.monotonic)

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self.columns.values())

    def frame(self, names: list[str]) -> pl.DataFrame:
        table = pa.table({n: self.columns[n] for n in names}) if names else pa.table({})
        frame = pl.from_arrow(table, rechunk=False)
        assert isinstance(frame, pl.DataFrame)
        if not names:
            return pl.DataFrame()
        return frame


class ArrowPlane:
    """Runs aggregate and window queries on cached Arrow data with Polars."""

    name = "arrow"

    def __init__(self, dsn: str, config: Config, pool: ConnectionPool, probe_dsn: str) -> None:
        self._dsn = dsn
        self.config = config
        self._pool = pool
        self._probe_dsn = probe_dsn
        self._conn: Any = None
        self._lock = threading.RLock()
        self._cache: OrderedDict[tuple[str, str], _Store] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.loads = 0  # statements sent to load data (not probes)

    # ------------------------------------------------------------ queries

    def execute(self, query: AggregateQuery | WindowQuery, fact: FactTable) -> Result:
        """Run ``query`` on cached columns, loading the missing ones first."""
        started = time.perf_counter()
        names = needed_columns(query, fact)
        with self._lock:
            store, loaded, sql_text, filtered = self._columns(query, fact, names)
            frame = store.frame(names)
            if filtered:
                # The rows are already filtered by the load: do not filter again.
                query = _without_where(query)
            if isinstance(query, AggregateQuery):
                out = run_aggregate(frame, query, fact, timezone=self.config.routing.timezone)
            else:
                out = run_window(frame, query, fact, timezone=self.config.routing.timezone)
        done = time.perf_counter()
        hit = not sql_text  # nothing was loaded (an empty table loads 0 bytes, still a load)
        if hit:
            self.hits += 1
        else:
            self.misses += 1
        metrics = QueryMetrics(
            backend=self.name,
            kind=query.kind,
            root_field=query.key,
            duration_ms=(done - started) * 1e3,
            ttfr_ms=(done - started) * 1e3,
            rows=out.height,
            bytes=loaded,
            result_bytes=int(out.estimated_size()),
            cache_hit=hit,
            sql=sql_text,
        )
        return Result(key=query.key, kind=query.kind, backend=self.name, metrics=metrics, frame=out)

    def estimate(self, fact: FactTable, names: list[str]) -> LoadEstimate:
        """Rows and bytes of loading ``names`` unfiltered (from the planner's statistics)."""
        with self._lock:
            store = self._cache.get((fact.name, ""))
            if store is not None and all(n in store.columns for n in names):
                return LoadEstimate(
                    rows=len(next(iter(store.columns.values()))), bytes=0, cached=True
                )
        with pooled(self._pool, self._probe_dsn, self.config) as conn:
            rows, pages = conn.execute(_ESTIMATE, {"rel": _regclass(fact)}).fetchone()
            widths = dict(conn.execute(_WIDTHS, (fact.schema, fact.relation)).fetchall())
        rows = int(rows) or int(pages) * 100
        per_row = sum(_width(fact, n, widths) for n in [*names, fact.id_column or ""] if n)
        return LoadEstimate(rows=rows, bytes=rows * per_row, cached=False)

    # ------------------------------------------------------------ cache

    def refresh(self, table: str | None = None) -> int:
        """Drop cached data (of one fact table, by name or relation); return entries dropped."""
        with self._lock:
            keys = [k for k in self._cache if table is None or table in (k[0], f"tf_{k[0]}")]
            for k in keys:
                del self._cache[k]
            return len(keys)

    def cache_stats(self) -> dict[str, Any]:
        with self._lock:
            total = self.hits + self.misses
            return {
                "entries": len(self._cache),
                "bytes": sum(s.nbytes for s in self._cache.values()),
                "hits": self.hits,
                "misses": self.misses,
                "hit_rate": self.hits / total if total else 0.0,
            }

    def close(self) -> None:
        with self._lock:
            self._cache.clear()
            if self._conn is not None:
                try:
                    self._conn.close()
                finally:
                    self._conn = None

    # ------------------------------------------------------------ loading

    def _columns(
        self, query: AggregateQuery | WindowQuery, fact: FactTable, names: list[str]
    ) -> tuple[_Store, int, str, bool]:
        """A store holding ``names``; bytes loaded for it; the load SQL; whether filtered."""
        version = self._probe(fact)
        key = (fact.name, "")
        store = self._fresh(key, version)
        if store is not None and all(n in store.columns for n in names):
            self._cache.move_to_end(key)
            return store, 0, "", False
        have = list(store.columns) if store is not None else []
        missing = [n for n in names if n not in have]
        estimate = self.estimate(fact, missing)
        limit = self.config.routing.max_load_mb
        if query.where is not None and estimate.mb > limit:
            return self._filtered(query, fact, names, version)
        id_col = fact.id_column
        wanted = list(dict.fromkeys([*missing, *([id_col] if id_col else [])]))
        load_sql = compile_load(
            fact, wanted, exact_decimals=self.config.arrow_backend.exact_decimals
        )
        table, sql_text = self._load(load_sql)
        table = self._decimals(fact, table)
        loaded = table.nbytes
        if (
            store is not None
            and id_col
            and id_col in store.columns
            and store.columns[id_col].equals(table[id_col])
        ):
            for n in wanted:
                store.columns[n] = table[n]
        elif store is not None and have:
            # Rows did not line up (or no id to check): load everything together.
            everything = list(dict.fromkeys([*have, *wanted]))
            table, sql_text = self._load(
                compile_load(
                    fact, everything, exact_decimals=self.config.arrow_backend.exact_decimals
                )
            )
            table = self._decimals(fact, table)
            loaded += table.nbytes
            store = _Store(version=version, columns={n: table[n] for n in everything})
        else:
            store = _Store(version=version, columns={n: table[n] for n in wanted})
        self._keep(key, store)
        return store, loaded, sql_text, False

    def _filtered(
        self,
        query: AggregateQuery | WindowQuery,
        fact: FactTable,
        names: list[str],
        version: Version,
    ) -> tuple[_Store, int, str, bool]:
        literal = Params(literal=True)
        assert query.where is not None
        where = compile_where(query.where, lambda c: where_field(fact, c), literal)
        key_text = where.as_string(None)
        key = (fact.name, key_text)
        store = self._fresh(key, version)
        if store is not None and all(n in store.columns for n in names):
            self._cache.move_to_end(key)
            return store, 0, "", True
        load_sql = compile_load(
            fact, names, where=where, exact_decimals=self.config.arrow_backend.exact_decimals
        )
        table, sql_text = self._load(load_sql)
        table = self._decimals(fact, table)
        store = _Store(version=version, columns={n: table[n] for n in names})
        self._keep(key, store)
        return store, table.nbytes, sql_text, True

    def _fresh(self, key: tuple[str, str], version: Version) -> _Store | None:
        store = self._cache.get(key)
        if store is None:
            return None
        ttl = self.config.arrow_backend.cache_ttl_s
        expired = ttl > 0 and time.monotonic() - store.loaded_at > ttl
        if expired or not store.version.still(version):
            del self._cache[key]
            return None
        return store

    def _keep(self, key: tuple[str, str], store: _Store) -> None:
        if not self.config.arrow_backend.cache_enabled:
            self._cache.pop(key, None)
            return
        self._cache[key] = store
        self._cache.move_to_end(key)
        budget = self.config.arrow_backend.cache_size_mb * 2**20
        while len(self._cache) > 1 and sum(s.nbytes for s in self._cache.values()) > budget:
            self._cache.popitem(last=False)  # least recently used first
        if store.nbytes > budget:
            self._cache.pop(key, None)  # too big to keep: used once

    def _probe(self, fact: FactTable) -> Version:
        with pooled(self._pool, self._probe_dsn, self.config) as conn:
            row = conn.execute(_PROBE, {"rel": _regclass(fact)}).fetchone()
        assert row is not None
        return Version(
            xmax=row[0], changes=int(row[1]), files=row[2] or "", tables_only=bool(row[3])
        )

    def _load(self, statement: sql.Composable) -> tuple[pa.Table, str]:
        self.loads += 1
        conn = self._connection()
        text = statement.as_string(None)
        cursor = conn.cursor()
        try:
            cursor.execute(text)
            reader = cursor.fetch_record_batch()
            batches = []
            rows = nbytes = 0
            for batch in reader:
                batches.append(batch)
                rows += batch.num_rows
                nbytes += batch.nbytes
                progress.report("load", rows, nbytes)
            table = pa.Table.from_batches(batches, schema=reader.schema)
        except KeyboardInterrupt:
            try:
                cursor.adbc_cancel()
            finally:
                self._discard()
            raise
        except Exception as exc:  # noqa: BLE001 - ADBC raises its own DB-API hierarchy
            self._discard()
            detail = " ".join(str(exc).split())
            raise BackendError(
                f"the analytics plane could not load data: {detail}; dsn: {mask_dsn(self._dsn)}",
                secrets=secrets_of(self._dsn),
            ) from None
        finally:
            # Closing a cursor of a broken connection may fail; nothing more to do then.
            with contextlib.suppress(Exception):
                cursor.close()
        # Keep plain Arrow types: field metadata from the driver is not data.
        return table.replace_schema_metadata(None).cast(_plain(table.schema)), text

    def _decimals(self, fact: FactTable, table: pa.Table) -> pa.Table:
        """Measures loaded as text (``exact_decimals``) become decimal128 of their scale."""
        if not self.config.arrow_backend.exact_decimals:
            return table
        for m in fact.measures:
            if (
                m.name in table.column_names
                and m.scalar == "Float"
                and pa.types.is_string(table[m.name].type)
            ):
                scale = _scale(m.pg_type)
                column = pc.cast(table[m.name], pa.decimal128(38, scale))
                table = table.set_column(table.column_names.index(m.name), m.name, column)
        return table

    def _connection(self) -> Any:
        if self._conn is None:
            import adbc_driver_postgresql.dbapi as adbc

            wire = self.config.wire_backend
            try:
                # Autocommit: an open transaction would hold locks (a TRUNCATE would wait
                # on us) between loads.
                conn = adbc.connect(self._dsn, autocommit=True)
                cur = conn.cursor()
                for stmt in (
                    "SET synchronize_seqscans = off",
                    "SET default_transaction_read_only = on",
                    f"SET statement_timeout = {int(wire.statement_timeout_ms)}",
                    f"SET TimeZone = '{self.config.routing.timezone}'",
                    "SET application_name = 'fraiseql-nb arrow'",
                ):
                    cur.execute(stmt)
                cur.close()
            except Exception as exc:  # noqa: BLE001
                detail = " ".join(str(exc).split())
                raise BackendError(
                    f"the analytics plane cannot connect: {detail}; dsn: {mask_dsn(self._dsn)}",
                    secrets=secrets_of(self._dsn),
                ) from None
            self._conn = conn
        return self._conn

    def _discard(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


def _scale(pg_type: str) -> int:
    """The scale of ``numeric(p,s)``; unconstrained numerics are kept to 10 decimals."""
    match = re.search(r"numeric\(\d+,(\d+)\)", pg_type)
    return int(match.group(1)) if match else 10


def _regclass(fact: FactTable) -> str:
    """The fact table's name as regclass text, quoted (names may need it)."""
    return sql.Identifier(fact.schema, fact.relation).as_string(None)


def _plain(schema: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(f.name, f.type, f.nullable) for f in schema])


def _without_where(query: AggregateQuery | WindowQuery) -> AggregateQuery | WindowQuery:
    from dataclasses import replace

    return replace(query, where=None)


def _width(fact: FactTable, name: str, widths: dict[str, int]) -> int:
    if fact.dimension(name) is not None:
        dim = fact.dimension(name)
        assert dim is not None
        whole = widths.get(dim.column, 64)
        return max(8, min(64, whole // max(1, len(fact.dimensions)))) + 8
    scalar = fact.scalar_of(name) or "String"
    if scalar in ("String", "ID", "JSON"):
        return widths.get(name, 16) + 8
    return 8
