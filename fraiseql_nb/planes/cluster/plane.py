"""The cluster plane (``cluster``): a fact table's partitions loaded by Ray workers, kept
in Ray's object store, and queried where they are, the parts merged exactly.

One query, in one pass: the table's partitions (ranges of its heap pages, as on
disk in the arrow plane), exact now — proven unchanged, else the stale ones
reloaded (:meth:`ClusterPlane._current`) → one task per partition computes its
part where the partition is → the parts merged on the driver
(:mod:`~fraiseql_nb.compute.merge`: exact merges, or a shuffle by the group keys)
→ having, order, page → Result, with ``cluster = {"workers", "partitions"}``.

Freshness is the arrow plane's rule, per partition: each partition records the
snapshot it was read in. When no transaction ran since (same snapshot), it is
current. Otherwise one statement, one scan, counts per partition its rows now and
the row versions its snapshot did not see; a partition with any, or whose count
moved, is reloaded — in the snapshot of that check, exported to the workers, so
that every partition is exact at one instant. A table under row-level security
reloads on any commit (what it shows may change with other tables); views are
declined (they have no pages to split).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import polars as pl
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from fraiseql_nb.compute.aggregate import finish_aggregate
from fraiseql_nb.compute.columns import declines
from fraiseql_nb.compute.merge import merge, mergeable, shuffle_keys
from fraiseql_nb.compute.window import finish_window
from fraiseql_nb.config import Config
from fraiseql_nb.errors import BackendError, Declined, FraiseQLError
from fraiseql_nb.pg.conninfo import redact, secrets_of
from fraiseql_nb.planes.arrow.adbc import BEGIN_READ
from fraiseql_nb.planes.arrow.catalog import Catalog, TableIdentity
from fraiseql_nb.planes.arrow.freshness import new_rows, parse_snapshot
from fraiseql_nb.planes.arrow.partitions import page_range, partition_of, plan
from fraiseql_nb.planes.arrow.plane import computing
from fraiseql_nb.planes.cluster import runtime
from fraiseql_nb.planes.cluster.work import LoadSpec, Secret
from fraiseql_nb.planes.contract import Statement, Task
from fraiseql_nb.query.ir import AggregateQuery, RowQuery, WindowQuery
from fraiseql_nb.result import Result, measured
from fraiseql_nb.schema.model import FactTable
from fraiseql_nb.sql.facts import compile_load, loadable_columns

__all__ = ["ClusterPlane"]

_PAGE_BYTES = 8192
#: Seconds after a failed background load before another is tried (as the arrow plane).
RETRY_S = 30
_PAGES = "SELECT (pg_relation_size(%s::regclass) / current_setting('block_size')::int)::bigint"


@dataclass(frozen=True)
class Part:
    """One loaded partition: where its rows are (an object of Ray's store) and what they were."""

    ref: Any
    rows: int
    snapshot: str
    node: str
    bytes: int
    seconds: float
    schema: dict[str, Any]  # Polars dtypes as loaded


@dataclass(frozen=True)
class Held:
    """A table's partitions on the cluster."""

    starts: tuple[int, ...]
    names: tuple[str, ...]
    parts: tuple[Part, ...]
    files: str
    attrs: str
    schema: dict[str, Any]  # Polars dtypes, after the casts
    casts: dict[str, int]  # decimal columns widened to the scale every partition shares

    @property
    def workers(self) -> int:
        return len({p.node for p in self.parts}) or 1


class ClusterPlane:
    """Runs aggregate and window queries on Ray, over partitions its workers load."""

    name = "cluster"

    def __init__(self, dsn: str, config: Config, pool: ConnectionPool, probe_dsn: str) -> None:
        self._dsn = dsn
        self.config = config
        self._catalog = Catalog(pool, probe_dsn, config)
        self._servers = [dsn, *(_replica(r, dsn) for r in config.cluster.replicas)]
        self._secrets = tuple(s for d in self._servers for s in secrets_of(d))
        self._secret_refs: list[Any] = []
        self._held: dict[str, Held] = {}
        self._lock = threading.Lock()
        self.error = ""  # why the plane is off ("" while it is on)
        self.loads = 0
        self._background: dict[str, threading.Thread] = {}  # table key -> its running load
        self._failed: dict[str, tuple[float, str]] = {}  # table key -> (when, why)
        self._closed = False

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
        return self._catalog.identity(fact).key in self._held

    # ------------------------------------------------------------ background loads

    def loading(self, fact: FactTable) -> str | None:
        """What routing says of a background load of the table: running, or failed a
        moment ago (not tried again for :data:`RETRY_S`); None when there is neither."""
        key = self._catalog.identity(fact).key
        thread = self._background.get(key)
        if thread is not None and thread.is_alive():
            return "loading on the cluster"
        failed = self._failed.get(key)
        if failed is not None and time.monotonic() - failed[0] < RETRY_S:
            return f"the cluster's load failed: {failed[1]}"
        return None

    def load_in_background(self, fact: FactTable) -> None:
        """Load the table's partitions onto the cluster on a thread of its own (every
        loadable column, as a query would); a query meanwhile runs elsewhere."""
        table = self._catalog.identity(fact)
        running = self._background.get(table.key)
        if self._closed or (running is not None and running.is_alive()):
            return
        thread = threading.Thread(
            target=self._load_table,
            args=(fact, table),
            name=f"fraiseql-nb cluster load {table.relation}",
            daemon=True,
        )
        self._background[table.key] = thread
        thread.start()

    def _load_table(self, fact: FactTable, table: TableIdentity) -> None:
        try:
            self._current(fact, table, [])
            self._failed.pop(table.key, None)
        except FraiseQLError as exc:
            self._failed[table.key] = (time.monotonic(), exc.message)
        except Exception as exc:  # noqa: BLE001 - a thread's failure is reported by routing
            why = redact(f"{type(exc).__name__}: {exc}", self._secrets)
            self._failed[table.key] = (time.monotonic(), why)
        if self._closed:  # closed meanwhile: keep nothing
            with self._lock:
                self._held.clear()

    # ------------------------------------------------------------ statements

    def statement(self, task: Task) -> Statement:
        """The first partition's load, and the partition plan: each worker's statement."""
        fact = task.target
        assert isinstance(fact, FactTable)
        if not self.available:
            return Statement(sql="", note=f"cluster plane off: {self.error}")
        table = self._catalog.identity(fact)
        held = self._held.get(table.key)
        names = list(held.names) if held is not None else _every(fact, task.columns)
        starts = list(held.starts) if held is not None else self._plan(fact)
        specs = self._specs(fact, table, names, starts, range(len(starts)), "")
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
            held, loaded, statement = self._current(fact, table, list(task.columns))
            try:
                with computing():
                    frame = self._answer(query, fact, held, list(task.columns))
                break
            except _Lost:
                # A node (and its partitions) went away: load the table again, once.
                with self._lock:
                    self._held.pop(table.key, None)
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
        result.cluster = {"workers": held.workers, "partitions": len(held.parts)}
        workers = f"{held.workers} worker{'' if held.workers == 1 else 's'}"
        if isinstance(query, AggregateQuery) and mergeable(query):
            how = f"each of {len(held.parts)} partitions aggregated where it is held, the"
            how += " partial groups merged here"
        else:
            how = f"the rows of {len(held.parts)} partitions sent by their keys' hash to"
            how += " buckets, each computed whole on a worker"
        result._engine = lambda: f"Polars on {workers}: {how}"
        return result

    def _answer(
        self, query: AggregateQuery | WindowQuery, fact: FactTable, held: Held, columns: list[str]
    ) -> pl.DataFrame:
        t = runtime.tasks()
        tz = self.config.routing.timezone
        rel = f"{fact.schema}.{fact.relation}"
        if isinstance(query, AggregateQuery) and mergeable(query):
            refs = [
                t.part.options(name=f"fraiseql-nb part {rel} p{i}").remote(
                    p.ref, query, held.casts, tz, columns
                )
                for i, p in enumerate(held.parts)
            ]
            return finish_aggregate(merge(self._get(refs), query), query, fact, held.schema)
        keys = shuffle_keys(query)
        assert keys is not None
        buckets = max(1, min(len(held.parts), runtime.workers()[1])) if keys else 1
        splits = []
        for i, p in enumerate(held.parts):
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
            return finish_aggregate(frame, query, fact, held.schema)
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

    # ------------------------------------------------------------ partitions

    def _current(
        self, fact: FactTable, table: TableIdentity, names: list[str]
    ) -> tuple[Held, int, str]:
        """The table's partitions exact now, the bytes loaded for that and what was sent."""
        with self._lock:
            version = self._catalog.version(fact)
            held = self._held.get(table.key)
            names = _every(fact, names)
            if held is not None and (held.files, held.attrs) != (version.files, version.attrs):
                held = None  # rewritten or altered: start over
            if held is not None and not set(names) <= set(held.names):
                names = list(dict.fromkeys([*names, *held.names]))
                held = None
            if held is not None and all(p.snapshot == version.snapshot for p in held.parts):
                return held, 0, ""  # no transaction ran since: exact
            with self._catalog.connection(fact) as conn:
                conn.execute(BEGIN_READ)
                try:
                    row = conn.execute(
                        "SELECT pg_current_snapshot()::text, pg_export_snapshot()"
                    ).fetchone()
                    assert row is not None
                    now, exported = row
                    if held is None:
                        starts = self._plan(fact, conn)
                        stale = list(range(len(starts)))
                    else:
                        starts = list(held.starts)
                        stale = self._stale(conn, fact, table, held, now)
                    if held is not None and not stale:
                        verified = held
                        if not parse_snapshot(now).has_window:
                            parts = tuple(replace(p, snapshot=now) for p in held.parts)
                            verified = replace(held, parts=parts)
                        self._held[table.key] = verified
                        return verified, 0, ""
                    specs = self._specs(
                        fact, table, list(held.names if held else names), starts, stale, exported
                    )
                    fresh = self._load(specs)
                finally:
                    conn.execute("COMMIT")
            old = list(held.parts) if held is not None else [None] * len(starts)
            for i, part in zip(stale, fresh, strict=True):
                old[i] = part
            parts = tuple(p for p in old if p is not None)
            schema, casts = _schema([p.schema for p in parts])
            held = Held(
                starts=tuple(starts),
                names=tuple(held.names if held else names),
                parts=parts,
                files=version.files,
                attrs=version.attrs,
                schema=schema,
                casts=casts,
            )
            self._held[table.key] = held
            text = f"{len(stale)} of {len(starts)} partitions: {specs[0].statement} …"
            return held, sum(p.bytes for p in fresh), text

    def _plan(self, fact: FactTable, conn: Any = None) -> list[int]:
        """The first page of each partition: ``[cluster] partitions``, else two per CPU."""
        rel = sql.Identifier(fact.schema, fact.relation).as_string(None)
        if conn is None:
            with self._catalog.connection(fact) as c:
                pages = int(c.execute(_PAGES, (rel,)).fetchone()[0])
        else:
            pages = int(conn.execute(_PAGES, (rel,)).fetchone()[0])
        wanted = self.config.cluster.partitions
        if wanted:
            count = max(1, min(wanted, pages))
            return sorted({(pages * i) // count for i in range(count)})
        return plan(pages, _PAGE_BYTES, max(1, runtime.workers()[1]))

    def _specs(
        self,
        fact: FactTable,
        table: TableIdentity,
        names: list[str],
        starts: list[int],
        indexes: Any,
        exported: str,
    ) -> list[LoadSpec]:
        exact = self.config.arrow_backend.exact_decimals
        replicas = len(self._servers) - 1
        specs = []
        for i in indexes:
            server = i % replicas if replicas else -1
            end = f"{starts[i + 1] - 1}" if i + 1 < len(starts) else "end"
            statement = compile_load(
                fact, names, where=page_range(starts, i), exact_decimals=exact
            ).as_string(None)
            specs.append(
                LoadSpec(
                    fact=fact,
                    statement=statement,
                    index=i,
                    pages=f"{starts[i]}–{end}",
                    server=server,
                    role=table.role,
                    row_security=table.row_security,
                    exact_decimals=exact,
                    config=self.config,
                    snapshot_id=exported if server < 0 else "",
                )
            )
        return specs

    def _load(self, specs: list[LoadSpec]) -> list[Part]:
        """Load the partitions of ``specs`` on the workers (spread over the nodes)."""
        import ray

        if not self._secret_refs:
            self._secret_refs = [ray.put(Secret(d)) for d in self._servers]
        t = runtime.tasks()
        rel = f"{specs[0].fact.schema}.{specs[0].fact.relation}"
        pending = [
            t.load.options(num_returns=2, name=f"fraiseql-nb load {rel} p{s.index}").remote(
                self._secret_refs[s.server + 1], s
            )
            for s in specs
        ]
        self.loads += 1
        parts = []
        for spec, (data, meta) in zip(specs, pending, strict=True):
            try:
                got = ray.get(meta)
            except ray.exceptions.RayTaskError as exc:
                cause = getattr(exc, "cause", None)
                detail = cause.message if isinstance(cause, FraiseQLError) else str(cause or exc)
                if not detail.startswith(spec.where):
                    detail = f"{spec.where}: {detail}"
                raise BackendError(detail, secrets=self._secrets) from None
            except ray.exceptions.RayError as exc:
                raise BackendError(
                    f"{spec.where}: the worker was lost ({type(exc).__name__})",
                    secrets=self._secrets,
                ) from None
            parts.append(
                Part(
                    ref=data,
                    rows=got["rows"],
                    snapshot=got["snapshot"],
                    node=got["node"],
                    bytes=got["bytes"],
                    seconds=got["seconds"],
                    schema=got["schema"],
                )
            )
        return parts

    def _stale(
        self, conn: Any, fact: FactTable, table: TableIdentity, held: Held, now: str
    ) -> list[int]:
        """The partitions not proven unchanged since their snapshot (one scan)."""
        every = list(range(len(held.parts)))
        if table.rls:
            return every
        current = parse_snapshot(now)
        snaps = sorted({p.snapshot for p in held.parts})
        added = sql.SQL(", ").join(
            sql.SQL("count(*) FILTER (WHERE {})::bigint").format(
                new_rows(parse_snapshot(s), current)
            )
            for s in snaps
        )
        statement = sql.SQL("SELECT {p} AS p, count(*)::bigint, {a} FROM {rel} GROUP BY 1").format(
            p=partition_of(list(held.starts)),
            a=added,
            rel=sql.Identifier(fact.schema, fact.relation),
        )
        counts = {int(r[0]): (int(r[1]), [int(x) for x in r[2:]]) for r in conn.execute(statement)}
        stale = []
        for i, p in enumerate(held.parts):
            total, news = counts.get(i, (0, [0] * len(snaps)))
            new = news[snaps.index(p.snapshot)]
            window = parse_snapshot(p.snapshot).has_window and p.snapshot != now
            if window or new > 0 or total - new != p.rows:
                stale.append(i)
        return stale

    # ------------------------------------------------------------ lifecycle

    def stats(self) -> dict[str, Any]:
        """Tables held, their partitions and bytes (never waits for a load)."""
        held = list(self._held.copy().values())
        return {
            "tables": len(held),
            "partitions": sum(len(h.parts) for h in held),
            "bytes": sum(p.bytes for h in held for p in h.parts),
        }

    def health(self) -> dict[str, Any]:
        """For ``Session.health()``: whether the plane is on and its cluster answers (a
        probe of a second at most, never a Ray call that could hang), and what it holds."""
        why = self.error or runtime.answering(self.config.cluster)
        if why:
            return {"status": "unavailable", "reason": redact(why, self._secrets), **self.stats()}
        return {"status": "healthy", **self.stats()}

    def refresh(self, facts: list[FactTable]) -> None:
        with self._lock:
            for fact in facts:
                try:
                    self._held.pop(self._catalog.identity(fact).key, None)
                except BackendError:
                    continue

    def close(self) -> None:
        """Let go of the partitions (Ray frees objects nobody refers to); a background
        load still running keeps nothing when it ends."""
        self._closed = True  # not under the lock: a load holds it, and close never waits
        self._held.clear()
        self._secret_refs = []


class _Lost(Exception):  # noqa: N818 - internal: partitions went away with a node
    pass


def _every(fact: FactTable, names: Any) -> list[str]:
    """Every loadable column, and ``names``: a table on the cluster is big, and a later
    query needing one more column would otherwise reload all of it."""
    return list(dict.fromkeys([*loadable_columns(fact), *names]))


def _replica(replica: str, session: str) -> str:
    """A replica's DSN with the session's own ``options`` too (settings such as the
    tenant a row-level security policy reads), so that it sees what the session sees."""
    ours = conninfo_to_dict(session).get("options")
    if not ours:
        return replica
    theirs = conninfo_to_dict(replica).get("options")
    return make_conninfo(replica, options=f"{theirs} {ours}" if theirs else ours)


def _schema(schemas: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, int]]:
    """The columns' dtypes across partitions: a decimal takes the widest scale any has."""
    out: dict[str, Any] = dict(schemas[0]) if schemas else {}
    casts: dict[str, int] = {}
    for name, dtype in out.items():
        if isinstance(dtype, pl.Decimal):
            scales = {s[name].scale for s in schemas if isinstance(s.get(name), pl.Decimal)}
            widest = max(scales)
            out[name] = pl.Decimal(38, widest)
            if len(scales) > 1:
                casts[name] = widest
    return out, casts
