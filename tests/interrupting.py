"""Shared by the tests that interrupt a query: our statements seen on the server, waiting
for a moment (bounded), a SIGINT sent as Jupyter sends it once that moment comes, and a
pool that has taken every connection back."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

import psycopg

import fraiseql_nb as fq
from fraiseql_nb.pg.pool import APPLICATION_NAME


def active(dsn: str, like: str = "%") -> list[str]:
    """Our statements running on the server (any plane's; not this probe)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT query FROM pg_stat_activity WHERE application_name LIKE %s"
            " AND state = 'active' AND datname = current_database() AND query LIKE %s",
            (APPLICATION_NAME + "%", like),
        ).fetchall()
    return [r[0] for r in rows]


def until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the query never reached the moment to interrupt"
        time.sleep(0.02)


class Interrupter:
    """Sends SIGINT to this process once ``condition`` holds (checked on its own thread)."""

    def __init__(self, condition: Callable[[], bool]) -> None:
        self.sent_at: float | None = None
        self.error: BaseException | None = None
        self._condition = condition
        self._thread = threading.Thread(target=self._run, name="test-interrupter", daemon=True)

    def _run(self) -> None:
        try:
            until(self._condition)
        except BaseException as exc:  # noqa: BLE001 - reported by delay(), on the test's thread
            self.error = exc
            return
        self.sent_at = time.monotonic()
        os.kill(os.getpid(), signal.SIGINT)

    def __enter__(self) -> Interrupter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join(timeout=35)

    def delay(self) -> float:
        if self.error is not None:
            raise self.error
        assert self.sent_at is not None, "no interrupt was sent"
        return time.monotonic() - self.sent_at


def pool_settles(s: fq.Session) -> None:
    """Every connection back in the pool (a discarded one is replaced in the background)."""
    until(lambda: s.pool_stats()["active"] == 0, timeout=5)
