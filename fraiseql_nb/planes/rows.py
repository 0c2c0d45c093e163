"""The row plane (``wire``): entity queries streamed from PostgreSQL in bounded memory.

- :meth:`RowPlane.stream` yields one dict per document through psycopg's
  chunked ``Cursor.stream(size=chunk_size)``: memory is bounded by the chunk,
  and leaving the loop (break, exception, garbage collection) cancels the
  server-side query at once.
- :meth:`RowPlane.execute` builds a Polars DataFrame without one Python dict
  per row: documents arrive as text in large chunks, are joined into NDJSON
  and parsed in batches by Polars' NDJSON reader (dtypes from the schema) on
  a worker thread while the next batch is still arriving.
"""

from __future__ import annotations

import contextlib
import operator
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import polars as pl
import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from fraiseql_nb.config import Config
from fraiseql_nb.db import query_error
from fraiseql_nb.documents import loads
from fraiseql_nb.errors import BackendError, QueryError
from fraiseql_nb.planes._fetch import fetch_buffered, fetch_frame, pooled, raw_text
from fraiseql_nb.planes.frames import polars_schema
from fraiseql_nb.query.ir import RowQuery
from fraiseql_nb.result import Result, measured
from fraiseql_nb.schema.model import Entity
from fraiseql_nb.sql.params import Params
from fraiseql_nb.sql.rows import CURSOR_KEY, compile_row_query, selects_whole_document

__all__ = ["RowPlane"]

_FIRST = operator.itemgetter(0)


class RowPlane:
    """Runs row queries on a psycopg pool."""

    name = "wire"

    def __init__(self, pool: ConnectionPool, dsn: str, config: Config) -> None:
        self.pool = pool
        self._dsn = dsn
        self.config = config

    # ------------------------------------------------------------ streaming

    def stream(self, query: RowQuery, entity: Entity) -> Iterator[dict[str, Any]]:
        """One dict per document, in order; memory bounded by the chunk size."""
        params = Params()
        statement = compile_row_query(query, entity, params, as_text=True)
        with self._connection() as conn, raw_text(conn):
            rows = conn.cursor().stream(
                statement, params.values, size=self.config.wire_backend.chunk_size
            )
            try:
                docs = map(_FIRST, rows)
                while True:
                    try:
                        # C-level chain: no Python bytecode runs per document.
                        yield from map(orjson.loads, docs)
                        break
                    except orjson.JSONDecodeError as exc:
                        # A number orjson refuses (jsonb keeps 1e400): that one document
                        # is read by the standard library, then the fast chain goes on.
                        yield loads(exc.doc)
            except psycopg.Error as exc:
                raise self._error(exc) from None
            finally:
                # Closing psycopg's generator cancels the query if it is still running.
                rows.close()

    # ------------------------------------------------------------ execute

    def statement(self, query: RowQuery, entity: Entity) -> sql.Composable:
        """The statement :meth:`execute` sends for ``query``, values inlined, ready to paste
        (what metrics and ``explain`` show: one source, so they cannot drift apart)."""
        return compile_row_query(
            query, entity, Params(literal=True), as_text=True, with_cursor=_paged(query)
        )

    def execute(
        self,
        query: RowQuery,
        entity: Entity,
        *,
        next_page: Callable[[RowQuery], Result | None] | None = None,
        buffered: bool = False,
    ) -> Result:
        """The whole result as a DataFrame, with dtypes from the schema.

        ``buffered`` is the plain path (``use_wire_backend = false``, reported
        as ``postgres``): the same statement and DataFrame, fetched by one
        buffered psycopg query — libpq holds the whole result before the first row.
        """
        paged = _paged(query)
        # A whole-document selection carries its own id; others get a hidden one.
        cursor = "id" if selects_whole_document(query.selection, entity.fields) else CURSOR_KEY
        params = Params()
        statement = compile_row_query(query, entity, params, as_text=True, with_cursor=paged)
        shown = self.statement(query, entity)
        schema = polars_schema(query.selection)
        if paged and cursor == CURSOR_KEY:
            id_field = entity.field("id")
            numeric = id_field is not None and id_field.type.json == "number"
            schema[CURSOR_KEY] = pl.Int64 if numeric else pl.String
        started = time.perf_counter()
        sql_text = ""
        try:
            with self._connection() as conn:
                sql_text = shown.as_string(conn)
                fetch = fetch_buffered if buffered else fetch_frame
                fetched = fetch(conn, statement, params.values, schema)
        except psycopg.Error as exc:
            raise self._error(exc) from None
        backend = "postgres" if buffered else self.name
        frame = fetched.frame
        ttfr = fetched.first_row_at
        received = fetched.received
        last_id = None
        if paged:
            if frame.height:
                last_id = frame[cursor][-1]
            if cursor == CURSOR_KEY:
                frame = frame.drop(CURSOR_KEY)
        follow = None
        if paged and next_page is not None:
            # A short page is the last one: there is nothing after it.
            more = last_id is not None and frame.height == query.limit and query.limit > 0
            nxt = _after(query, last_id) if more else None
            follow = (lambda: next_page(nxt)) if nxt is not None else (lambda: None)
        return measured(
            key=query.key,
            kind="rows",
            backend=backend,
            frame=frame,
            started=started,
            first_row_at=ttfr,
            received=received,
            sql=sql_text,
            next_page=follow,
            single=query.by_id is not None,
        )

    # ------------------------------------------------------------ helpers

    def _connection(self) -> contextlib.AbstractContextManager[psycopg.Connection[Any]]:
        return pooled(self.pool, self._dsn, self.config)

    def _error(self, exc: BaseException) -> BackendError | QueryError:
        return query_error(exc, self._dsn, timeout_ms=self.config.wire_backend.statement_timeout_ms)


def _after(query: RowQuery, last_id: Any) -> RowQuery:
    from dataclasses import replace

    return replace(query, after=last_id, offset=None)


def _paged(query: RowQuery) -> bool:
    """A list query with a limit pages by keyset: its statement also returns a cursor."""
    return query.limit is not None and query.by_id is None
