"""How ready a query's columns are in the arrow plane, asked before routing: in memory, in
the store, on disk, loading, failed a moment ago, declined, or cold with what loading
would cost. Cheap: no table is read (a cold one is estimated from the catalogue)."""

from __future__ import annotations

from fraiseql_nb.config import Config
from fraiseql_nb.planes.arrow.background import RETRY_AFTER_S, Jobs
from fraiseql_nb.planes.arrow.cache import MemoryCache
from fraiseql_nb.planes.arrow.catalog import Catalog, LoadEstimate, TableIdentity
from fraiseql_nb.planes.arrow.disktables import DiskTables
from fraiseql_nb.planes.arrow.inmemory import MemoryTables
from fraiseql_nb.planes.arrow.offer import Readiness
from fraiseql_nb.planes.arrow.store import ColumnStore
from fraiseql_nb.schema.model import FactTable
from fraiseql_nb.sql.facts import loadable_columns

__all__ = ["Ready"]


class Ready:
    """The arrow plane's readiness for a query, from the parts of the plane that know it."""

    def __init__(
        self,
        *,
        config: Config,
        catalog: Catalog,
        tables: MemoryTables,
        disk: DiskTables,
        memory: MemoryCache,
        jobs: Jobs,
        store: ColumnStore | None,
    ) -> None:
        self.config = config
        self._catalog = catalog
        self._tables = tables
        self._disk = disk
        self._memory = memory
        self._jobs = jobs
        self._store = store

    def readiness(self, fact: FactTable, names: list[str]) -> Readiness:
        """Whether ``names`` are at hand, cheaply (no table is read; a cold table is estimated)."""
        table = self._catalog.identity(fact)
        if not table.reusable:
            return Readiness("declined", f"arrow declines {table.relation}: a foreign table")
        every = loadable_columns(fact)
        if set(names) <= set(every) and self._disk.serves(fact, table, every):
            return self._disk_readiness(fact, table, every)
        exprs = self._tables.exprs(fact, names)
        data = self._memory.get(table.key)
        if data is not None and data.holds(exprs):
            return Readiness("memory", "cached")
        job = self._jobs.running(table.key)
        if job is not None:
            eta = job.eta_s()
            if eta <= self.config.routing.wait_for_load_s:
                return Readiness("ending", f"arrow: waited for its load, {eta:.1f} s from done")
            return Readiness("loading", f"arrow loading {job.percent}%")
        failed = self._jobs.failure(table.key, within_s=RETRY_AFTER_S)
        if failed is not None:
            return Readiness("failed", f"arrow load failed: {failed}")
        if self._store is not None and table.persistable and self._store.has(table.key, exprs):
            return Readiness("store", "stored")
        return Readiness(
            "cold", "not loaded", self._catalog.estimate(fact, self._tables.plan(fact, names))
        )

    def _disk_readiness(self, fact: FactTable, table: TableIdentity, every: list[str]) -> Readiness:
        refused = self._disk.refusal(table)
        if refused is not None:
            return Readiness("declined", f"arrow declines {refused}")
        if self._disk.ready(table, self._tables.exprs(fact, every)) is not None:
            return Readiness("disk", "from disk")
        job = self._jobs.running(table.key)
        if job is not None:
            return Readiness("loading", f"arrow loading to disk {job.percent}%")
        failed = self._jobs.failure(table.key, within_s=RETRY_AFTER_S)
        if failed is not None:
            return Readiness("failed", f"arrow load failed: {failed}")
        estimate = self._catalog.estimate(fact, every)
        assert self._store is not None
        budget = self._store.budget / 2**20
        if estimate.mb > budget:
            return Readiness(
                "declined",
                f"load {estimate.mb:,.0f} MB > the store's budget {budget:,.0f} MB",
                estimate,
                beyond=True,
            )
        return Readiness("cold", "not loaded", estimate)

    def estimate(self, fact: FactTable, names: list[str]) -> LoadEstimate:
        """Rows and bytes of loading ``names`` unfiltered (``cached`` when at hand)."""
        ready = self.readiness(fact, names)
        if ready.state == "disk":
            table = self._catalog.identity(fact)
            on_disk = self._disk.ready(table, {})
            return LoadEstimate(rows=on_disk.rows if on_disk else 0, bytes=0, cached=True)
        if ready.state in ("memory", "store"):
            data = self._memory.get(self._catalog.identity(fact).key)
            rows = data.rows if data is not None else 0
            return LoadEstimate(rows=rows, bytes=0, cached=True)
        return self._catalog.estimate(fact, names)
