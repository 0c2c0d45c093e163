"""What one HTTP request may spend in time, and whether its client still waits for it.

``fraiseql-nb serve`` runs each request inside :func:`within` (``[server]
max_request_s``): every root field of the request shares one deadline. The
psycopg planes give each statement a ``statement_timeout`` of what is left
(:meth:`Deadline.statement_timeout_ms`, never more than the configured one),
so a costly request ends when its time does, on the server too; a client that
disconnects has the request's running statement cancelled
(:meth:`Deadline.cancel`) and no further root field started. Outside a
request (a notebook, the Python API) there is no deadline: only the statement
timeout applies.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from fraiseql_nb.errors import QueryError

__all__ = ["Deadline", "RequestTimeLimitError", "current", "within"]

_LEAST_S = 0.05  # a statement is not started with less time than this left


class RequestTimeLimitError(QueryError):
    """The request ran past ``[server] max_request_s``, or its client went away; its
    running statement was cancelled."""


class Deadline:
    """The end of one request's time, and the statements it runs now."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds
        self.cancelled = False  # the client went away
        self._lock = threading.Lock()
        self._running: set[Any] = set()  # psycopg connections with a statement of ours

    def remaining_s(self) -> float:
        return self.ends - time.monotonic()

    def check(self, key: str | None = None) -> None:
        """Raise :class:`RequestTimeLimitError` when no time is left or the client left
        (``key``: the root field about to run, for the message)."""
        if self.cancelled:
            raise RequestTimeLimitError("the client went away; the request stopped")
        if self.remaining_s() <= 0:
            raise self.exceeded(key)

    def exceeded(self, key: str | None = None) -> RequestTimeLimitError:
        where = f" (at {key})" if key else ""
        return RequestTimeLimitError(
            f"the request ran past its time{where}, [server] max_request_s ="
            f" {self.seconds:g} s for all its root fields together, and was cancelled; narrow"
            " the query (a limit:, a filter), split it into requests, or raise"
            " [server] max_request_s"
        )

    def starts(self) -> None:
        """Before a statement: too little time left to run one is the request's end."""
        if self.cancelled or self.remaining_s() < _LEAST_S:
            self.check()
            raise self.exceeded()

    def statement_timeout_ms(self, configured_ms: int) -> int:
        """The timeout for a statement starting now: what is left, at most ``configured_ms``
        (0 in PostgreSQL means none: a configured 0 gives what is left), at least 1 ms.
        Beyond ten seconds it is whole seconds (ending the request up to a second early):
        a pooled connection that has that timeout already needs no round trip to set it."""
        left = max(1, int(self.remaining_s() * 1000))
        if left > 10_000:
            left -= left % 1000
        return left if configured_ms <= 0 else min(configured_ms, left)

    @contextlib.contextmanager
    def running(self, conn: Any) -> Iterator[None]:
        """While ``conn`` runs a statement of this request: :meth:`cancel` reaches it."""
        with self._lock:
            self._running.add(conn)
            cancelled = self.cancelled
        try:
            if cancelled:
                raise RequestTimeLimitError("the client went away; the request stopped")
            yield
        finally:
            with self._lock:
                self._running.discard(conn)

    def cancel(self) -> None:
        """The client went away: cancel the running statements (a blocking call: run it on
        a thread), and start no other."""
        # Under the lock: a connection cannot leave running() (and go back to the pool, to
        # another request's statement) while its cancel is on the way.
        with self._lock:
            self.cancelled = True
            for conn in self._running:
                with contextlib.suppress(Exception):  # finished or closed: nothing to do
                    conn.cancel_safe(timeout=5.0)


_current: ContextVar[Deadline | None] = ContextVar("fraiseql_nb_deadline", default=None)


def current() -> Deadline | None:
    """The deadline of the request being answered on this thread, if any."""
    return _current.get()


@contextlib.contextmanager
def within(deadline: Deadline) -> Iterator[Deadline]:
    """Run the block under ``deadline``."""
    token = _current.set(deadline)
    try:
        yield deadline
    finally:
        _current.reset(token)
