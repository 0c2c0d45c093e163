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
import threading
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

from fraiseql_nb.config import Config
from fraiseql_nb.errors import BackendError
from fraiseql_nb.ops import budget, progress
from fraiseql_nb.pg import deadline
from fraiseql_nb.pg.conninfo import mask_dsn
from fraiseql_nb.pg.pool import own_timeout, probe, set_timeout
from fraiseql_nb.planes._shield import shielded
from fraiseql_nb.planes.frames import parse_ndjson

__all__ = ["Fetched", "fetch_buffered", "fetch_frame", "pooled", "raw_cursor", "run_pooled"]

_BATCH_ROWS = 20_000  # documents handed to the parser at a time
_MAX_PENDING = 2  # batches waiting for the parser: bounds memory if parsing lags
_CHUNK = 2048  # rows per round trip
_BUFFERED_CHUNK = _BATCH_ROWS  # the plain path: one round trip per parsed batch
_FIRST_WAIT_S = 1.0  # then check the database answers at all
_STREAMED = "fraiseql_streamed"  # set on an error raised after rows had arrived
T = TypeVar("T")


@contextlib.contextmanager
def pooled(pool: ConnectionPool, dsn: str, config: Config) -> Iterator[psycopg.Connection[Any]]:
    """A pooled connection; the pool discards it if a failure left it unusable.

    A pool that cannot reconnect (server down, database dropped) would only
    time out after ``pool_timeout_s``: when no connection comes within a
    second, one direct connection tells a dead database (its error, at once)
    from a busy pool (wait the rest of the timeout).
    """
    wire = config.connections
    limit = deadline.current()
    wait = wire.pool_timeout_s
    if limit is not None:
        limit.starts()
        wait = min(wait, max(limit.remaining_s(), 0.001))  # a request waits its time at most
    first = min(_FIRST_WAIT_S, wait)
    try:
        conn = _checkout(pool, first)
    except PoolTimeout:
        probe(dsn, config)
        conn = _wait_for(pool, dsn, config, wait - first)
    try:
        conn = _timed(pool, conn, limit, wire.statement_timeout_ms)
    except BaseException:
        _give_back(pool, conn)
        raise
    try:
        if limit is None:
            yield conn
        else:
            with _within(conn, limit, wire.statement_timeout_ms):
                yield conn
    finally:
        _give_back(pool, conn)


def _timed(
    pool: ConnectionPool,
    conn: psycopg.Connection[Any],
    limit: deadline.Deadline | None,
    configured: int,
) -> psycopg.Connection[Any]:
    """``conn`` with the statement_timeout its use needs (a request's time left, or the
    configured one back); a connection found dead meanwhile is swapped for another once."""
    for attempt in (1, 2):
        try:
            if limit is None:
                own_timeout(conn)
            else:
                limit.starts()
                set_timeout(conn, limit.statement_timeout_ms(configured))
            return conn
        except psycopg.errors.QueryCanceled:
            if limit is not None:  # the few ms left ran out during the set itself
                raise limit.exceeded() from None
            raise
        except psycopg.OperationalError:
            if attempt == 2 or not lost(conn):
                raise
            _give_back(pool, conn)  # the pool drops a broken connection
            conn = _checkout(pool, configured / 1000 if configured > 0 else 30.0)
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _within(
    conn: psycopg.Connection[Any], limit: deadline.Deadline, configured: int
) -> Iterator[None]:
    """Run a request's statement on ``conn`` (its timeout set to what the request had
    left, :func:`_timed`), where the request's cancel reaches it."""
    timeout = limit.statement_timeout_ms(configured)
    try:
        with limit.running(conn):
            yield
    except psycopg.errors.QueryCanceled as exc:
        if limit.cancelled:
            raise deadline.RequestTimeLimitError(
                "the client went away; its running statement was cancelled"
            ) from None
        cut = configured <= 0 or timeout < configured
        if cut and "statement timeout" in str(exc):
            raise limit.exceeded() from None
        raise


def _checkout(pool: ConnectionPool, timeout: float) -> psycopg.Connection[Any]:
    """``pool.getconn(timeout)``, safe to interrupt.

    psycopg_pool queues a client that must wait and forgets to dequeue it when
    a KeyboardInterrupt ends the wait: the next connection given back goes to
    that client and is lost for good, so one interrupt at the wrong moment
    leaves the session waiting ``pool_timeout_s`` on every query. A ready
    connection is taken at once; otherwise the wait runs on a short-lived
    thread, and a connection arriving after an interrupt goes back to the pool.
    """
    if pool.get_stats().get("pool_available", 0) > 0:
        with contextlib.suppress(PoolTimeout):
            return pool.getconn(timeout=0.001)  # taken at once, or someone was quicker
    lock = threading.Lock()
    arrived = threading.Event()
    outcome: list[Any] = []  # [connection or None, exception or None]
    abandoned = False

    def wait() -> None:
        try:
            got: tuple[Any, BaseException | None] = (pool.getconn(timeout=timeout), None)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            got = (None, exc)
        with lock:
            if abandoned:
                if got[0] is not None:
                    _give_back(pool, got[0])
                return
            outcome.extend(got)
            arrived.set()

    threading.Thread(target=wait, name="fraiseql-checkout", daemon=True).start()
    try:
        arrived.wait()
    except KeyboardInterrupt:
        with lock:
            abandoned = True
            if outcome and outcome[0] is not None:
                _give_back(pool, outcome[0])
        raise
    conn, error = outcome
    if error is not None:
        raise error
    return conn  # type: ignore[no-any-return]


def _give_back(pool: ConnectionPool, conn: psycopg.Connection[Any]) -> None:
    """Return ``conn`` to the pool even when an interrupt lands meanwhile: a pool that
    loses a connection per interrupt is soon empty."""
    tries = 0

    def put() -> None:
        nonlocal tries
        tries += 1
        try:
            pool.putconn(conn)
        except ValueError:
            if tries == 1:
                raise  # not this pool's: as before
            # An earlier try was interrupted after the pool had taken it back.

    shielded(put)


def run_pooled(
    pool: ConnectionPool, dsn: str, config: Config, work: Callable[[psycopg.Connection[Any]], T]
) -> T:
    """``work(conn)`` on a pooled connection, and once more on another if the first
    died under it before its first row (a restarted server, a killed backend):
    the statements are read-only, so running one again is safe, and the pool
    skips checking connections used a moment ago (see :mod:`fraiseql_nb.pg.pool`).

    A connection lost after rows arrived is not retried: psycopg closes one
    whose cancel was interrupted, and running an interrupted query again from
    the start would undo the interrupt."""
    for attempt in (1, 2):
        with pooled(pool, dsn, config) as conn:
            try:
                return work(conn)
            except psycopg.OperationalError as exc:
                if attempt == 2 or not lost(conn) or getattr(exc, _STREAMED, False):
                    raise
    raise AssertionError("unreachable")


def _wait_for(
    pool: ConnectionPool, dsn: str, config: Config, timeout: float
) -> psycopg.Connection[Any]:
    try:
        return _checkout(pool, max(timeout, 0.001))
    except PoolTimeout:
        wire = config.connections
        raise BackendError(
            f"no database connection became free within {wire.pool_timeout_s:g} s: all"
            f" {wire.pool_size} of the pool are busy (raise [connections] pool_size or"
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
    *,
    key: str = "the query",
    size: int = _CHUNK,
) -> Fetched:
    """Run a statement returning one JSON text document per row; parse them into a frame.

    What the batches hold is checked against the request's result budget after
    each one (:mod:`fraiseql_nb.ops.budget`): past it, the fetch stops and closing
    the stream cancels the statement on the server. The session counts the
    finished result.
    """
    first_row_at: float | None = None
    received = 0
    guard = budget.current()
    parser = _BatchParser(schema)
    try:
        rows = raw_cursor(conn).stream(statement, params, binary=True, size=size)
        try:
            first = list(itertools.islice(rows, 1))
            first_row_at = time.perf_counter()
            batch = first + list(itertools.islice(rows, _BATCH_ROWS - 1))
            count = 0
            while batch:
                received += parser.submit([r[0] for r in batch])
                count += len(batch)
                if guard is not None:
                    guard.check(key, parser.held, count)
                progress.report("fetch", count, received)
                batch = list(itertools.islice(rows, _BATCH_ROWS))
        except psycopg.OperationalError as exc:
            if first_row_at is not None:
                setattr(exc, _STREAMED, True)
            raise
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
    *,
    key: str = "the query",
) -> Fetched:
    """:func:`fetch_frame` in a few large round trips, as a plain buffered query would
    (the path with the wire plane off), yet bounded by the result budget as it arrives:
    one ``execute()`` would have libpq hold the whole result before the first row."""
    return fetch_frame(conn, statement, params, schema, key=key, size=_BUFFERED_CHUNK)


class _BatchParser:
    """Parses NDJSON batches with Polars on a worker thread (Polars releases the GIL).

    The first batch waits: if it is the only one, it is parsed on the caller's
    thread and no worker is started (a thread costs ~1 ms, a 5-row parse ~0.1 ms).
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self._pool: ThreadPoolExecutor | None = None
        self._first: bytes | None = None
        self._futures: list[tuple[int, Future[pl.DataFrame]]] = []
        self._done: list[pl.DataFrame] = []
        self._done_bytes = 0

    @property
    def held(self) -> int:
        """Bytes held now: frames parsed, and documents waiting for the parser."""
        waiting = sum(size for size, _ in self._futures) + len(self._first or b"")
        return self._done_bytes + waiting

    def submit(self, docs: list[bytes]) -> int:
        """Queue documents for parsing; return their size in bytes."""
        data = b"\n".join(docs)
        if self._pool is None and self._first is None:
            self._first = data
            return len(data)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fraiseql-ndjson")
            assert self._first is not None
            first = self._first
            self._futures.append((len(first), self._pool.submit(parse_ndjson, first, self.schema)))
            self._first = None
        self._futures.append((len(data), self._pool.submit(parse_ndjson, data, self.schema)))
        while len(self._futures) > _MAX_PENDING or (self._futures and self._futures[0][1].done()):
            self._collect()
        return len(data)

    def _collect(self) -> None:
        frame = self._futures.pop(0)[1].result()
        self._done.append(frame)
        self._done_bytes += frame.estimated_size()

    def result(self) -> pl.DataFrame:
        if self._first is not None:
            self._done.append(parse_ndjson(self._first, self.schema))
            self._first = None
        while self._futures:
            self._collect()
        if not self._done:
            return pl.DataFrame(schema=self.schema)
        if len(self._done) == 1:
            return self._done[0]
        return pl.concat(self._done, how="vertical", rechunk=True)

    def close(self) -> None:
        for _, f in self._futures:
            f.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
