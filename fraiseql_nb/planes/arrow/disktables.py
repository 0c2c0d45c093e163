"""The arrow plane's tables beyond its memory budget: which they are, keeping them current on
disk (:mod:`.disksync`), and answering from their files with Polars' streaming engine.

A table is answered from disk when loading every loadable column is estimated
beyond ``[arrow_backend] memory_mb``; the decision is made once per session.
Aggregates are answered from disk (filters, buckets, having, order and pages
included); window functions need every row of a partition in memory, so the
plane declines them there and ``auto`` runs them on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl
import pyarrow as pa

from fraiseql_nb.config import Config
from fraiseql_nb.errors import NotReady, UnsupportedError
from fraiseql_nb.ops import progress
from fraiseql_nb.planes.arrow.adbc import Cancel, Connections
from fraiseql_nb.planes.arrow.catalog import Catalog, TableIdentity
from fraiseql_nb.planes.arrow.catchup import CaughtUp, Following, Reader, catch_up, superseded
from fraiseql_nb.planes.arrow.diskcompute import compute
from fraiseql_nb.planes.arrow.disksync import StoreFullError, Synced, sync
from fraiseql_nb.planes.arrow.disktable import (
    CorruptPart,
    Delta,
    DiskTable,
    merge_stats,
    no_stats,
    read_disk_table,
)
from fraiseql_nb.planes.arrow.freshness import parse_snapshot
from fraiseql_nb.planes.arrow.partfile import convert
from fraiseql_nb.planes.arrow.store import ColumnStore
from fraiseql_nb.planes.arrow.tablelock import STALL_S, Busy, Held, table_lock
from fraiseql_nb.query.ir import AggregateQuery, WindowQuery
from fraiseql_nb.schema.model import FactTable

__all__ = ["NO_WAIT_S", "DiskTables", "load_workers"]

_MAX_TRIES = 3  # a corrupt partition is loaded again, then the query retried
#: Times a query starts again because another process changed the table's files under it
#: (a sync replaced a partition, a cache clear): not failures, but bounded.
_MAX_CHANGES = 20
#: Without ``wait`` (auto), how long a query waits for another process's sync of the table
#: before PostgreSQL answers it.
NO_WAIT_S = 2.0
_DROP_WAIT_S = 10.0
#: Changed rows kept in memory beside a table on disk, at least (else half memory_mb):
#: past this they are merged into its partitions by a sync.
_MIN_DELTA_BYTES = 16 * 2**20
_UNKNOWN = object()  # the partitions' greatest id, not read yet


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
    #: partitions read, skipped by their statistics, in all
    partitions: dict[str, int] = field(default_factory=dict)


class DiskTables:
    """The plane's tables on disk, kept current; answers aggregates from their files."""

    def __init__(
        self,
        catalog: Catalog,
        connections: Connections,
        store: ColumnStore | None,
        config: Config,
        dsn: str,
        *,
        following: Following,
    ) -> None:
        self._catalog = catalog
        self._connections = connections
        self._store = store
        self._config = config
        self._dsn = dsn
        self._tables: dict[str, DiskTable] = {}
        self._placement: dict[str, bool] = {}  # table key -> answered from disk
        #: table key -> its columns' digest and the key of its files (:meth:`stored_as`)
        self._stored_as: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()
        self._following = following
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

    def stored_as(self, table: TableIdentity, exprs: dict[str, str]) -> TableIdentity:
        """The table as its files on the store are named: by its loadable columns' load
        expressions too, so that two sessions loading other columns (``exact_decimals`` on
        and off) keep their own files rather than replace each other's after each change.
        Without ``exprs``: as this session last named them."""
        if table.columns:
            return table
        if not exprs:
            with self._lock:
                columns, _ = self._stored_as.get(table.key, ("", ""))
            return replace(table, columns=columns) if columns else table
        text = json.dumps(sorted(exprs.items()))
        stored = replace(table, columns=hashlib.sha256(text.encode()).hexdigest()[:16])
        with self._lock:
            self._stored_as[table.key] = (stored.columns, stored.key)
        return stored

    def ready(self, table: TableIdentity, exprs: dict[str, str]) -> DiskTable | None:
        """The table on disk when complete and holding ``exprs`` (freshness unchecked)."""
        table = self.stored_as(table, exprs)
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
        table = self.stored_as(table, exprs)
        received, statements = 0, ""
        failed = changed = 0
        while failed < _MAX_TRIES and changed < _MAX_CHANGES:
            data: DiskTable | None = None
            try:  # the catch-up reads the partitions too (their schema, greatest id)
                data, synced = self.current(
                    fact, table, every, exprs, wait=wait, report=report, cancel=cancel
                )
                if synced is not None:
                    received += synced.bytes
                    statements = statements or synced.sql
                computed = compute(data, query, fact, names, self._config)
                frame, where, dtypes = computed.frame, computed.where, computed.dtypes
                self.last_passes = computed.passes
                parts = {
                    "read": computed.read,
                    "skipped": computed.total - computed.read,
                    "total": computed.total,
                }
                return Answer(frame, received, statements, where, dtypes, parts)
            except CorruptPart as exc:
                used = data or self._get(table)
                if self._changed_elsewhere(table, used):
                    changed += 1  # another process's sync or a cache clear: start again
                    continue
                failed += 1
                warnings.warn(
                    f"fraiseql-nb: partition {exc.index} of {table.relation} on disk is damaged"
                    f" ({exc}): loading it again",
                    RuntimeWarning,
                    stacklevel=2,
                )
                if used is not None:
                    self._drop_part(table, used, exc.index)
        raise UnsupportedError(f"{table.relation}, whose partitions on disk keep failing")

    def _changed_elsewhere(self, table: TableIdentity, used: DiskTable | None) -> bool:
        """Whether the table's meta on disk is no longer the one ``used`` was read from
        (another process synced it, or the store dropped it): then what is on disk now is
        taken, and nothing is remembered as failing."""
        latest = self._reread(table)
        if used is not None and latest is not None and same_files(latest, used):
            return False
        self._adopt(table, latest)
        return True

    def _reread(self, table: TableIdentity) -> DiskTable | None:
        if self._store is None:
            return None
        return read_disk_table(table.key, self._store.folder(table.key))

    def _adopt(self, table: TableIdentity, latest: DiskTable | None) -> None:
        """Take what another process wrote: the changes followed in memory were over the
        partitions before it, so they go (the next sync starts from the new ones)."""
        self._following.stop(table)
        with self._lock:
            if latest is None:
                self._tables.pop(table.key, None)
            else:
                self._tables[table.key] = latest

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
        table = self.stored_as(table, exprs)
        version = self._catalog.version(fact)
        data = self._get(table)
        if (
            data is not None
            and data.complete
            and data.holds(exprs)
            and data.same_table(version.files, version.attrs)
            and data.exact_at == version.snapshot
        ):
            return data, None
        ttl = self._config.arrow_backend.cache_ttl_s
        fresh_enough = ttl > 0 and data is not None and time.monotonic() - data.verified_at < ttl
        if fresh_enough and data is not None and data.complete and data.holds(exprs):
            return data, None
        if data is not None and data.holds(exprs) and data.same_table(version.files, version.attrs):
            caught = self._caught_up(fact, table, version, data)
            if caught is not None:
                return caught.table, caught
        if not wait and (data is None or not data.complete):
            raise NotReady("cold" if data is None else "loading (partitions missing)")
        store = self._store
        assert store is not None
        try:
            with table_lock(
                store.root,
                table.key,
                f"syncing {table.relation}",
                wait_s=None if wait else NO_WAIT_S,
                cancelled=lambda: cancel is not None and cancel.cancelled,
            ) as held:
                # Another process may have loaded or synced it while this one waited.
                latest = self._reread(table)
                if latest is not None and (data is None or not same_files(latest, data)):
                    self._adopt(table, latest)
                    data = latest
                    if (
                        data.complete
                        and data.holds(exprs)
                        and data.same_table(version.files, version.attrs)
                        and _covers(data.exact_at, version.snapshot)
                    ):
                        return data, None  # synced by the other process since this query began
                synced = self._sync(
                    fact,
                    table,
                    every,
                    exprs,
                    version,
                    data,
                    report=report,
                    cancel=cancel,
                    held=held,
                )
        except OSError as exc:  # the lock file: a read-only or full store
            raise UnsupportedError(
                f"{table.relation} from disk: the store's lock cannot be taken"
                f" ({exc.strerror or exc})"
            ) from None
        except Busy as exc:
            if exc.stalled:
                raise UnsupportedError(
                    f"{table.relation} from disk: {exc.holder} holds its load and has not"
                    f" moved for {STALL_S:.0f} s"
                ) from None
            raise NotReady(f"being loaded by {exc}") from None
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
        held: Held,
    ) -> Synced:
        """Load or sync the table's partitions (the caller holds the table's lock)."""
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
            done = sum(p is not None for p in t.parts)
            held.beat(f"loading {table.relation}: {done} of {len(t.parts)} partitions", force=True)

        def tell(done: int, total: int, rows: int, nbytes: int) -> None:
            held.beat(
                f"loading {table.relation}: {done} of {total} partitions to load, {rows:,} rows"
            )
            if report is not None:
                report(rows, nbytes)
            progress.report("load", rows, nbytes)
            progress.report("partitions", done, total)

        token = self._following.begin(fact, table, exprs)
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
        except BaseException as exc:
            self._following.abandon(table, token)
            if not isinstance(exc, StoreFullError):
                raise
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
        if token is not None:
            try:
                ids = synced.table.stored_schema().get(self._following.id_of(table))
            except CorruptPart:
                ids = None  # not followed: the next query finds the damage
            self._following.follow(table, synced.table, token, ids)
        return synced

    # ------------------------------------------------------------ change capture

    def _caught_up(
        self, fact: FactTable, table: TableIdentity, version: Any, data: DiskTable
    ) -> Synced | None:
        """``data`` brought up to now by the changes the stream carried (kept in memory
        beside its partitions: :class:`.disktable.Delta`), or None when it does not carry
        them on or they cannot be applied (then the partitions are synced, by the scan).
        The caller holds the plane's lock of the table: one take and its apply at a time."""
        latest = self._get(table)
        if latest is not data:
            if latest is not None and latest.exact_at == version.snapshot:
                return Synced(table=latest)  # brought up to now meanwhile
            data = latest or data
        if not (data.complete and self._following.follows(table, data)):
            return None
        try:  # taken: from here the changes exist only in hand
            applied = self._apply(fact, table, version, data)
        except BaseException:
            self._stop(table)
            raise
        if applied is None:
            self._stop(table)  # the partitions are synced from their own snapshot
            return None
        fresh, caught = applied
        with self._lock:
            self._tables[table.key] = fresh
        self._following.carried(table, fresh)
        return Synced(table=fresh, bytes=caught.bytes, sql=caught.sql)

    def _apply(
        self, fact: FactTable, table: TableIdentity, version: Any, data: DiskTable
    ) -> tuple[DiskTable, CaughtUp] | None:
        capture = self._following.capture
        assert capture is not None
        key = self._following.id_of(table)
        exact = self._config.arrow_backend.exact_decimals
        if data.delta is None:
            schema = data.stored_schema()
            delta = Delta(
                key=key,
                keys=pl.Series(key, [], dtype=schema[key]),
                frame=pl.DataFrame(schema=schema),
                stats=no_stats(),
                snapshot=data.snapshot,
                greatest=_UNKNOWN,
            )
        else:
            delta = data.delta
        seen = [no_stats()]

        def frame_of(arrow: pa.Table) -> pl.DataFrame:
            stored, stats = convert(arrow, fact, exact)  # as the partitions store rows
            seen[0] = merge_stats(seen[0], stats)
            return pl.DataFrame(pl.from_arrow(stored))

        reader = Reader(
            connections=self._connections,
            fact=fact,
            names=list(data.exprs),
            key=key,
            schema=delta.frame.schema,
            frame_of=frame_of,
            config=self._config,
            dsn=self._dsn,
        )
        cap = max(self._config.arrow_backend.memory_mb * 2**20 // 2, _MIN_DELTA_BYTES)
        caught = catch_up(capture, table, reader, limit=cap // 64)
        if caught is None:
            return None
        if caught.truncated:  # the partitions' rows are all gone: the table is the delta
            frame, keys = caught.frame, delta.keys.clear()
        else:
            frame = delta.frame
            if caught.keys.len():
                frame = frame.filter(~pl.col(key).is_in(caught.keys.implode()))
            frame = pl.concat([frame, caught.frame], how="vertical")
            if caught.keys.len() and delta.greatest is _UNKNOWN:
                delta = replace(delta, greatest=_greatest(data, key))
            keys = pl.concat([delta.keys, superseded(caught.keys, delta.greatest)]).unique()
        if frame.estimated_size() + keys.estimated_size() > cap:  # merged into the partitions
            return None
        fresh = replace(
            data,
            delta=replace(
                delta,
                keys=keys,
                frame=frame,
                stats=merge_stats(delta.stats, seen[0]),
                snapshot=version.snapshot,
                cleared=delta.cleared or caught.truncated,
            ),
            verified_at=time.monotonic(),
        )
        return fresh, caught

    def _stop(self, table: TableIdentity) -> None:
        """The stream no longer carries the table on: its delta goes, the partitions stay
        (exact at their own snapshot, which the next sync starts from)."""
        self._following.stop(table)
        with self._lock:
            data = self._tables.get(table.key)
            if data is not None and data.delta is not None:
                self._tables[table.key] = replace(data, delta=None)

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
        """Mark a damaged partition missing (the next sync loads it again) — under the
        table's lock, and only if the meta on disk still names the files found damaged."""
        self._stop(table)
        store = self._store
        if store is None:
            data.parts[index] = None
            return
        doing = f"marking a damaged partition of {table.relation}"
        with (
            contextlib.suppress(OSError, TimeoutError, Busy),  # then it reloads next time too
            table_lock(store.root, table.key, doing, wait_s=_DROP_WAIT_S),
        ):
            latest = self._reread(table)
            if latest is None or not same_files(latest, data):
                self._adopt(table, latest)
                return
            latest.parts[index] = None
            store.put_meta(table.key, latest.meta())
            self._adopt(table, latest)

    def forget(self, keys: set[str]) -> None:
        """Drop what is known of these tables (their files are removed by the store)."""
        with self._lock:
            for key in keys:  # followed rows no longer held are no longer followed
                self._placement.pop(key, None)
                _, stored = self._stored_as.pop(key, ("", key))
                self._tables.pop(stored, None)


def same_files(a: DiskTable, b: DiskTable) -> bool:
    """Whether two readings of a table name the same partitions and files (as their meta
    says, through JSON: a tuple read back is a list)."""
    return json.loads(json.dumps(a.meta())) == json.loads(json.dumps(b.meta()))


def _covers(exact_at: str, wanted: str) -> bool:
    """Whether rows exact at snapshot ``exact_at`` hold every change ``wanted`` saw: every
    transaction below ``wanted``'s xmax had ended by ``exact_at``."""
    if not exact_at:
        return False
    if exact_at == wanted:
        return True
    return parse_snapshot(exact_at).xmin >= parse_snapshot(wanted).xmax


def _greatest(data: DiskTable, key: str) -> Any:
    """The greatest id in the partitions (one read of the id column), None if not integers.

    Raises:
        CorruptPart: a segment is gone or unreadable.
    """
    if not data.stored_schema()[key].is_integer():
        return None
    try:
        return data.scan([key]).select(pl.col(key).max()).collect().item()
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise CorruptPart(0, str(exc)) from None
