"""ADBC connections and statements for the arrow plane's loads and checks.

ADBC connections read the type catalogue when they connect, so they are
kept and reused — but checked (one round trip) before each load, so that a
server restart or a killed backend costs nothing more than a new connection.
A load can be cancelled from another thread (``close()``, an interrupt);
ADBC's own errors become BackendErrors naming the table. Small statements
(snapshots, counts, checks) run as plain queries, not COPY, so PostgreSQL may
run their scans in parallel.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from psycopg import sql
from psycopg.conninfo import make_conninfo

from fraiseql_nb.config import Config
from fraiseql_nb.errors import BackendError
from fraiseql_nb.pg.conninfo import mask_dsn, secrets_of
from fraiseql_nb.pg.db import error_text
from fraiseql_nb.pg.pool import connection_kwargs
from fraiseql_nb.planes._shield import shielded
from fraiseql_nb.planes.arrow.catalog import table_error
from fraiseql_nb.schema.model import FactTable

__all__ = [
    "BEGIN_READ",
    "Cancel",
    "Connections",
    "cursor",
    "failures",
    "in_snapshot",
    "plain_rows",
    "repeatable_read",
    "scalars",
]

BEGIN_READ = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
_CANCELED = "57014"
_USE_COPY = "adbc.postgresql.use_copy"
_FRESH_S = 1.0  # a connection given back this recently is used without a check


_kept = False


def _keep_interrupts() -> None:
    """Make a SIGINT during any ADBC call end in KeyboardInterrupt, and cancel the call.

    During a call on the main thread, ADBC replaces Python's SIGINT handler with
    its own, which hands the signal to a thread that cancels the statement — if
    the call is still running when that thread wakes. A short call (a catalogue
    read) is often over by then: nothing is cancelled, Python never hears of the
    signal, and the interrupt is lost while the load that follows runs to its
    end (one interrupt in four, landing at such a moment, in a test). ADBC's
    blocking calls all go through ``adbc_driver_manager.dbapi._blocking_call``;
    this replaces it with :func:`_interruptible`, which leaves Python's handler
    in place (so the interrupt is always raised) and cancels the running
    statement itself.
    """
    global _kept
    if _kept:
        return
    from adbc_driver_manager import dbapi

    dbapi._blocking_call = _interruptible
    _kept = True


def _interruptible(func: Any, args: Any, kwargs: Any, cancel: Any) -> Any:
    """``func(*args, **kwargs)``, cancelled (``cancel()``) when a SIGINT arrives meanwhile.

    Python's C-level handler writes each signal's number to the wakeup file
    descriptor: a watcher thread reads it and cancels the statement, whose
    failure, or Python's own pending KeyboardInterrupt, then ends the call.
    Whatever wakeup descriptor was set before gets every byte too.
    """
    if threading.current_thread() is not threading.main_thread():
        return func(*args, **kwargs)
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    try:
        previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    except ValueError:  # not the main interpreter's main thread after all
        os.close(read_end)
        os.close(write_end)
        return func(*args, **kwargs)
    done = threading.Event()

    def watch() -> None:
        while True:
            data = os.read(read_end, 512)
            if done.is_set() or not data:
                return
            if previous >= 0:
                with contextlib.suppress(OSError):
                    os.write(previous, data)
            if signal.SIGINT in data:
                with contextlib.suppress(Exception):
                    cancel()

    watcher = threading.Thread(target=watch, name="fraiseql-adbc-interrupt", daemon=True)
    watcher.start()
    try:
        return func(*args, **kwargs)
    finally:
        # The pending KeyboardInterrupt, if any, lands here: every step still runs.
        shielded(
            lambda: signal.set_wakeup_fd(previous),
            done.set,
            lambda: _quietly(os.write, write_end, b"\0"),
            lambda: watcher.join(5),
            lambda: _quietly(os.close, read_end),
            lambda: _quietly(os.close, write_end),
        )


def _quietly(call: Any, *args: Any) -> None:
    with contextlib.suppress(OSError):
        call(*args)


class Cancel:
    """Lets another thread stop a running load (``close()``, an interrupt)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cursors: list[Any] = []
        self.cancelled = False

    @contextlib.contextmanager
    def watching(self, cursor: Any) -> Iterator[None]:
        with self._lock:
            if self.cancelled:
                raise BackendError("the load was cancelled")
            self._cursors.append(cursor)
        try:
            yield
        finally:
            with self._lock:
                self._cursors.remove(cursor)

    def __call__(self) -> None:
        with self._lock:
            self.cancelled = True
            cursors = list(self._cursors)
        for cursor in cursors:
            with contextlib.suppress(Exception):
                cursor.adbc_cancel()


class Connections:
    """ADBC connections for loads: opened on demand, reused, checked before each use."""

    def __init__(self, dsn: str, config: Config) -> None:
        self._dsn = dsn
        self._config = config
        self._idle: list[tuple[Any, float]] = []  # connections, and when they were given back
        self._lock = threading.Lock()
        self._closed = False
        self.opened = 0

    @contextlib.contextmanager
    def connection(self) -> Iterator[Any]:
        """A working connection; it is dropped (not reused) when the work fails."""
        conn = self._take()
        try:
            yield conn
        except BaseException:
            _close(conn)
            raise
        with self._lock:
            if not self._closed:
                self._idle.append((conn, time.monotonic()))
                return
        _close(conn)  # closed while it worked

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            _close(conn)

    def _take(self) -> Any:
        while True:
            with self._lock:
                conn, since = self._idle.pop() if self._idle else (None, 0.0)
            if conn is None:
                return self._open()
            # Just used: alive (a round trip saved on the hot path of a captured change).
            if time.monotonic() - since < _FRESH_S or _alive(conn):
                return conn
            _close(conn)  # the server restarted or killed it: take another

    def _open(self) -> Any:
        import adbc_driver_postgresql.dbapi as adbc

        _keep_interrupts()

        # The row plane's libpq settings (read-only, statement timeout, time zone, TLS,
        # connect timeout), so both planes connect alike.
        settings = connection_kwargs(self._dsn, self._config, application_name="fraiseql-nb arrow")
        settings.pop("autocommit")
        try:
            # Autocommit: transactions are explicit (one per load), and nothing is held
            # open between loads (a TRUNCATE would wait on us).
            conn = adbc.connect(make_conninfo(self._dsn, **settings), autocommit=True)
        except Exception as exc:  # noqa: BLE001 - ADBC raises its own DB-API hierarchy
            detail = error_text(exc)
            raise BackendError(
                f"the analytics plane cannot connect: {detail}; dsn: {mask_dsn(self._dsn)}",
                secrets=secrets_of(self._dsn),
            ) from None
        self.opened += 1
        return conn


def _alive(conn: Any) -> bool:
    try:
        cur = conn.cursor()
        try:
            cur.execute("SELECT 1")
            cur.fetch_arrow_table()
        finally:
            cur.close()
    except Exception:  # noqa: BLE001 - any failure means: use another connection
        return False
    return True


def _close(conn: Any) -> None:
    with contextlib.suppress(Exception):
        conn.close()


@contextlib.contextmanager
def failures(
    fact: FactTable, dsn: str, config: Config, cancel: Cancel | None = None
) -> Iterator[None]:
    """ADBC's errors as BackendErrors (naming the table when it is gone or changed); a
    statement cancelled by an interrupt as the KeyboardInterrupt it was."""
    try:
        yield
    except BackendError:
        raise
    except Exception as exc:  # noqa: BLE001 - ADBC raises its own DB-API hierarchy
        detail = error_text(exc)
        # ADBC does not always carry the SQLSTATE of a cancelled COPY: read the message too.
        if getattr(exc, "sqlstate", None) == _CANCELED or "canceling statement" in detail:
            if cancel is not None and cancel.cancelled:
                raise BackendError(
                    f"the load of {fact.schema}.{fact.relation} was cancelled"
                ) from None
            if "statement timeout" in detail:
                raise BackendError(
                    f"loading {fact.schema}.{fact.relation} ran longer than the statement timeout"
                    f" ({config.connections.statement_timeout_ms} ms) and was cancelled; raise"
                    " [connections] statement_timeout_ms, or let backend='auto' answer on"
                    " PostgreSQL",
                    sqlstate=_CANCELED,
                ) from None
            # ADBC's SIGINT handler cancelled it on the server: the user interrupted.
            raise KeyboardInterrupt from None
        error = table_error(exc, fact, dsn, config)
        if error is None:
            error = BackendError(
                f"the analytics plane could not load {fact.schema}.{fact.relation}: {detail};"
                f" dsn: {mask_dsn(dsn)}",
                sqlstate=getattr(exc, "sqlstate", None),
                secrets=secrets_of(dsn),
            )
        raise error from None


@contextlib.contextmanager
def cursor(conn: Any, cancel: Cancel | None) -> Iterator[Any]:
    cur = conn.cursor()
    try:
        if cancel is None:
            yield cur
        else:
            with cancel.watching(cur):
                yield cur
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):
            cur.adbc_cancel()
        raise
    finally:
        # Closing a cursor of a broken connection may fail; nothing more to do then.
        with contextlib.suppress(Exception):
            cur.close()


@contextlib.contextmanager
def repeatable_read(cur: Any) -> Iterator[None]:
    # On failure no ROLLBACK: it would wait for a running COPY to drain. The connection
    # is discarded instead (Connections.connection), which ends the transaction.
    cur.execute(BEGIN_READ)
    yield
    cur.execute("COMMIT")


@contextlib.contextmanager
def in_snapshot(cur: Any, exported: str) -> Iterator[None]:
    """A read-only REPEATABLE READ transaction in another one's exported snapshot, so that
    several connections read the table at one instant."""
    cur.execute(BEGIN_READ)
    cur.execute(
        sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(exported)).as_string(None)
    )
    yield
    cur.execute("COMMIT")


def plain_rows(cur: Any, statement: str | sql.Composable) -> list[dict[str, Any]]:
    """The rows of a small query, run as a plain query: ADBC would wrap it in COPY, and
    PostgreSQL runs no COPY in parallel (the freshness checks' scans are)."""
    text = statement if isinstance(statement, str) else statement.as_string(None)
    cur.adbc_statement.set_options(**{_USE_COPY: "false"})
    try:
        cur.execute(text)
        return cur.fetch_arrow_table().to_pylist()
    finally:
        cur.adbc_statement.set_options(**{_USE_COPY: "true"})


def scalars(cur: Any, statement: str | sql.Composable) -> dict[str, Any]:
    """The one row of a small query (see :func:`plain_rows`)."""
    return plain_rows(cur, statement)[0]
