"""The postgres plane (``postgres``, pushdown): any query as one SQL statement, fetched whole.

For aggregates and windows: the fallback when the analytics plane is off,
declines or is loading, the choice for a cold one-shot query where loading
would cost more than it saves, and the way to a distributed PostgreSQL. It
returns the same columns and dtypes as the arrow plane
(:func:`fraiseql_nb.compute.columns.output_schema`). For row queries
(``use_wire_backend = false``): the row plane's statement and DataFrame, by
one buffered psycopg query instead of a stream.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from fraiseql_nb.compute.columns import output_schema
from fraiseql_nb.config import Config
from fraiseql_nb.pg.db import query_error
from fraiseql_nb.planes._fetch import fetch_frame, run_pooled
from fraiseql_nb.planes.arrow.catalog import table_error
from fraiseql_nb.planes.contract import BasePlane, Context, Offer, Registration, Statement, Task
from fraiseql_nb.planes.wire import WirePlane
from fraiseql_nb.query.ir import AggregateQuery, RowQuery, WindowQuery
from fraiseql_nb.result import Result, measured
from fraiseql_nb.schema.model import Entity, FactTable
from fraiseql_nb.sql.facts import compile_aggregate, compile_window, output_key, output_names
from fraiseql_nb.sql.params import Params

__all__ = ["REGISTRATION", "PostgresPlane", "pg_plan"]


class PostgresPlane(BasePlane):
    """Runs aggregate and window queries inside PostgreSQL."""

    name = "postgres"

    def offer(self, task: Task, *, requested: bool, earlier: Mapping[str, Offer]) -> Offer:
        """Anything, always (the fallback is never off)."""
        return Offer("ready", "requested: one buffered query" if task.rows else "requested")

    def __init__(self, pool: ConnectionPool, dsn: str, config: Config, rows: WirePlane) -> None:
        self.pool = pool
        self._dsn = dsn
        self.config = config
        self._rows = rows

    def statement(self, task: Task) -> Statement:
        if task.rows:
            return self._rows.statement(task)
        assert isinstance(task.target, FactTable)
        assert not isinstance(task.query, RowQuery)
        return Statement(
            self.compile(task.query, task.target, Params(literal=True)).as_string(None)
        )

    def compile(self, query: AggregateQuery | WindowQuery, fact: FactTable, params: Params) -> Any:
        """The statement for ``query`` (values to ``params``)."""
        if isinstance(query, AggregateQuery):
            return compile_aggregate(query, fact, params, timezone=self.config.routing.timezone)
        return compile_window(query, fact, params)

    def execute(self, task: Task) -> Result:
        """Run the task as one statement; an aggregate or window has the arrow plane's schema."""
        if task.rows:
            assert isinstance(task.query, RowQuery)
            assert isinstance(task.target, Entity)
            return self._rows.run(task.query, task.target, next_page=task.next_page, buffered=True)
        assert isinstance(task.target, FactTable)
        assert not isinstance(task.query, RowQuery)
        query, fact = task.query, task.target
        params = Params()
        statement = self.compile(query, fact, params)
        shown = self.compile(query, fact, Params(literal=True))
        schema = output_schema(query, fact)
        names = output_names(query)
        # The statement's columns are positional (output_key): named after the outputs here.
        by_key = {output_key(i): schema[n] for i, n in enumerate(names)}
        started = time.perf_counter()
        sql_text = shown.as_string(None)
        try:
            fetched = run_pooled(
                self.pool,
                self._dsn,
                self.config,
                lambda conn: fetch_frame(conn, statement, params.values, by_key, key=query.key),
            )
        except psycopg.Error as exc:
            raise table_error(exc, fact, self._dsn, self.config) or query_error(
                exc, self._dsn, timeout_ms=self.config.connections.statement_timeout_ms
            ) from None
        frame = fetched.frame
        frame.columns = names
        return measured(
            key=query.key,
            kind=query.kind,
            backend=self.name,
            frame=frame,
            started=started,
            first_row_at=fetched.first_row_at,
            received=fetched.received,
            sql=sql_text,
        )


def pg_plan(
    pool: ConnectionPool, dsn: str, config: Config, statement: str, *, analyze: bool = False
) -> str:
    """PostgreSQL's plan of ``statement`` (values inlined; any plane's, all read the same
    database), as EXPLAIN prints it; ``analyze`` runs it (read-only) and adds times and
    buffers."""
    options = "ANALYZE, BUFFERS" if analyze else "COSTS"
    # Sent without parameters: a "%" in an inlined value is no placeholder.
    text = sql.SQL(f"EXPLAIN ({options}) " + statement)
    try:
        rows = run_pooled(pool, dsn, config, lambda conn: conn.execute(text).fetchall())
    except psycopg.Error as exc:
        raise query_error(exc, dsn, timeout_ms=config.connections.statement_timeout_ms) from None
    return "\n".join(r[0] for r in rows)


def _build(ctx: Context) -> PostgresPlane:
    rows = ctx.built["wire"]
    assert isinstance(rows, WirePlane)  # row queries run its way, one buffered query
    return PostgresPlane(ctx.pool, ctx.dsn, ctx.config, rows)


REGISTRATION = Registration(
    name="postgres",
    build=_build,
    runs=frozenset({"rows", "facts"}),
    colour="#6b46c1",
    summary="any query as one SQL statement inside PostgreSQL: the fallback",
)
