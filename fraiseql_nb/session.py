"""A Session over one database: it owns the connection pools and the planes, and sends
each root field of a query to a plane (:mod:`fraiseql_nb.connecting` opens one).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import polars as pl
from psycopg_pool import ConnectionPool

from fraiseql_nb.config import Config, regression_mode
from fraiseql_nb.errors import (
    ConfigError,
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
from fraiseql_nb.planes import registry
from fraiseql_nb.planes.contract import Context
from fraiseql_nb.planes.dispatch import Planes
from fraiseql_nb.planes.postgres import pg_plan
from fraiseql_nb.planes.router import Route
from fraiseql_nb.query import IntrospectionQuery, RowQuery, parse_query
from fraiseql_nb.query.ir import Query, WindowQuery
from fraiseql_nb.result import Result, Results, introspection_result
from fraiseql_nb.schema import Schema
from fraiseql_nb.schema.model import FactTable

__all__ = ["Session", "backends"]

backends = registry.backends  # "auto" and every registered plane's name


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
        self._analytics_pool = analytics_pool
        context = Context(
            dsn=dsn,
            config=config,
            pool=pool,
            analytics_dsn=config.database.analytics_connection or dsn,
            analytics_pool=analytics_pool or pool,
            store=store,
        )
        self._planes = Planes(context, schema)  # every registered plane, each built once
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
        self._check_backend(backend)
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
        self._check_backend(backend)
        document = parse_query(
            query, self._schema, variables, max_expression=self.config.limits.max_expression_chars
        )
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
            task = self._planes.task(q)
            route = self._planes.route(task, backend, settle=self.settle_loads)
            statements = self._planes.statements(task, route)
            sent = statements.get(route.plane, next(iter(statements.values()))).sql
            plans.append(
                Plan(
                    key=q.key,
                    kind=q.kind,
                    backend=route.plane,
                    reason=route.reason,
                    sql={name: st.shown for name, st in statements.items()},
                    estimate=next(
                        (st.estimate for n, st in statements.items() if n != registry.FALLBACK),
                        {},
                    ),
                    pg_plan=self._pg_plan(sent, analyze=analyze) if plan or analyze else "",
                )
            )
        return Explanation(plans=tuple(plans))

    def _parse(
        self, query: str, variables: dict[str, Any] | None, operation_name: str | None = None
    ) -> Any:
        started = time.perf_counter()
        try:
            return parse_query(
                query,
                self._schema,
                variables,
                operation_name,
                max_expression=self.config.limits.max_expression_chars,
            )
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
        return self._planes.stream(q, entity)

    def route(self, query: Query, backend: str = "auto") -> Route:
        """Which plane would run ``query`` (IR), and why."""
        return self._planes.route(self._planes.task(query), backend, settle=self.settle_loads)

    def _run(self, query: Query | IntrospectionQuery, backend: str, cache: bool = True) -> Result:
        started = time.perf_counter()
        if isinstance(query, IntrospectionQuery):
            result = introspection_result(query.key, query.value, started)
            self.telemetry.record(result.metrics)
            return result
        plane = "none"
        try:
            task = self._planes.task(query)
            if not cache and not task.rows:
                self._planes.refresh([cast(FactTable, task.target)], caches_only=True)
            settle = self.settle_loads
            route = self._planes.route(task, backend, settle=settle)
            plane = route.plane
            result, reason = self._planes.run(
                task, backend, route, settle=settle, record=self._record
            )
            extra: dict[str, Any] = {"reason": reason, "explain": self._plan_of}
            if not task.rows and result.backend != registry.FALLBACK:
                extra["postgres_sql"] = self._planes.fallback_sql(task)
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

    def _record(self, result: Result) -> None:
        self.telemetry.record(result.metrics)

    def refresh(self, table: str | None = None) -> int:
        """Drop loaded analytics data of one fact table (by name or relation, e.g. "sales"
        or "tf_sales"), or of all, from memory and from the persisted store; return the
        in-memory entries dropped."""
        return self._planes.refresh(self._facts(table))

    def prefetch(self, table: str | None = None, *, wait: bool = False) -> dict[str, Any]:
        """Load every column of one fact table (or of all) into the arrow plane, in the
        background; with ``wait``, until done (progress is reported as for any load).

        Returns:
            ``{relation: "loaded" | "loading N%"}`` for each table.
        """
        self._check_open()
        out: dict[str, Any] = {}
        for fact in self._facts(table):
            out[f"{fact.schema}.{fact.relation}"] = self._planes.prefetch(fact, wait=wait)
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
        return self._planes.cache_stats()

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
                pool=self.pool_stats(),
                planes=self._planes.health(),
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
        return self._pg_plan(statement)

    def _pg_plan(self, statement: str, *, analyze: bool = False) -> str:
        return pg_plan(self._pool, self._dsn, self.config, statement, analyze=analyze)

    def _check_open(self) -> None:
        if self.closed:
            raise QueryError("this session is closed; open a new one with fq.connect()")

    def _check_backend(self, backend: str) -> None:
        self._check_open()
        if backend not in self._planes and backend != "auto":
            names = ("auto", *self._planes.names())
            raise ConfigError(
                f"backend must be one of {', '.join(names)}, got {backend!r}", key="backend"
            )

    def close(self) -> None:
        """Close the session's connections. Idempotent."""
        with self._lock:
            if not self.closed:
                self.closed = True
                self._planes.close()
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
