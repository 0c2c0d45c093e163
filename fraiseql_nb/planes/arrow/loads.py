"""The arrow plane's loads that run while the session goes on: a table loaded (into memory
and the store, or to its partitions on disk) on a thread of its own, after the answer
that needed it came from PostgreSQL; and prefetch, the same for a whole table on
request."""

from __future__ import annotations

import threading
from collections.abc import Callable

from fraiseql_nb.ops import progress
from fraiseql_nb.planes.arrow.background import Job, Jobs
from fraiseql_nb.planes.arrow.catalog import Catalog, TableIdentity
from fraiseql_nb.planes.arrow.disktables import DiskTables
from fraiseql_nb.planes.arrow.inmemory import MemoryTables
from fraiseql_nb.planes.arrow.writer import StoreWriter
from fraiseql_nb.schema.model import FactTable
from fraiseql_nb.sql.facts import loadable_columns

__all__ = ["Loads"]


class Loads:
    """Background loads of the arrow plane's tables (one per table at a time: :class:`Jobs`),
    under the plane's lock of each table."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        tables: MemoryTables,
        disk: DiskTables,
        jobs: Jobs,
        writer: StoreWriter,
        lock_of: Callable[[str], threading.Lock],
        count_load: Callable[[], None],
    ) -> None:
        self._catalog = catalog
        self._tables = tables
        self._disk = disk
        self._jobs = jobs
        self._writer = writer
        self._lock_of = lock_of
        self._count_load = count_load

    def start(self, fact: FactTable, names: list[str]) -> Job:
        """Start loading ``fact``: to disk beyond the memory budget, else every loadable
        column when it fits (else ``names``); a load running already is the one returned."""
        table = self._catalog.identity(fact)
        every = loadable_columns(fact)
        if table.reusable and set(names) <= set(every) and self._disk.serves(fact, table, every):
            return self._to_disk(fact, table, every)
        wanted = self._tables.plan(fact, names, have=self._tables.at_hand(table))
        estimate = self._catalog.estimate(fact, wanted)

        def work(job: Job) -> None:
            with self._lock_of(table.key):
                version = self._catalog.version(fact)
                data = self._tables.at_hand(table)
                exprs = self._tables.exprs(fact, wanted)
                if (
                    data is not None
                    and data.holds(exprs)
                    and data.same_table(version.files, version.attrs)
                    and self._tables.current(fact, table, version, data, wait=True, locked=True)
                    is not None
                ):
                    return  # loaded (or brought up to date) in the meantime
                loaded = self._tables.load(
                    fact, table, wanted, report=job.report, cancel=job.cancel
                )
                self._tables.keep(fact, table, version, loaded, wanted)

        # A view's cost per row is its own (it may compute, join, sleep): its size says
        # nothing of how long it takes to read, so only its measured pace is trusted.
        paced = table.kind in ("r", "p", "m")
        return self._jobs.start(
            table.key, table.relation, estimate.rows, work, estimate.bytes if paced else 0
        )

    def _to_disk(self, fact: FactTable, table: TableIdentity, every: list[str]) -> Job:
        estimate = self._catalog.estimate(fact, every)
        exprs = self._tables.exprs(fact, every)

        def work(job: Job) -> None:
            with self._lock_of(table.key):
                _, synced = self._disk.current(
                    fact, table, every, exprs, wait=True, report=job.report, cancel=job.cancel
                )
                if synced is not None and synced.sql:  # rows were read (not only checked)
                    self._count_load()

        paced = table.kind in ("r", "p", "m")
        return self._jobs.start(
            table.key, table.relation, estimate.rows, work, estimate.bytes if paced else 0
        )

    def prefetch(self, fact: FactTable, *, wait: bool) -> str:
        """Load every loadable column of ``fact``; with ``wait``, until done (progress is
        reported to the current listener), re-raising what failed."""
        job = self.start(fact, loadable_columns(fact))
        if wait:
            while not job.wait(0.25):
                progress.report("load", job.rows, job.bytes)
            if job.error is not None:
                raise job.error
            self._writer.flush()  # stored too, for other processes
        return "loaded" if job.done.is_set() else f"loading {job.percent}%"
