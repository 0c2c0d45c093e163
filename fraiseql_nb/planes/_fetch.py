"""Shared I/O of the psycopg planes: pooled connections, and NDJSON results as DataFrames.

Both the row plane (entity documents) and the pushdown plane (one JSON
document per output row) receive their results the same way: text fetched as
undecoded bytes in large chunks, joined into NDJSON and parsed into a
DataFrame of a known schema by :func:`fraiseql_nb.planes.frames.parse_ndjson`
on a worker thread while the next batch is still arriving.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import polars as pl
import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from fraiseql_nb import progress
from fraiseql_nb.config import Config
from fraiseql_nb.conninfo import mask_dsn
from fraiseql_nb.errors import BackendError
from fraiseql_nb.planes.frames import parse_ndjson
from fraiseql_nb.pool import probe

__all__ = ["Fetched", "fetch_buffered", "fetch_frame", "pooled", "raw_text"]

_BATCH_ROWS = 20_000  # documents handed to the parser at a time
_MAX_PENDING = 2  # batches waiting for the parser: bounds memory if parsing lags
_CHUNK = 2048  # rows per round trip
_IDLE = psycopg.pq.TransactionStatus.IDLE
_FIRST_WAIT_S = 1.0  # then check the database answers at all


@contextlib.contextmanager
def pooled(pool: ConnectionPool, dsn: str, config: Config) -> Iterator[psycopg.Connection[Any]]:
    """A pooled connection; the pool discards it if a failure left it unusable.

    A pool that cannot reconnect (server down, database dropped) would only
    time out after ``pool_timeout_s``: when no connection comes within a
    second, one direct connection tells a dead database (its error, at once)
    from a busy pool (wait the rest of the timeout).
    """
    wire = config.wire_backend
    first = min(_FIRST_WAIT_S, wire.pool_timeout_s)
    try:
        conn = pool.getconn(timeout=first)
    except PoolTimeout:
        probe(dsn, config)
        conn = _wait_for(pool, dsn, config, wire.pool_timeout_s - first)
    try:
        yield conn
    finally:
        pool.putconn(conn)


def _wait_for(
    pool: ConnectionPool, dsn: str, config: Config, timeout: float
) -> psycopg.Connection[Any]:
    try:
        return pool.getconn(timeout=max(timeout, 0.001))
    except PoolTimeout:
        wire = config.wire_backend
        raise BackendError(
            f"no database connection became free within {wire.pool_timeout_s:g} s: all"
            f" {wire.pool_size} of the pool are busy (raise [wire_backend] pool_size or"
            " pool_timeout_s); dsn: " + mask_dsn(dsn)
        ) from None


@contextlib.contextmanager
def raw_text(conn: psycopg.Connection[Any]) -> Iterator[None]:
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


@dataclass
class Fetched:
    """A fetched result: the frame, when its first row came, bytes received."""

    frame: pl.DataFrame
    first_row_at: float
    received: int


def fetch_frame(
    conn: psycopg.Connection[Any],
    statement: sql.Composable,
    params: dict[str, Any],
    schema: dict[str, Any],
) -> Fetched:
    """Run a statement returning one JSON text document per row; parse them into a frame."""
    first_row_at: float | None = None
    received = 0
    parser = _BatchParser(schema)
    try:
        with raw_text(conn):
            rows = conn.cursor().stream(statement, params, size=_CHUNK)
            try:
                first = list(itertools.islice(rows, 1))
                first_row_at = time.perf_counter()
                batch = first + list(itertools.islice(rows, _BATCH_ROWS - 1))
                count = 0
                while batch:
                    received += parser.submit([r[0] for r in batch])
                    count += len(batch)
                    progress.report("fetch", count, received)
                    batch = list(itertools.islice(rows, _BATCH_ROWS))
            finally:
                rows.close()  # cancels the query if it is cut short
        frame = parser.result()
    finally:
        parser.close()
    return Fetched(frame=frame, first_row_at=first_row_at or time.perf_counter(), received=received)


def fetch_buffered(
    conn: psycopg.Connection[Any],
    statement: sql.Composable,
    params: dict[str, Any],
    schema: dict[str, Any],
) -> Fetched:
    """:func:`fetch_frame` without streaming: one plain query, libpq buffering it all."""
    with raw_text(conn):
        docs = [r[0] for r in conn.execute(statement, params).fetchall()]
    first_row_at = time.perf_counter()
    data = b"\n".join(docs)
    frame = parse_ndjson(data, schema) if docs else pl.DataFrame(schema=schema)
    return Fetched(frame=frame, first_row_at=first_row_at, received=len(data))


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
