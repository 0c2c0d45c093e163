"""The arrow plane's tables beyond its memory budget: which they are, keeping them current on
disk (:mod:`.disk`), and answering from their files with Polars' streaming engine.

A table is answered from disk when loading every loadable column is estimated
beyond ``[arrow_backend] memory_mb``; the decision is made once per session.
Aggregates are answered from disk (filters, buckets, having, order and pages
included); window functions need every row of a partition in memory, so the
plane declines them there and ``auto`` runs them on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from fraiseql_nb import progress
from fraiseql_nb.compute.aggregate import run_aggregate_lazy
from fraiseql_nb.compute.filters import check_caseless_by, check_time_bounds
from fraiseql_nb.config import Config
from fraiseql_nb.errors import NotReady, UnsupportedError
from fraiseql_nb.planes.arrow.adbc import Cancel, Connections
from fraiseql_nb.planes.arrow.catalog import Catalog, TableIdentity
from fraiseql_nb.planes.arrow.disk import StoreFullError, Synced, sync
from fraiseql_nb.planes.arrow.disktable import CorruptPart, DiskTable, inexact, read_disk_table
from fraiseql_nb.planes.arrow.store import ColumnStore
from fraiseql_nb.query.ir import AggregateQuery, WindowQuery
from fraiseql_nb.schema.model import FactTable

__all__ = ["DiskTables", "load_workers"]

_MAX_TRIES = 3  # a corrupt partition is loaded again, then the query retried
_MAX_PASSES = 256  # scans of one query with percentiles


def _width(dtype: Any) -> int:
    """Bytes a value takes in memory, roughly (text: an average short string)."""
    if isinstance(dtype, pl.Decimal):
        return 16
    if dtype in (pl.String, pl.Categorical):
        return 32
    return 8


def load_workers(config: Config) -> int:
    """Connections a load reads with: ``load_connections``, or by default the client's
    cores (at most 8: each connection is also a server process)."""
    return config.arrow_backend.load_connections or max(min(os.cpu_count() or 1, 8), 1)


@dataclass(frozen=True)
class Answer:
    frame: pl.DataFrame
    bytes: int
    sql: str
    where: str = ""  # the partitions it was computed over, in words
    dtypes: dict[str, Any] = field(default_factory=dict)  # the columns it read


class DiskTables:
    """The plane's tables on disk, kept current; answers aggregates from their files."""

    def __init__(
        self,
        catalog: Catalog,
        connections: Connections,
        store: ColumnStore | None,
        config: Config,
        dsn: str,
    ) -> None:
        self._catalog = catalog
        self._connections = connections
        self._store = store
        self._config = config
        self._dsn = dsn
        self._tables: dict[str, DiskTable] = {}
        self._placement: dict[str, bool] = {}  # table key -> answered from disk
        self._lock = threading.Lock()
        self.last: Synced | None = None  # what the last sync did (tests, benchmarks)
        self.last_passes = 0  # scans of the last query answered

    def serves(self, fact: FactTable, table: TableIdentity, every: list[str]) -> bool:
        """Whether ``fact`` is answered from disk (decided once per session)."""
        with self._lock:
            known = self._placement.get(table.key)
        if known is not None:
            return known
        budget = self._config.arrow_backend.memory_mb
        on_disk = budget == 0 or self._catalog.estimate(fact, every).mb > budget
        with self._lock:
            self._placement[table.key] = on_disk
        return on_disk

    def refusal(self, table: TableIdentity) -> str | None:
        """Why this table cannot be answered from disk, if it cannot."""
        if self._store is None:
            return "a table beyond [arrow_backend] memory_mb, with the store off"
        if not table.persistable:
            return "a table beyond [arrow_backend] memory_mb that cannot be stored"
        if self._store.broken is not None:
            return (
                f"a table beyond memory_mb, and the store cannot be written ({self._store.broken})"
            )
        return None

    def ready(self, table: TableIdentity, exprs: dict[str, str]) -> DiskTable | None:
        """The table on disk when complete and holding ``exprs`` (freshness unchecked)."""
        data = self._get(table)
        if data is not None and data.complete and data.holds(exprs):
            return data
        return None

    def execute(
        self,
        query: AggregateQuery | WindowQuery,
        fact: FactTable,
        table: TableIdentity,
        names: list[str],
        every: list[str],
        exprs: dict[str, str],
        *,
        wait: bool,
        report: Any = None,
        cancel: Cancel | None = None,
    ) -> Answer:
        if isinstance(query, WindowQuery):
            raise UnsupportedError(
                "window functions on a table answered from disk (beyond [arrow_backend] memory_mb)"
            )
        refused = self.refusal(table)
        if refused is not None:
            raise UnsupportedError(refused)
        received, statements = 0, ""
        for _ in range(_MAX_TRIES):
            data, synced = self.current(
                fact, table, every, exprs, wait=wait, report=report, cancel=cancel
            )
            if synced is not None:
                received += synced.bytes
                statements = statements or synced.sql
            try:
                frame, where, dtypes = self._compute(data, query, fact, names)
                return Answer(frame, received, statements, where, dtypes)
            except CorruptPart as exc:
                warnings.warn(
                    f"fraiseql-nb: partition {exc.index} of {table.relation} on disk is damaged"
                    f" ({exc}): loading it again",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self._drop_part(table, data, exc.index)
        raise UnsupportedError(f"{table.relation}, whose partitions on disk keep failing")

    def current(
        self,
        fact: FactTable,
        table: TableIdentity,
        every: list[str],
        exprs: dict[str, str],
        *,
        wait: bool,
        report: Any = None,
        cancel: Cancel | None = None,
    ) -> tuple[DiskTable, Synced | None]:
        """The table on disk, exact at the table's version now (synced when it is not)."""
        version = self._catalog.version(fact)
        data = self._get(table)
        if (
            data is not None
            and data.complete
            and data.holds(exprs)
            and data.same_table(version.files, version.attrs)
            and data.snapshot == version.snapshot
        ):
            return data, None
        ttl = self._config.arrow_backend.cache_ttl_s
        fresh_enough = ttl > 0 and data is not None and time.monotonic() - data.verified_at < ttl
        if fresh_enough and data is not None and data.complete and data.holds(exprs):
            return data, None
        if not wait and (data is None or not data.complete):
            raise NotReady("cold" if data is None else "loading (partitions missing)")
        synced = self._sync(fact, table, every, exprs, version, data, report=report, cancel=cancel)
        return synced.table, synced

    def _sync(
        self,
        fact: FactTable,
        table: TableIdentity,
        every: list[str],
        exprs: dict[str, str],
        version: Any,
        data: DiskTable | None,
        *,
        report: Any,
        cancel: Cancel | None,
    ) -> Synced:

        store = self._store
        assert store is not None
        about = {"relation": table.relation, "database": table.database, "role": table.role}

        def write_meta(t: DiskTable) -> None:
            try:
                store.put_meta(table.key, t.meta())
            except (OSError, TimeoutError) as exc:
                raise StoreFullError(f"the store's meta cannot be written ({exc})") from None
            with self._lock:
                self._tables[table.key] = t

        def tell(done: int, total: int, rows: int, nbytes: int) -> None:
            if report is not None:
                report(rows, nbytes)
            progress.report("load", rows, nbytes)
            progress.report("partitions", done, total)

        try:
            synced = sync(
                self._connections,
                fact,
                table,
                every,
                have=data,
                folder=store.folder(table.key),
                exprs=exprs,
                version=(version.files, version.attrs),
                about=about,
                config=self._config,
                dsn=self._dsn,
                workers=load_workers(self._config),
                write_meta=write_meta,
                room=lambda n: store.room(table.key, n),
                report=tell,
                cancel=cancel,
            )
        except StoreFullError as exc:
            warnings.warn(
                f"fraiseql-nb: loading {table.relation} to disk stopped: {exc}; the partitions"
                " complete are kept, and PostgreSQL answers",
                RuntimeWarning,
                stacklevel=2,
            )
            raise UnsupportedError(f"{table.relation} from disk: its load stopped, {exc}") from None
        with self._lock:
            self._tables[table.key] = synced.table
            self.last = synced
        return synced

    def _compute(
        self, data: DiskTable, query: AggregateQuery, fact: FactTable, names: list[str]
    ) -> tuple[pl.DataFrame, str, dict[str, Any]]:
        """The answer, what it was computed over in words, and the dtypes of its columns."""
        try:
            return self._compute_from(data, query, fact, names)
        except OSError as exc:  # a segment removed or unreadable meanwhile (cache clear, LRU)
            raise CorruptPart(0, f"{exc.strerror or exc}") from None

    def _compute_from(
        self, data: DiskTable, query: AggregateQuery, fact: FactTable, names: list[str]
    ) -> tuple[pl.DataFrame, str, dict[str, Any]]:
        stats = data.stats()
        for name in names:
            why = inexact(stats, name)
            if why:
                raise UnsupportedError(f"{name} from disk, which holds {why}")
        lf = data.scan(names)
        dtypes = dict(lf.collect_schema())
        for name, (low, high) in stats["times"].items():
            if name in names:
                check_time_bounds(name, dtypes[name], low, high)
        check_caseless_by(lambda name: name in stats["folds"], query.where)
        passes = self._passes(data, query, dtypes, names)
        self.last_passes = passes
        frame = run_aggregate_lazy(
            lf, query, fact, timezone=self._config.routing.timezone, passes=passes
        )
        files = sum(len(p.segments) for p in data.parts if p is not None)
        where = (
            f"Polars' streaming engine over {len(data.parts)} partitions on disk ({files}"
            f" files, {data.rows:,} rows), the columns {', '.join(names)}, in {passes}"
            f" scan{'' if passes == 1 else 's'}"
        )
        return frame, where, dtypes

    def _passes(
        self, data: DiskTable, query: AggregateQuery, dtypes: dict[str, Any], names: list[str]
    ) -> int:
        """Scans a query with percentiles needs so that one scan's values fit memory_mb
        (at least 1 MB); a percentile without group keys over more than that is declined
        (it cannot be split exactly): PostgreSQL answers it."""
        if not any(a.percentile is not None for a in query.aggregates):
            return 1
        budget = max(self._config.arrow_backend.memory_mb, 1) * 2**20
        need = data.rows * sum(_width(dtypes[n]) for n in names)
        if need <= budget:
            return 1
        if not query.group_keys:
            raise UnsupportedError(
                f"a percentile without group keys over {need / 2**20:,.0f} MB of values, more"
                " than [arrow_backend] memory_mb holds"
            )
        return min(math.ceil(need / budget), _MAX_PASSES)

    def _get(self, table: TableIdentity) -> DiskTable | None:
        with self._lock:
            data = self._tables.get(table.key)
        if data is None and self._store is not None:
            data = read_disk_table(table.key, self._store.folder(table.key))
            if data is not None:
                with self._lock:
                    self._tables.setdefault(table.key, data)
        return data

    def _drop_part(self, table: TableIdentity, data: DiskTable, index: int) -> None:
        data.parts[index] = None
        if self._store is not None:
            with contextlib.suppress(OSError, TimeoutError):  # then it reloads next time too
                self._store.put_meta(table.key, data.meta())

    def forget(self, keys: set[str]) -> None:
        """Drop what is known of these tables (their files are removed by the store)."""
        with self._lock:
            for key in keys:
                self._tables.pop(key, None)
                self._placement.pop(key, None)
