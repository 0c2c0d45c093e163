"""Loads that run while the session goes on: at most one per fact table, each cancellable.

Under ``backend="auto"``, a query whose columns are not loaded is answered
by PostgreSQL at once and its table starts loading here; later queries run
on the arrow plane once it is done. A :class:`Job` says how far it is (rows
received against the planner's estimate), and can be waited for
(``Session.prefetch(wait=True)``) or cancelled (``Session.close()``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from fraiseql_nb.planes.arrow.adbc import Cancel

__all__ = ["RETRY_AFTER_S", "Job", "Jobs"]

#: Seconds after a failed background load before another is tried, so that a failing
#: load is not retried by every query (the arrow and cluster planes alike).
RETRY_AFTER_S = 30.0


#: Bytes a second a load reads, until one has been measured in this process (the 2M-row
#: demo table loads at about 80 MB/s of Arrow data here).
_throughput = 80e6


class Job:
    """One background load of one fact table."""

    def __init__(
        self, key: str, relation: str, expected_rows: int, expected_bytes: int = 0
    ) -> None:
        self.key = key
        self.relation = relation
        self.expected_rows = expected_rows  # 0: unknown (a view)
        self.expected_bytes = expected_bytes
        self.rows = 0
        self.bytes = 0
        self.started = time.monotonic()
        self.error: BaseException | None = None
        self.cancel = Cancel()
        self.done = threading.Event()
        self.thread: threading.Thread | None = None

    def report(self, rows: int, nbytes: int) -> None:
        self.rows, self.bytes = rows, nbytes

    @property
    def percent(self) -> int:
        """How far the load is, 0-99 (the row estimate can be off: never 100 before done)."""
        return min(99, int(100 * self.rows / self.expected_rows)) if self.expected_rows else 0

    def eta_s(self) -> float:
        """Seconds until the load is expected to end: from its own pace once rows arrive,
        else from its estimated size at the pace of earlier loads."""
        elapsed = time.monotonic() - self.started
        if not self.expected_rows or self.rows >= self.expected_rows:
            return float("inf")  # no estimate of its size, or one proven low: cannot say
        if self.rows > 0:
            left = elapsed * max(self.expected_rows - self.rows, 0) / self.rows
        elif not self.expected_bytes:
            return float("inf")  # no row yet, and no pace to expect (a view)
        else:
            left = max(self.expected_bytes / _throughput - elapsed, 0.0)
        return left * 1.15  # and turning the rows into frames

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)


class Jobs:
    """The running background loads, by table key."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._failed: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def start(
        self,
        key: str,
        relation: str,
        expected_rows: int,
        work: Callable[[Job], None],
        expected_bytes: int = 0,
    ) -> Job:
        """Run ``work(job)`` on a thread of its own, unless a load of ``key`` already runs."""
        with self._lock:
            running = self._jobs.get(key)
            if running is not None:
                return running
            job = Job(key, relation, expected_rows, expected_bytes)
            self._jobs[key] = job

        def run() -> None:
            global _throughput
            try:
                work(job)
                with self._lock:
                    self._failed.pop(key, None)  # it worked: no earlier failure stands
                took = time.monotonic() - job.started
                if job.bytes > 50e6 and took > 0:
                    _throughput = job.bytes / took  # the pace of this machine and server
            except BaseException as exc:  # noqa: BLE001 - kept for whoever waits on the job
                job.error = exc
                # Polars aborts its work in every thread on a SIGINT (a kernel interrupt
                # meant for the cell): the next query starts the load again, no 30 s pause.
                if not isinstance(exc, KeyboardInterrupt):
                    with self._lock:
                        self._failed[key] = (time.monotonic(), str(exc) or type(exc).__name__)
            finally:
                with self._lock:
                    self._jobs.pop(key, None)
                job.done.set()

        job.thread = threading.Thread(target=run, name=f"fraiseql-load {relation}", daemon=True)
        job.thread.start()
        return job

    def running(self, key: str) -> Job | None:
        with self._lock:
            return self._jobs.get(key)

    def failure(self, key: str, within_s: float) -> str | None:
        """Why the last background load of ``key`` failed, if it did within ``within_s``."""
        with self._lock:
            failed = self._failed.get(key)
        if failed is None or time.monotonic() - failed[0] > within_s:
            return None
        return failed[1]

    def all(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def cancel_all(self, timeout: float = 10.0) -> None:
        """Stop every running load (on the server too) and wait for their threads."""
        jobs = self.all()
        for job in jobs:
            job.cancel()
        deadline = time.monotonic() + timeout
        for job in jobs:
            if job.thread is not None:
                job.thread.join(max(0.0, deadline - time.monotonic()))
