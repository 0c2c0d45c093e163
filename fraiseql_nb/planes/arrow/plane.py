"""The analytics plane (``arrow``): fact-table columns loaded once, kept, queried in Polars.

One query, in one pass: the columns it needs (planned once by the session, a
:class:`~fraiseql_nb.planes.contract.Task`) → those columns, exact at the table's
version now: within ``memory_mb`` from memory or the store (:mod:`.inmemory`),
beyond it from partitions on disk (:mod:`.disktables`) → computed
(:mod:`~fraiseql_nb.compute`, in memory or streaming) → Result. Store writes
happen when queries pause (:mod:`.writer`).

Under ``backend="auto"`` nothing waits for a full load: :meth:`ArrowPlane.readiness`
tells the router whether the columns are at hand, and a query that would need
a (re)load raises :class:`NotReady`, is answered by PostgreSQL, and the table
loads in the background (:mod:`.background`) — every loadable column in one
scan when that fits ``[routing] max_load_mb`` and ``[arrow_backend]
cache_size_mb``, else the needed ones. ``backend="arrow"`` loads in the
foreground (waiting for a background load of the same table if one runs).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl
from psycopg_pool import ConnectionPool

from fraiseql_nb.compute.aggregate import run_aggregate
from fraiseql_nb.compute.columns import declines
from fraiseql_nb.compute.window import run_window
from fraiseql_nb.config import Config, regression_mode
from fraiseql_nb.errors import BackendError, NotReady
from fraiseql_nb.planes.arrow.adbc import Connections
from fraiseql_nb.planes.arrow.background import Jobs
from fraiseql_nb.planes.arrow.cache import MemoryCache
from fraiseql_nb.planes.arrow.capture import Capture
from fraiseql_nb.planes.arrow.catalog import Catalog, LoadEstimate, TableIdentity
from fraiseql_nb.planes.arrow.catchup import Following
from fraiseql_nb.planes.arrow.disktables import NO_WAIT_S, DiskTables
from fraiseql_nb.planes.arrow.engine import arrow_available, computing, engine_plan
from fraiseql_nb.planes.arrow.inmemory import MemoryTables, foreground_report
from fraiseql_nb.planes.arrow.loads import Loads
from fraiseql_nb.planes.arrow.offer import Readiness, arrow_off, arrow_offer
from fraiseql_nb.planes.arrow.ready import Ready
from fraiseql_nb.planes.arrow.store import ColumnStore
from fraiseql_nb.planes.arrow.writer import StoreWriter
from fraiseql_nb.planes.contract import Offer, Statement, Storage, Task
from fraiseql_nb.query.ir import AggregateQuery, RowQuery, WindowQuery
from fraiseql_nb.result import Result, measured
from fraiseql_nb.schema.model import FactTable
from fraiseql_nb.sql.facts import compile_load, loadable_columns

__all__ = ["ArrowPlane", "NotReady", "Readiness", "arrow_available"]


class ArrowPlane:
    """Runs aggregate and window queries on loaded Arrow data with Polars."""

    name = "arrow"

    def __init__(
        self,
        dsn: str,
        config: Config,
        pool: ConnectionPool,
        probe_dsn: str,
        store_root: Path | None = None,
    ) -> None:
        self._dsn = dsn
        self.config = config
        arrow = config.arrow_backend
        self._catalog = Catalog(pool, probe_dsn, config)
        self._connections = Connections(dsn, config)
        self._memory = MemoryCache(arrow.cache_size_mb, enabled=arrow.cache_enabled)
        self._store = (
            ColumnStore(store_root, arrow.store_size_mb)
            if store_root is not None and arrow.store_enabled and arrow.cache_enabled
            else None
        )
        self._jobs = Jobs()
        self._writer = StoreWriter(self._store)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._capture = Capture(dsn, config) if arrow.change_capture else None
        following = Following(self._capture)  # one table is on disk or in memory: shared
        self._disk = DiskTables(
            self._catalog, self._connections, self._store, config, dsn, following=following
        )
        self._tables = MemoryTables(
            config=config,
            dsn=dsn,
            catalog=self._catalog,
            connections=self._connections,
            memory=self._memory,
            store=self._store,
            writer=self._writer,
            lock_of=self._table_lock,
            count_load=self._count_load,
            percent=self._percent,
            following=following,
        )
        self._ready = Ready(
            config=config,
            catalog=self._catalog,
            tables=self._tables,
            disk=self._disk,
            memory=self._memory,
            jobs=self._jobs,
            store=self._store,
        )
        self._loads = Loads(
            catalog=self._catalog,
            tables=self._tables,
            disk=self._disk,
            jobs=self._jobs,
            writer=self._writer,
            lock_of=self._table_lock,
            count_load=self._count_load,
        )
        self.hits = 0
        self.misses = 0
        self.loads = 0  # statements that loaded rows (full or appended)
        self.partitions_read = 0  # partitions on disk queries read
        self.partitions_skipped = 0  # ... and skipped by their statistics
        self._packages = arrow_available()

    # ------------------------------------------------------------ routing

    @property
    def on(self) -> bool:
        """Whether the plane may run: on in the configuration, its packages importable."""
        return arrow_off(self.config, self._packages) is None

    def offer(self, task: Task, *, requested: bool, earlier: Mapping[str, Offer]) -> Offer:
        """Off, declined (a column or function it does not compute exactly), or how ready
        the task's columns are (asked by name: it loads what it needs)."""
        assert isinstance(task.target, FactTable)
        assert not isinstance(task.query, RowQuery)
        declined = declines(task.query, task.target, list(task.columns)) if self.on else None
        readiness = (
            self.readiness(task.target, list(task.columns))
            if self.on and declined is None and not requested
            else None
        )
        return arrow_offer(
            self.config,
            packages=self._packages,
            readiness=readiness,
            declined=declined,
            requested=requested,
            key=task.query.key,
        )

    def readiness(self, fact: FactTable, names: list[str]) -> Readiness:
        """Whether ``names`` are at hand, cheaply (no table is read; a cold table is estimated)."""
        return self._ready.readiness(fact, names)

    def load_statement(self, fact: FactTable, names: list[str]) -> str:
        """The statement a whole-table load of ``names`` sends (split in two halves of the
        table's pages when ``load_connections`` is 2), as this plane's settings make it."""
        exact = self.config.arrow_backend.exact_decimals
        return compile_load(fact, names, exact_decimals=exact).as_string(None)

    def estimate(self, fact: FactTable, names: list[str]) -> LoadEstimate:
        """Rows and bytes of loading ``names`` unfiltered (``cached`` when at hand)."""
        return self._ready.estimate(fact, names)

    # ------------------------------------------------------------ queries

    def statement(self, task: Task) -> Statement | None:
        """The whole-table load of the task's columns, and what loading them would cost."""
        assert isinstance(task.target, FactTable)
        if not self.on:
            return None
        names = list(task.columns)
        est = self.estimate(task.target, names)
        return Statement(
            sql=self.load_statement(task.target, names),
            note="then computed in Polars",
            estimate={
                "rows": est.rows,
                "load MB": round(est.mb, 1),
                "cached": est.cached,
                "columns": ", ".join(names),
                # How exactness is kept depends on the server, not the query: left out of
                # regression runs, whose saved outputs must not differ between servers.
                **({} if regression_mode() else {"freshness": self.freshness_of(task.target)}),
            },
        )

    def freshness_of(self, fact: FactTable) -> str:
        """How the table's loaded rows are (or will be) kept exact: "capture", or "scan
        (why)". Asks the server nothing new."""
        if self._capture is None:
            return "scan ([arrow_backend] change_capture is off)"
        relation = f"{fact.schema}.{fact.relation}"
        known = self._capture.methods().get(relation)
        if known is not None:
            return known
        return f"scan ({self._capture.reason})" if self._capture.reason else "capture, once loaded"

    def execute(self, task: Task) -> Result:
        """Run the task on its columns, exact at the table's current version.

        Without ``task.wait``, raises :class:`~fraiseql_nb.errors.NotReady` where a full
        load would be needed (appended rows are always loaded).
        """
        assert isinstance(task.target, FactTable)
        assert not isinstance(task.query, RowQuery)
        query, fact, wait = task.query, task.target, task.wait
        started = time.perf_counter()
        names = list(task.columns)
        table = self._catalog.identity(fact)
        every = loadable_columns(fact)
        if table.reusable and set(names) <= set(every) and self._disk.serves(fact, table, every):
            return self._from_disk(query, fact, table, names, every, started, wait=wait)
        got = self._tables.columns(query, fact, names, wait=wait)
        frame = got.data.frame.select(names)
        if got.filtered:
            query = replace(query, where=None)  # the load applied the filter already
        timezone = self.config.routing.timezone
        with computing():
            if isinstance(query, AggregateQuery):
                out = run_aggregate(frame, query, fact, timezone=timezone)
            else:
                out = run_window(frame, query, fact, timezone=timezone)
        result = self._result(query, out, started, got.bytes, got.sql)
        as_of = (
            dt.datetime.fromtimestamp(got.as_of, tz=dt.timezone.utc)
            if got.as_of is not None
            else None
        )
        return result.evolve(
            as_of=as_of,
            engine=partial(
                engine_plan,
                f"Polars, in memory, over {frame.height:,} rows of the columns {', '.join(names)}",
                dict(frame.schema),
                query,
                timezone,
            ),
        )

    def _result(
        self,
        query: AggregateQuery | WindowQuery,
        frame: pl.DataFrame,
        started: float,
        received: int,
        statement: str,
        storage: Storage = "",
    ) -> Result:
        """The Result, counted as a hit when nothing was loaded for it."""
        hit = not statement
        with self._stats_lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1
        return measured(
            key=query.key,
            kind=query.kind,
            backend=self.name,
            frame=frame,
            started=started,
            received=received,
            sql=statement,
            cache_hit=hit,
            storage=storage,
        )

    def _from_disk(
        self,
        query: AggregateQuery | WindowQuery,
        fact: FactTable,
        table: TableIdentity,
        names: list[str],
        every: list[str],
        started: float,
        *,
        wait: bool,
    ) -> Result:
        """A table beyond the memory budget: answered from its partitions on disk."""
        exprs = self._tables.exprs(fact, every)
        lock = self._table_lock(table.key)
        # Without wait (auto), a load of this process holding the table (which may itself
        # wait for another process's) is waited for as long as another process's would be.
        if not lock.acquire(timeout=-1 if wait else NO_WAIT_S):
            if self._jobs.running(table.key) is not None:
                raise NotReady(f"loading {self._percent(table)}")
            raise NotReady("busy: another query of this session is reading the table")
        try:
            with computing():
                answer = self._disk.execute(
                    query, fact, table, names, every, exprs, wait=wait, report=foreground_report
                )
        finally:
            lock.release()
        if answer.sql:
            self._count_load()
        with self._stats_lock:
            self.partitions_read += answer.partitions.get("read", 0)
            self.partitions_skipped += answer.partitions.get("skipped", 0)
        result = self._result(query, answer.frame, started, answer.bytes, answer.sql, "disk")
        return result.evolve(
            partitions=answer.partitions,
            engine=partial(
                engine_plan,
                answer.where,
                answer.dtypes,
                query,
                self.config.routing.timezone,
                streaming=True,
            ),
        )

    # ------------------------------------------------------------ background

    def load_in_background(self, task: Task) -> None:
        """Start loading the task's table (every loadable column when it fits, else the
        task's)."""
        assert isinstance(task.target, FactTable)
        self._loads.start(task.target, list(task.columns))

    def prefetch(self, fact: FactTable, *, wait: bool = False) -> str | None:
        """Load every loadable column of ``fact``; with ``wait``, until done (progress is
        reported to the current listener), re-raising what failed. "loaded" or "loading N%"."""
        if not self.on:
            raise BackendError(
                "the arrow plane is off ([backends] use_arrow_backend = false) or its packages"
                " do not import: nothing to prefetch"
            )
        return self._loads.prefetch(fact, wait=wait)

    def loading(self) -> dict[str, int]:
        """The background loads running now: relation -> percent done."""
        return {job.relation: job.percent for job in self._jobs.all()}

    # ------------------------------------------------------------ cache

    def refresh(self, facts: list[FactTable]) -> int:
        """Drop the loaded data of ``facts`` from memory and from the store (for every role:
        it is reloaded by whoever needs it); return the in-memory entries dropped."""
        keys = set()
        left: set[str] = set()
        for fact in facts:
            try:
                table = self._catalog.identity(fact)
            except BackendError:
                continue  # the database is away: nothing of it can be dropped by key
            keys.add(table.key)
            self._writer.refreshed(table.key)  # a write queued before must not bring it back
            if self._store is not None:
                removal = self._store.remove(
                    lambda e, t=table: e.relation == t.relation and e.database == t.database
                )
                left.update(removal.in_use)
        if left:  # not silently: they are synced before they answer, but they stay
            warnings.warn(
                f"fraiseql-nb: {', '.join(sorted(left))} stay on the store: a load or sync"
                " (of this process or another) holds them now",
                RuntimeWarning,
                stacklevel=3,
            )
        self._disk.forget(keys)
        return self._memory.drop(lambda k: k.split(":", 1)[0] in keys)

    def cache_stats(self) -> dict[str, Any]:
        entries, nbytes = self._memory.stats()
        with self._stats_lock:
            hits, misses = self.hits, self.misses
        total = hits + misses
        out: dict[str, Any] = {
            "entries": entries,
            "bytes": nbytes,
            "hits": hits,
            "misses": misses,
            "hit_rate": hits / total if total else 0.0,
            "loading": self.loading(),
        }
        # How each loaded table is kept exact: followed by its changes, or scanned.
        out["freshness"] = self._capture.methods() if self._capture is not None else {}
        if self._store is not None:
            out["store"] = str(self._store.root)
        return out

    def health(self) -> dict[str, Any]:
        """Disabled by configuration, unavailable without its packages, else as healthy as
        the database; what it holds in memory and how each table is kept exact."""
        status = (
            "disabled"
            if not self.config.backends.use_arrow_backend
            else "unavailable"
            if not self._packages
            else "database"
        )
        stats = self.cache_stats()
        return {
            "status": status,
            "cache": {k: stats[k] for k in ("entries", "bytes", "hit_rate")},
            "freshness": stats.get("freshness", {}),
        }

    def close(self) -> None:
        """Cancel background loads, finish store writes, close connections."""
        self._jobs.cancel_all()
        self._writer.close()
        self._connections.close()
        if self._capture is not None:
            self._capture.close()  # its temporary slot goes with its connection
        self._memory.drop(lambda k: True)

    # ------------------------------------------------------------ helpers

    def busy(self) -> contextlib.AbstractContextManager[None]:
        """Mark a query of the session running (on any plane): store writes wait for a pause."""
        return self._writer.busy()

    def flush(self) -> None:
        """Wait for the store writes queued so far."""
        self._writer.flush()

    def _percent(self, table: TableIdentity) -> str:
        job = self._jobs.running(table.key)
        return f"{job.percent}%" if job is not None else "(reloading)"

    def _table_lock(self, key: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(key, threading.Lock())

    def _count_load(self) -> None:
        with self._stats_lock:
            self.loads += 1
