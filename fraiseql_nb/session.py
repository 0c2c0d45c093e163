"""A Session over one database: it owns the connection pools and the planes, and sends
each root field of a query to a plane (:mod:`fraiseql_nb.connecting` opens one).
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl
from psycopg_pool import ConnectionPool

from fraiseql_nb.compute.columns import declines, needed_columns
from fraiseql_nb.config import Config, regression_mode
from fraiseql_nb.errors import (
    BackendError,
    ConfigError,
    Declined,
    FraiseQLError,
    QueryError,
)
from fraiseql_nb.ops.budget import budgeted
from fraiseql_nb.ops.explain import Explanation, Plan
from fraiseql_nb.ops.health import HealthInputs, check_health
from fraiseql_nb.ops.telemetry import QueryMetrics, Telemetry
from fraiseql_nb.pg import deadline
from fraiseql_nb.pg.conninfo import mask_dsn
from fraiseql_nb.pg.pool import pool_stats
from fraiseql_nb.planes.arrow import ArrowPlane, Readiness, arrow_available
from fraiseql_nb.planes.cluster import ClusterPlane
from fraiseql_nb.planes.contract import Backend, Plane, Task
from fraiseql_nb.planes.postgres import PostgresPlane
from fraiseql_nb.planes.router import ClusterState, Route, choose_plane
from fraiseql_nb.planes.wire import WirePlane
from fraiseql_nb.query import IntrospectionQuery, RowQuery, parse_query
from fraiseql_nb.query.ir import Query, WindowQuery
from fraiseql_nb.result import Result, Results, introspection_result
from fraiseql_nb.schema import Schema
from fraiseql_nb.schema.model import FactTable

__all__ = ["BACKENDS", "Session"]

BACKENDS: tuple[Backend, ...] = ("auto", "wire", "arrow", "cluster", "postgres")


class Session:
    """A connection pool to one database, what it offers to query, and the planes."""

    def __init__(
        self,
        dsn: str,
        config: Config,
        pool: ConnectionPool,
        schema: Schema,
        analytics_pool: ConnectionPool | None = None,
        store: Path | None = None,
    ) -> None:
        self._dsn = dsn
        self.config = config
        self._pool = pool
        self._schema = schema
        self._rows = WirePlane(pool, dsn, config)
        self._postgres = PostgresPlane(pool, dsn, config, self._rows)
        self._arrow_ready = arrow_available()
        # With an analytics_connection (a replica), the arrow plane reads the catalogue,
        # table versions and data there: a version is only comparable where it was read.
        analytics = config.database.analytics_connection or dsn
        self._analytics_pool = analytics_pool
        self._arrow = ArrowPlane(analytics, config, analytics_pool or pool, analytics, store)
        self._cluster = ClusterPlane(analytics, config, analytics_pool or pool, analytics)
        if config.cluster.address:
            off = self._cluster.join()
            if off:
                warnings.warn(
                    f"the cluster plane is off: {off}; the other planes work", stacklevel=3
                )
        self._planes: dict[str, Plane] = {
            "wire": self._rows,
            "arrow": self._arrow,
            "cluster": self._cluster,
            "postgres": self._postgres,
        }
        self.telemetry = Telemetry()
        self._lock = threading.Lock()
        self.closed = False
        #: Under ``auto``, wait for the arrow plane's loads instead of answering on
        #: PostgreSQL meanwhile: the plane that answers then depends on the data, never
        #: on timing (regression notebooks; ``$FRAISEQL_REGRESSION`` sets it).
        self.settle_loads = regression_mode()

    # ------------------------------------------------------------ properties

    @property
    def dsn(self) -> str:
        """The DSN, password masked."""
        return mask_dsn(self._dsn)

    @property
    def schema(self) -> Schema:
        """The entities and fact tables of the database (a :class:`~fraiseql_nb.Schema`)."""
        return self._schema

    def pool_stats(self) -> dict[str, int]:
        """Connection pool gauges: size, idle, active, waiting, max."""
        return pool_stats(None if self.closed else self._pool)

    # ------------------------------------------------------------ queries

    def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        backend: str = "auto",
        *,
        operation_name: str | None = None,
        cache: bool = True,
    ) -> Result | Results:
        """Run every root field of ``query``.

        Args:
            query: GraphQL text.
            variables: values of the operation's variables.
            backend: "auto", or a plane to force: "wire", "arrow", "cluster", "postgres".
            operation_name: which operation to run when the document has several.
            cache: False reloads analytics data from the database instead of
                answering from the cache (the fresh load replaces the cached copy).

        Returns:
            A Result for a single root field, else Results keyed by alias or name.
        """
        self._check_open()
        if backend not in BACKENDS:
            raise ConfigError(
                f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}", key="backend"
            )
        document = self._parse(query, variables, operation_name)
        # One budget for the request: every root field's result counts against it.
        limit = deadline.current()  # an HTTP request's time (serve), shared by its roots
        with budgeted(self.config.limits.result_mb()) as guard:
            results = []
            for q in document.queries:
                if limit is not None:
                    limit.check(q.key)
                result = self._run(q, backend, cache)
                guard.keep(result.key, result.metrics.result_bytes, result.metrics.rows)
                results.append(result)
        return results[0] if len(results) == 1 else Results(results)

    def explain(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        backend: str = "auto",
        *,
        plan: bool = False,
        analyze: bool = False,
    ) -> Explanation:
        """For each root field: its kind, the plane that would run it and why, the SQL each
        plane would send, and the estimates — without running anything but catalogue reads.

        ``plan=True`` adds PostgreSQL's ``EXPLAIN`` of the statement the chosen plane sends
        (for the arrow plane: its load); ``analyze=True`` runs that statement to measure it
        (``EXPLAIN (ANALYZE, BUFFERS)``; read-only, like every statement here)."""
        self._check_open()
        if backend not in BACKENDS:
            raise ConfigError(
                f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}", key="backend"
            )
        document = parse_query(query, self._schema, variables)
        plans = []
        for q in document.queries:
            if isinstance(q, IntrospectionQuery):
                plans.append(
                    Plan(
                        key=q.key,
                        kind=q.kind,
                        backend="schema",
                        reason="introspection: answered from the GraphQL schema, no SQL",
                        sql={},
                        estimate={},
                    )
                )
                continue
            task = self._task(q)
            route = self._route(task, backend)
            # A row query shows its own plane's statement; a fact query PostgreSQL's and,
            # with the arrow plane on, the arrow plane's load.
            shown = [route.plane] if task.rows else ["postgres"]
            if not task.rows and self._arrow_on():
                shown.append("arrow")
            if not task.rows and self._cluster.available:
                shown.append("cluster")
            statements = {name: self._planes[name].statement(task) for name in shown}
            sent = statements.get(route.plane, statements[shown[0]]).sql
            pg_plan = self._rows.pg_plan(sent, analyze=analyze) if plan or analyze else ""
            plans.append(
                Plan(
                    key=q.key,
                    kind=q.kind,
                    backend=route.plane,
                    reason=route.reason,
                    sql={name: st.shown for name, st in statements.items()},
                    estimate=statements["arrow"].estimate if "arrow" in statements else {},
                    pg_plan=pg_plan,
                )
            )
        return Explanation(plans=tuple(plans))

    def _parse(
        self, query: str, variables: dict[str, Any] | None, operation_name: str | None = None
    ) -> Any:
        started = time.perf_counter()
        try:
            return parse_query(query, self._schema, variables, operation_name)
        except FraiseQLError as exc:
            self.telemetry.record(
                QueryMetrics(
                    backend="none",
                    kind="invalid",
                    root_field="",
                    duration_ms=(time.perf_counter() - started) * 1e3,
                    error=str(exc),
                )
            )
            raise

    def stream(
        self, query: str, variables: dict[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield the documents of one row query one by one, in constant memory.

        Leaving the loop early cancels the query on the server.
        """
        self._check_open()
        document = self._parse(query, variables)
        if len(document.queries) != 1 or not isinstance(document.queries[0], RowQuery):
            raise QueryError(
                "stream() takes exactly one row query (an entity list or single query);"
                " use execute() for aggregates, windows or several root fields"
            )
        q = document.queries[0]
        entity = self._schema.entity(q.entity)
        assert entity is not None
        return self._rows.stream(q, entity)

    def route(self, query: Query, backend: str = "auto") -> Route:
        """Which plane would run ``query`` (IR), and why."""
        return self._route(self._task(query), backend)

    def _task(self, query: Query) -> Task:
        """The root field planned once: its target and the fact columns it reads."""
        if isinstance(query, RowQuery):
            entity = self._schema.entity(query.entity)
            assert entity is not None
            return Task(query=query, target=entity)
        fact = self._schema.fact(query.fact)
        assert fact is not None
        return Task(query=query, target=fact, columns=tuple(needed_columns(query, fact)))

    def _route(self, task: Task, backend: str) -> Route:
        declined = None
        readiness: Readiness | None = None
        if not task.rows and self._arrow_on():
            fact = task.target
            assert isinstance(fact, FactTable)
            declined = declines(task.query, fact, task.columns)  # type: ignore[arg-type]
            if backend == "auto" and declined is None:
                readiness = self._arrow.readiness(fact, list(task.columns))
                if self.settle_loads and readiness.state == "loading":
                    readiness = replace(readiness, state="ending")  # wait for it
        return choose_plane(
            task.query.kind,
            backend,
            self._routing_config(),
            arrow_ready=self._arrow_ready,
            readiness=readiness,
            key=task.query.key,
            declined=declined,
            cluster=self._cluster_state(task, backend),
        )

    def _cluster_state(self, task: Task, backend: str) -> ClusterState | None:
        """The cluster plane for this task, when one is configured."""
        if not self.config.cluster.address:
            return None
        cluster = self._cluster
        if task.rows or not cluster.available or backend not in ("auto", "cluster"):
            return ClusterState(on=cluster.available, off=cluster.error)
        fact = task.target
        assert isinstance(fact, FactTable)
        return ClusterState(
            on=True,
            declined=cluster.declines(task),
            holds=cluster.holds(fact),
            loading=cluster.loading(fact),
        )

    def _routing_config(self) -> Config:
        """The configuration routing follows: with ``settle_loads``, loads in the foreground."""
        if not self.settle_loads or not self.config.routing.background_loads:
            return self.config
        return replace(self.config, routing=replace(self.config.routing, background_loads=False))

    def _arrow_on(self) -> bool:
        return self.config.backends.use_arrow_backend and self._arrow_ready

    def _run(self, query: Query | IntrospectionQuery, backend: str, cache: bool = True) -> Result:
        started = time.perf_counter()
        if isinstance(query, IntrospectionQuery):
            result = introspection_result(query.key, query.value, started)
            self.telemetry.record(result.metrics)
            return result
        plane = "none"
        try:
            task = self._task(query)
            if not cache and not task.rows:
                self._arrow.refresh([task.target])  # type: ignore[list-item]
            route = self._route(task, backend)
            plane = route.plane
            with self._arrow.busy():  # the arrow store writes when queries pause
                result, reason = self._dispatch(task, backend, route)
            extra: dict[str, Any] = {"reason": reason, "explain": self._plan_of}
            if result.backend in ("arrow", "cluster"):
                # What answers the same inside PostgreSQL: to read, copy, or EXPLAIN there.
                extra["postgres_sql"] = self._postgres.statement(task).sql
            if isinstance(query, WindowQuery):
                extra["units"] = query.units()
            typenames = () if isinstance(query, RowQuery) else query.typenames
            result = result.evolve(constants=typenames, **extra)
        except BaseException as exc:
            self.telemetry.record(
                QueryMetrics(
                    backend=plane,
                    kind=query.kind,
                    root_field=query.key,
                    duration_ms=(time.perf_counter() - started) * 1e3,
                    error=str(exc) or type(exc).__name__,
                )
            )
            raise
        self.telemetry.record(result.metrics)
        return result

    def _dispatch(self, task: Task, backend: str, route: Route) -> tuple[Result, str]:
        """The result, and why its plane ran it: the routed plane, else (it declined)
        PostgreSQL, with the table loaded afterwards when the arrow plane asks for it."""
        plane = self._planes[route.plane]
        background = self.config.routing.background_loads and not self.settle_loads
        wait = backend == route.plane or not background or route.wait

        def follow(q: RowQuery) -> Result:
            result = plane.execute(replace(task, query=q))
            self.telemetry.record(result.metrics)
            return result

        task = replace(task, wait=wait, next_page=follow)
        reason, load = route.reason, route.load
        try:
            result = plane.execute(task)
        except Declined as exc:
            if backend == route.plane:
                raise QueryError(
                    f"{task.query.key}: the {plane.name} plane {exc.reason}; use"
                    " backend='postgres' or 'auto'"
                ) from None
            reason, load = f"{plane.name} {exc.reason}", load or exc.load
            result = self._postgres.execute(task)
        if load:
            # After the answer: the load must not slow the query that started it.
            self._arrow.load_in_background(task.target, list(task.columns))  # type: ignore[arg-type]
        if route.load_cluster:
            self._cluster.load_in_background(task.target)  # type: ignore[arg-type]
        return result, reason

    def refresh(self, table: str | None = None) -> int:
        """Drop loaded analytics data of one fact table (by name or relation, e.g. "sales"
        or "tf_sales"), or of all, from memory and from the persisted store; return the
        in-memory entries dropped."""
        facts = self._facts(table)
        self._cluster.refresh(facts)
        return self._arrow.refresh(facts)

    def prefetch(self, table: str | None = None, *, wait: bool = False) -> dict[str, Any]:
        """Load every column of one fact table (or of all) into the arrow plane, in the
        background; with ``wait``, until done (progress is reported as for any load).

        Returns:
            ``{relation: "loaded" | "loading N%"}`` for each table.
        """
        self._check_open()
        if not self._arrow_on():
            raise BackendError(
                "the arrow plane is off ([backends] use_arrow_backend = false) or its packages"
                " do not import: nothing to prefetch"
            )
        out: dict[str, Any] = {}
        for fact in self._facts(table):
            job = self._arrow.prefetch(fact, wait=wait)
            out[f"{fact.schema}.{fact.relation}"] = (
                "loaded" if job is None or job.done.is_set() else f"loading {job.percent}%"
            )
        return out

    def _facts(self, table: str | None) -> list[Any]:
        if table is None:
            return list(self._schema.facts)
        fact = self._schema.fact(table)
        if fact is None:
            names = ", ".join(f.name for f in self._schema.facts) or "none"
            raise QueryError(f"no fact table named {table!r} (fact tables: {names})")
        return [fact]

    def cache_stats(self) -> dict[str, Any]:
        """The analytics cache: entries, bytes, hits, misses, hit_rate, the background
        loads running (``loading``: relation -> percent) and the store's folder."""
        return self._arrow.cache_stats()

    # ------------------------------------------------------------ operations

    @property
    def query_log(self) -> pl.DataFrame:
        """The last 1,000 queries' metrics, oldest first, one row each."""
        return self.telemetry.log()

    def metrics_text(self) -> str:
        """This session's metrics in Prometheus exposition format."""
        return self.telemetry.text(self.pool_stats(), self.cache_stats())

    def health(self) -> dict[str, Any]:
        """Each plane's status, the pool and the cache; never raises for a database that is down."""
        return check_health(
            HealthInputs(
                dsn=self._dsn,
                config=self.config,
                closed=self.closed,
                arrow_ready=self._arrow_ready,
                pool=self.pool_stats(),
                cache=self.cache_stats(),
                cluster=self._cluster.health() if self.config.cluster.address else None,
            )
        )

    def ready(self) -> dict[str, Any]:
        """Whether queries can run now, and on which planes."""
        h = self.health()
        usable = [name for name, b in h["backends"].items() if b["status"] == "healthy"]
        return {"ready": h["status"] != "unhealthy", "backends": usable}

    # ------------------------------------------------------------ lifecycle

    def _plan_of(self, statement: str) -> str:
        """PostgreSQL's plan of ``statement`` (values inlined), for :meth:`Result.plan`."""
        self._check_open()
        return self._rows.pg_plan(statement)

    def _check_open(self) -> None:
        if self.closed:
            raise QueryError("this session is closed; open a new one with fq.connect()")

    def close(self) -> None:
        """Close the session's connections. Idempotent."""
        with self._lock:
            if not self.closed:
                self.closed = True
                self._arrow.close()
                self._cluster.close()
                if self._analytics_pool is not None:
                    self._analytics_pool.close()
                self._pool.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        roots = ", ".join(self._schema.root_fields()) or "no queries"
        return f"<fraiseql_nb.Session {state} {self.dsn} [{roots}]>"
