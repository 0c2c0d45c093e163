"""The pushdown plane (``postgres``): an aggregate or window query as one SQL statement.

The fallback when the analytics plane is off or its packages are missing,
the choice for a cold one-shot query where loading would cost more than it
saves, and the way to a distributed PostgreSQL. It returns the same columns
and dtypes as the arrow plane (:func:`fraiseql_nb.planes.engine.output_schema`).
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from fraiseql_nb.config import Config
from fraiseql_nb.db import query_error
from fraiseql_nb.planes._fetch import fetch_frame, run_pooled
from fraiseql_nb.planes.arrow.catalog import table_error
from fraiseql_nb.planes.engine import output_schema
from fraiseql_nb.query.ir import AggregateQuery, WindowQuery
from fraiseql_nb.result import Result, measured
from fraiseql_nb.schema.model import FactTable
from fraiseql_nb.sql.facts import compile_aggregate, compile_window
from fraiseql_nb.sql.params import Params

__all__ = ["PushdownPlane"]


class PushdownPlane:
    """Runs aggregate and window queries inside PostgreSQL."""

    name = "postgres"

    def __init__(self, pool: ConnectionPool, dsn: str, config: Config) -> None:
        self.pool = pool
        self._dsn = dsn
        self.config = config

    def compile(self, query: AggregateQuery | WindowQuery, fact: FactTable, params: Params) -> Any:
        """The statement for ``query`` (values to ``params``)."""
        if isinstance(query, AggregateQuery):
            return compile_aggregate(query, fact, params, timezone=self.config.routing.timezone)
        return compile_window(query, fact, params)

    def execute(self, query: AggregateQuery | WindowQuery, fact: FactTable) -> Result:
        """Run ``query`` as one statement; the result has the arrow plane's schema."""
        params = Params()
        statement = self.compile(query, fact, params)
        shown = self.compile(query, fact, Params(literal=True))
        schema = output_schema(query, fact)
        started = time.perf_counter()
        sql_text = shown.as_string(None)
        try:
            fetched = run_pooled(
                self.pool,
                self._dsn,
                self.config,
                lambda conn: fetch_frame(conn, statement, params.values, schema),
            )
        except psycopg.Error as exc:
            raise table_error(exc, fact, self._dsn, self.config) or query_error(
                exc, self._dsn, timeout_ms=self.config.wire_backend.statement_timeout_ms
            ) from None
        return measured(
            key=query.key,
            kind=query.kind,
            backend=self.name,
            frame=fetched.frame,
            started=started,
            first_row_at=fetched.first_row_at,
            received=fetched.received,
            sql=sql_text,
        )
