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
import itertools
import operator
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import orjson
import polars as pl
import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from fraiseql_nb.config import Config
from fraiseql_nb.conninfo import mask_dsn
from fraiseql_nb.db import query_error
from fraiseql_nb.errors import BackendError
from fraiseql_nb.planes.frames import parse_ndjson, polars_schema
from fraiseql_nb.query.ir import RowQuery
from fraiseql_nb.result import Result
from fraiseql_nb.schema.model import Entity
from fraiseql_nb.sql.params import Params
from fraiseql_nb.sql.rows import CURSOR_KEY, compile_row_query, selects_whole_document
from fraiseql_nb.telemetry import QueryMetrics

__all__ = ["RowPlane"]

_BATCH_ROWS = 20_000  # documents handed to the parser at a time
_IDLE = psycopg.pq.TransactionStatus.IDLE
_FIRST = operator.itemgetter(0)
_MAX_PENDING = 2  # batches waiting for the parser: bounds memory if parsing lags
_EXECUTE_CHUNK = 2048  # rows per round trip when building a DataFrame


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
        with self._connection() as conn, _raw_text(conn):
            rows = conn.cursor().stream(
                statement, params.values, size=self.config.wire_backend.chunk_size
            )
            try:
                # C-level chain: no Python bytecode runs per document.
                yield from map(orjson.loads, map(_FIRST, rows))
            except psycopg.Error as exc:
                raise self._error(exc) from None
            finally:
                # Closing psycopg's generator cancels the query if it is still running.
                rows.close()

    # ------------------------------------------------------------ execute

    def execute(
        self,
        query: RowQuery,
        entity: Entity,
        *,
        next_page: Callable[[RowQuery], Result | None] | None = None,
    ) -> Result:
        """The whole result as a DataFrame, with dtypes from the schema."""
        paged = query.limit is not None and query.by_id is None
        # A whole-document selection carries its own id; others get a hidden one.
        cursor = "id" if selects_whole_document(query.selection, entity.fields) else CURSOR_KEY
        params = Params()
        statement = compile_row_query(query, entity, params, as_text=True, with_cursor=paged)
        # What metrics show: the same statement with its values inlined, ready to paste.
        shown = compile_row_query(
            query, entity, Params(literal=True), as_text=True, with_cursor=paged
        )
        schema = polars_schema(query.selection)
        if paged and cursor == CURSOR_KEY:
            schema[CURSOR_KEY] = (
                pl.Int64
                if entity.field("id") and entity.field("id").type.json == "number"
                else pl.String
            )  # type: ignore[union-attr]
        started = time.perf_counter()
        ttfr: float | None = None
        received = 0
        parser = _BatchParser(schema)
        sql_text = ""
        try:
            with self._connection() as conn:
                sql_text = shown.as_string(conn)
                with _raw_text(conn):
                    rows = conn.cursor().stream(statement, params.values, size=_EXECUTE_CHUNK)
                    try:
                        first = list(itertools.islice(rows, 1))
                        ttfr = time.perf_counter()
                        batch = first + list(itertools.islice(rows, _BATCH_ROWS - 1))
                        while batch:
                            received += parser.submit([r[0] for r in batch])
                            batch = list(itertools.islice(rows, _BATCH_ROWS))
                    finally:
                        rows.close()  # cancels the query if it is cut short
            frame = parser.result()
        except psycopg.Error as exc:
            raise self._error(exc) from None
        finally:
            parser.close()
        last_id = None
        if paged:
            if frame.height:
                last_id = frame[cursor][-1]
            if cursor == CURSOR_KEY:
                frame = frame.drop(CURSOR_KEY)
        done = time.perf_counter()
        metrics = QueryMetrics(
            backend=self.name,
            kind="rows",
            root_field=query.key,
            duration_ms=(done - started) * 1e3,
            ttfr_ms=((ttfr or done) - started) * 1e3,
            rows=frame.height,
            bytes=received,
            result_bytes=int(frame.estimated_size()),
            sql=sql_text,
        )
        follow = None
        if paged and next_page is not None:
            # A short page is the last one: there is nothing after it.
            more = last_id is not None and frame.height == query.limit and query.limit > 0
            nxt = _after(query, last_id) if more else None
            follow = (lambda: next_page(nxt)) if nxt is not None else (lambda: None)
        return Result(
            key=query.key,
            kind="rows",
            backend=self.name,
            metrics=metrics,
            frame=frame,
            next_page=follow,
        )

    # ------------------------------------------------------------ helpers

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection; the pool discards it if a failure left it unusable."""
        try:
            conn = self.pool.getconn()
        except PoolTimeout:
            wire = self.config.wire_backend
            raise BackendError(
                f"no database connection became free within {wire.pool_timeout_s:g} s: all"
                f" {wire.pool_size} of the pool are busy (raise [wire_backend] pool_size or"
                " pool_timeout_s); dsn: " + mask_dsn(self._dsn)
            ) from None
        try:
            yield conn
        finally:
            self.pool.putconn(conn)

    def _error(self, exc: BaseException) -> BackendError:
        return query_error(exc, self._dsn, timeout_ms=self.config.wire_backend.statement_timeout_ms)


@contextlib.contextmanager
def _raw_text(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """Receive text as undecoded bytes.

    With client_encoding SQL_ASCII the server sends its UTF-8 text unchanged
    and psycopg returns bytes: documents go to orjson or the NDJSON parser
    without a decode (and, for NDJSON, a re-encode) in Python. The pool's
    reset restores the encoding should this exit abnormally.
    """
    conn.execute("SET client_encoding = 'SQL_ASCII'")
    try:
        yield
    finally:
        if not conn.closed and conn.info.transaction_status == _IDLE:
            conn.execute("RESET client_encoding")


def _after(query: RowQuery, last_id: Any) -> RowQuery:
    from dataclasses import replace

    return replace(query, after=last_id, offset=None)


class _BatchParser:
    """Parses NDJSON batches with Polars on a worker thread (Polars releases the GIL)."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fraiseql-ndjson")
        self._futures: list[Future[pl.DataFrame]] = []
        self._done: list[pl.DataFrame] = []

    def submit(self, docs: list[bytes]) -> int:
        """Queue documents for parsing; return their size in bytes."""
        data = b"\n".join(docs)
        self._futures.append(self._pool.submit(parse_ndjson, data, self.schema))
        while len(self._futures) > _MAX_PENDING:
            self._done.append(self._futures.pop(0).result())
        return len(data)

    def result(self) -> pl.DataFrame:
        self._done += [f.result() for f in self._futures]
        self._futures = []
        if not self._done:
            return pl.DataFrame(schema=self.schema)
        return pl.concat(self._done, how="vertical", rechunk=True)

    def close(self) -> None:
        for f in self._futures:
            f.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
