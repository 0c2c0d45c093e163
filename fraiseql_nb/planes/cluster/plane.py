"""The cluster plane (``cluster``): a fact table's partitions loaded by Ray workers, kept
in Ray's object store, and queried where they are, the parts merged exactly.

One query, in one pass: the table's partitions (ranges of its heap pages, as on
disk in the arrow plane), exact now — proven unchanged, else the stale ones
reloaded (:mod:`.placement`) → one task per partition computes its
part where the partition is → the parts merged on the driver
(:mod:`~fraiseql_nb.compute.merge`: exact merges, or a shuffle by the group keys)
→ having, order, page → Result, with ``cluster = {"workers", "partitions"}``.

How partitions are planned, loaded and kept exact is :mod:`.placement`; views are
declined (they have no pages to split).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from typing import Any

import polars as pl
from psycopg_pool import ConnectionPool

from fraiseql_nb.compute.aggregate import finish_aggregate
from fraiseql_nb.compute.columns import declines
from fraiseql_nb.compute.merge import merge, mergeable, shuffle_keys
from fraiseql_nb.compute.skipping import matching
from fraiseql_nb.compute.window import finish_window
from fraiseql_nb.config import Config
from fraiseql_nb.errors import BackendError, Declined, FraiseQLError
from fraiseql_nb.pg.conninfo import redact, secrets_of
from fraiseql_nb.planes.arrow.background import RETRY_AFTER_S, Jobs
from fraiseql_nb.planes.arrow.catalog import Catalog, TableIdentity
from fraiseql_nb.planes.arrow.engine import computing
from fraiseql_nb.planes.cluster import runtime
from fraiseql_nb.planes.cluster.offer import ClusterState, cluster_offer, passes
from fraiseql_nb.planes.cluster.placement import Held, Placement, every_column, replica_dsn
from fraiseql_nb.planes.contract import Offer, Statement, Task
from fraiseql_nb.query.ir import AggregateQuery, RowQuery, WindowQuery
from fraiseql_nb.result import Result, measured
from fraiseql_nb.schema.model import FactTable

__all__ = ["ClusterPlane"]

_PAGE_BYTES = 8192
_PAGES = "SELECT (pg_relation_size(%s::regclass) / current_setting('block_size')::int)::bigint"


class ClusterPlane:
    """Runs aggregate and window queries on Ray, over partitions its workers load."""

    name = "cluster"

    def __init__(self, dsn: str, config: Config, pool: ConnectionPool, probe_dsn: str) -> None:
        self._dsn = dsn
        self.config = config
        self._catalog = Catalog(pool, probe_dsn, config)
        servers = [dsn, *(replica_dsn(r, dsn) for r in config.cluster.replicas)]
        self._secrets = tuple(s for d in servers for s in secrets_of(d))
        self._placement = Placement(self._catalog, config, servers, self._secrets)
        self.error = ""  # why the plane is off ("" while it is on)
        self._jobs = Jobs()  # background loads, and when one last failed
        self._closed = False
        self._stats_lock = threading.Lock()
        self.partitions_read = 0  # partitions queries read
        self.partitions_skipped = 0  # ... and skipped by their statistics

    # ------------------------------------------------------------ joining

    def join(self) -> str:
        """Join the configured cluster; "" when joined, else why not (the caller warns)."""
        if not self.config.cluster.address:
            self.error = "no cluster configured ([cluster] address)"
            return self.error
        joined = runtime.join(self.config.cluster)
        self.error = "" if joined.ok else redact(joined.error, self._secrets)
        return self.error

    @property
    def available(self) -> bool:
        return self.config.cluster.address != "" and not self.error

    # ------------------------------------------------------------ routing

    def offer(self, task: Task, *, requested: bool, earlier: Mapping[str, Offer]) -> Offer:
        """Off, declined, or whether it holds the table (or takes it: one beyond this
        machine, as an earlier plane's offer says)."""
        key = task.query.key
        configured = self.config.cluster.address != ""
        if not self.available:
            state = ClusterState(on=False, off=self.error, configured=configured)
            return cluster_offer(state, earlier, requested=requested, key=key)
        if not requested and passes(earlier):
            return Offer("pass")  # before asking the cluster anything
        assert isinstance(task.target, FactTable)
        declined = self.declines(task)
        state = ClusterState(
            on=True,
            declined=declined,
            holds=declined is None and not requested and self.holds(task.target),
            loading=None if declined is not None or requested else self.loading(task.target),
        )
        return cluster_offer(state, earlier, requested=requested, key=key)

    def declines(self, task: Task) -> str | None:
        """Why this plane would not answer ``task`` (None: it would)."""
        fact = task.target
        assert isinstance(fact, FactTable)
        query = task.query
        assert not isinstance(query, RowQuery)
        found = declines(query, fact, list(task.columns))
        if found is not None:
            return found
        if isinstance(query, WindowQuery):
            if shuffle_keys(query) is None:
                return "a window function without a partitionBy every function shares"
            if not fact.id_column:
                return "a window over a table without an id (rows would tie differently)"
        table = self._catalog.identity(fact)
        if table.kind not in ("r", "m"):
            return f"{table.relation}: partitions are ranges of a table's pages, a view has none"
        return None

    def holds(self, fact: FactTable) -> bool:
        """Whether the table's partitions are on the cluster already."""
        return self._placement.held(self._catalog.identity(fact).key) is not None

    # ------------------------------------------------------------ background loads

    def loading(self, fact: FactTable) -> str | None:
        """What routing says of a background load of the table: running, or failed a
        moment ago (not tried again for :data:`.background.RETRY_AFTER_S`, as the arrow
        plane's); None when there is neither."""
        key = self._catalog.identity(fact).key
        if self._jobs.running(key) is not None:
            return "loading on the cluster"
        failed = self._jobs.failure(key, within_s=RETRY_AFTER_S)
        return f"the cluster's load failed: {failed}" if failed is not None else None

    def load_in_background(self, task: Task) -> None:
        """Load the table's partitions onto the cluster on a thread of its own (every
        loadable column, as a query would); a query meanwhile runs elsewhere."""
        fact = task.target
        assert isinstance(fact, FactTable)
        table = self._catalog.identity(fact)
        if not self._closed:
            self._jobs.start(table.key, table.relation, 0, lambda _job: self._load(fact, table))

    def _load(self, fact: FactTable, table: TableIdentity) -> None:
        try:
            self._placement.current(fact, table, [])
        except FraiseQLError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported by routing, without a secret
            why = redact(f"{type(exc).__name__}: {exc}", self._secrets)
            raise BackendError(why) from None
        finally:
            if self._closed:  # closed meanwhile: keep nothing
                self._placement.clear()

    # ------------------------------------------------------------ statements

    def statement(self, task: Task) -> Statement | None:
        """The first partition's load, and the partition plan: each worker's statement."""
        fact = task.target
        assert isinstance(fact, FactTable)
        if not self.available:
            return None
        table = self._catalog.identity(fact)
        held = self._placement.held(table.key)
        names = list(held.names) if held is not None else every_column(fact, task.columns)
        starts = list(held.starts) if held is not None else self._placement.plan(fact)
        specs = self._placement.specs(fact, table, names, starts, range(len(starts)), "")
        nodes, cpus = runtime.workers()
        path = (
            "parts merged"
            if isinstance(task.query, AggregateQuery) and mergeable(task.query)
            else "rows shuffled by their keys"
        )
        return Statement(
            sql=specs[0].statement,
            note=f"{len(starts)} partitions over {nodes} nodes ({cpus} CPUs); {path}",
            estimate={"partitions": len(starts), "nodes": nodes, "held": held is not None},
            parts=tuple(f"{s.where}: {s.statement}" for s in specs),
        )

    # ------------------------------------------------------------ queries

    def execute(self, task: Task) -> Result:
        fact = task.target
        assert isinstance(fact, FactTable)
        query = task.query
        assert not isinstance(query, RowQuery)
        if not self.available:
            raise BackendError(f"the cluster plane is off: {self.error}")
        reason = self.declines(task)
        if reason is not None:
            raise Declined(f"declines {reason}")
        started = time.perf_counter()
        table = self._catalog.identity(fact)
        for attempt in (0, 1):
            held, loaded, statement = self._placement.current(fact, table, list(task.columns))
            reads = matching(
                query.where,
                [(p.rows, p.bounds) for p in held.parts],
                held.schema,
                self.config.routing.timezone,
            )
            if not any(reads):  # nothing can match: one partition gives the empty answer
                reads = [i == 0 for i in range(len(held.parts))]
            try:
                with computing():
                    frame = self._answer(query, fact, held, list(task.columns), reads)
                break
            except _Lost:
                # A node (and its partitions) went away: load the table again, once.
                self._placement.drop(table.key)
                if attempt:
                    raise BackendError(
                        f"the cluster lost partitions of {table.relation} twice in one query"
                    ) from None
        result = measured(
            key=query.key,
            kind=query.kind,
            backend=self.name,
            frame=frame,
            started=started,
            received=loaded,
            sql=statement,
            cache_hit=not statement,
        )
        workers = f"{held.workers} worker{'' if held.workers == 1 else 's'}"
        if isinstance(query, AggregateQuery) and mergeable(query):
            how = f"each of {len(held.parts)} partitions aggregated where it is held, the"
            how += " partial groups merged here"
        else:
            how = f"the rows of {len(held.parts)} partitions sent by their keys' hash to"
            how += " buckets, each computed whole on a worker"
        read = sum(reads)
        with self._stats_lock:
            self.partitions_read += read
            self.partitions_skipped += len(reads) - read
        if read < len(reads):
            how += f" ({read} of {len(reads)} partitions read, the others skipped by their"
            how += " statistics)"
        return result.evolve(
            cluster={"workers": held.workers, "partitions": len(held.parts)},
            partitions={"read": read, "skipped": len(reads) - read, "total": len(reads)},
            engine=lambda: f"Polars on {workers}: {how}",
        )

    def _answer(
        self,
        query: AggregateQuery | WindowQuery,
        fact: FactTable,
        held: Held,
        columns: list[str],
        reads: list[bool],
    ) -> pl.DataFrame:
        """The answer over the partitions ``reads`` keeps (the others cannot match)."""
        t = runtime.tasks()
        parts = [(i, p) for i, p in enumerate(held.parts) if reads[i]]
        tz = self.config.routing.timezone
        rel = f"{fact.schema}.{fact.relation}"
        if isinstance(query, AggregateQuery) and mergeable(query):
            refs = [
                t.part.options(name=f"fraiseql-nb part {rel} p{i}").remote(
                    p.ref, query, held.casts, tz, columns
                )
                for i, p in parts
            ]
            return finish_aggregate(merge(self._get(refs), query), query, fact, held.schema, tz)
        keys = shuffle_keys(query)
        assert keys is not None
        buckets = max(1, min(len(parts), runtime.workers()[1])) if keys else 1
        splits = []
        for i, p in parts:
            out = t.split.options(num_returns=buckets, name=f"fraiseql-nb split {rel} p{i}").remote(
                p.ref, query, held.casts, tz, keys, buckets, columns
            )
            splits.append(out if buckets > 1 else [out])
        reduced = [
            t.reduce.options(name=f"fraiseql-nb reduce {rel} b{b}").remote(
                query, fact, tz, *[s[b] for s in splits]
            )
            for b in range(buckets)
        ]
        frame = pl.concat(self._get(reduced), how="vertical_relaxed")
        if isinstance(query, AggregateQuery):
            return finish_aggregate(frame, query, fact, held.schema, tz)
        return finish_window(frame, query, fact)

    def _get(self, refs: list[Any]) -> list[Any]:
        """The tasks' values; their errors as this package's (a lost node as :class:`_Lost`)."""
        import ray

        try:
            return ray.get(refs)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, Declined):
                raise Declined(cause.reason) from None
            if isinstance(cause, BackendError) and "snapshot" not in cause.message:
                raise BackendError(cause.message, secrets=self._secrets) from None
            if isinstance(cause, FraiseQLError):
                raise _Lost() from None  # a partition rebuilt from a snapshot that is gone
            detail = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
            raise BackendError(
                f"the cluster plane failed: {detail}", secrets=self._secrets
            ) from None
        except ray.exceptions.RayError:
            raise _Lost() from None

    # ------------------------------------------------------------ lifecycle

    def stats(self) -> dict[str, Any]:
        """Tables held, their partitions and bytes (never waits for a load)."""
        held = self._placement.tables()
        return {
            "tables": len(held),
            "partitions": sum(len(h.parts) for h in held),
            "bytes": sum(p.bytes for h in held for p in h.parts),
        }

    def health(self) -> dict[str, Any] | None:
        """For ``Session.health()``: whether the plane is on and its cluster answers (a
        probe of a second at most, never a Ray call that could hang), and what it holds;
        None without a cluster configured. A cluster that answers serves what the database
        lets it: as healthy as the database."""
        if not self.config.cluster.address:
            return None
        why = self.error or runtime.answering(self.config.cluster)
        if why:
            return {"status": "unavailable", "reason": redact(why, self._secrets), **self.stats()}
        return {"status": "database", **self.stats()}

    def refresh(self, facts: list[FactTable]) -> int:
        """Let go of the partitions of ``facts``; 0 (none were in this process' memory)."""
        for fact in facts:
            try:
                self._placement.drop(self._catalog.identity(fact).key)
            except BackendError:
                continue
        return 0

    def prefetch(self, fact: FactTable, *, wait: bool) -> str | None:
        return None  # loaded by the queries that need it

    def cache_stats(self) -> dict[str, Any]:
        return {}  # what it holds is in its health report

    def busy(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def close(self) -> None:
        """Let go of the partitions (Ray frees objects nobody refers to); a background
        load still running keeps nothing when it ends."""
        self._closed = True  # close never waits for a load
        self._placement.clear()


class _Lost(Exception):  # noqa: N818 - internal: partitions went away with a node
    pass
