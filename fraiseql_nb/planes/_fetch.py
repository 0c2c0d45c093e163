"""Shared I/O of the psycopg planes: pooled connections, and NDJSON results as DataFrames.

Both the row plane (entity documents) and the pushdown plane (one JSON
document per output row) receive their results the same way: text fetched as
undecoded bytes in large chunks, joined into NDJSON and parsed into a
DataFrame of a known schema by :func:`fraiseql_nb.planes.frames.parse_ndjson`
— on a worker thread while the next batch is still arriving when there is
more than one batch, at once otherwise (a small result pays for no thread).
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import polars as pl
import psycopg
from psycopg import sql
from psycopg.types.string import ByteaBinaryLoader
from psycopg_pool import ConnectionPool, PoolTimeout

from fraiseql_nb import progress
from fraiseql_nb.config import Config
from fraiseql_nb.conninfo import mask_dsn
from fraiseql_nb.errors import BackendError
from fraiseql_nb.planes.frames import parse_ndjson
from fraiseql_nb.pool import probe

__all__ = ["Fetched", "fetch_buffered", "fetch_frame", "pooled", "raw_cursor", "run_pooled"]

_BATCH_ROWS = 20_000  # documents handed to the parser at a time
_MAX_PENDING = 2  # batches waiting for the parser: bounds memory if parsing lags
_CHUNK = 2048  # rows per round trip
_FIRST_WAIT_S = 1.0  # then check the database answers at all
T = TypeVar("T")


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


def run_pooled(
    pool: ConnectionPool, dsn: str, config: Config, work: Callable[[psycopg.Connection[Any]], T]
) -> T:
    """``work(conn)`` on a pooled connection, and once more on another if the first
    died under it (a restarted server, a killed backend): the statements are
    read-only, so running one again is safe, and the pool skips checking
    connections used a moment ago (see :mod:`fraiseql_nb.pool`)."""
    for attempt in (1, 2):
        with pooled(pool, dsn, config) as conn:
            try:
                return work(conn)
            except psycopg.OperationalError:
                if attempt == 2 or not lost(conn):
                    raise
    raise AssertionError("unreachable")


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


def raw_cursor(conn: psycopg.Connection[Any]) -> psycopg.Cursor[Any]:
    """A cursor receiving text as undecoded bytes.

    Results come in binary format, where a ``text`` value is its UTF-8 bytes,
    and psycopg's (C) bytea loader hands them over as they are: documents go to
    orjson or the NDJSON parser without a decode (and, for NDJSON, a re-encode)
    in Python, and without a statement to change the session's encoding.
    """
    cur = conn.cursor(binary=True)
    cur.adapters.register_loader("text", ByteaBinaryLoader)
    return cur


def lost(conn: psycopg.Connection[Any]) -> bool:
    """True when ``conn`` died under a statement (server restarted, backend killed)."""
    return bool(conn.broken or conn.closed)


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
        rows = raw_cursor(conn).stream(statement, params, binary=True, size=_CHUNK)
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
    docs = [r[0] for r in raw_cursor(conn).execute(statement, params, binary=True).fetchall()]
    first_row_at = time.perf_counter()
    data = b"\n".join(docs)
    frame = parse_ndjson(data, schema) if docs else pl.DataFrame(schema=schema)
    return Fetched(frame=frame, first_row_at=first_row_at, received=len(data))


class _BatchParser:
    """Parses NDJSON batches with Polars on a worker thread (Polars releases the GIL).

    The first batch waits: if it is the only one, it is parsed on the caller's
    thread and no worker is started (a thread costs ~1 ms, a 5-row parse ~0.1 ms).
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self._pool: ThreadPoolExecutor | None = None
        self._first: bytes | None = None
        self._futures: list[Future[pl.DataFrame]] = []
        self._done: list[pl.DataFrame] = []

    def submit(self, docs: list[bytes]) -> int:
        """Queue documents for parsing; return their size in bytes."""
        data = b"\n".join(docs)
        if self._pool is None and self._first is None:
            self._first = data
            return len(data)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fraiseql-ndjson")
            assert self._first is not None
            self._futures.append(self._pool.submit(parse_ndjson, self._first, self.schema))
            self._first = None
        self._futures.append(self._pool.submit(parse_ndjson, data, self.schema))
        while len(self._futures) > _MAX_PENDING:
            self._done.append(self._futures.pop(0).result())
        return len(data)

    def result(self) -> pl.DataFrame:
        if self._first is not None:
            self._done.append(parse_ndjson(self._first, self.schema))
            self._first = None
        self._done += [f.result() for f in self._futures]
        self._futures = []
        if not self._done:
            return pl.DataFrame(schema=self.schema)
        if len(self._done) == 1:
            return self._done[0]
        return pl.concat(self._done, how="vertical", rechunk=True)

    def close(self) -> None:
        for f in self._futures:
            f.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
