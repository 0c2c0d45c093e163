"""How much memory the buffered results of one request may hold: ``[limits] max_result_mb``.

A row query without ``limit`` on a large view, or a window over a big fact
table, would otherwise build one DataFrame of everything and take the kernel
down with it. The session opens a :class:`ResultBudget` for each request (all
its root fields together) with :func:`budgeted`; the planes charge what they
hold while they fetch (:meth:`ResultBudget.check`, after every batch, so a
runaway stops within one batch of the limit and its statement is cancelled
by the fetch's own cleanup) and what they keep (:meth:`ResultBudget.keep`).
Nothing is charged outside a budget, and :meth:`Session.stream` never opens
one: it holds one chunk at a time.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

from fraiseql_nb.errors import QueryError

__all__ = ["ResultBudget", "ResultLimitError", "auto_result_mb", "budgeted", "current"]

_MB = 1024 * 1024
_AUTO_CAP_MB = 2048  # past this a grid or a .df is not the tool: stream() is


class ResultLimitError(QueryError):
    """A result grew past ``[limits] max_result_mb``; its statement was cancelled.

    Attributes:
        rows: rows received before it stopped.
        held_bytes: what the results held then.
        limit_bytes: the limit.
    """

    def __init__(self, message: str, *, rows: int, held_bytes: int, limit_bytes: int) -> None:
        super().__init__(message)
        self.rows = rows
        self.held_bytes = held_bytes
        self.limit_bytes = limit_bytes


_MEMORY_READ_EVERY_S = 60.0  # a container's limit may change, rarely: read it again then
_memory: tuple[float, int] | None = None  # (read at, MB)


def machine_memory_mb() -> int:
    """This machine's memory, or the container's limit when it has a lower one (read at
    most once a minute: two file reads cost more than the rest of a small query)."""
    global _memory
    now = time.monotonic()
    if _memory is not None and now - _memory[0] < _MEMORY_READ_EVERY_S:
        return _memory[1]
    _memory = (now, _read_memory_mb())
    return _memory[1]


def _read_memory_mb() -> int:
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // _MB
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        with contextlib.suppress(OSError, ValueError):
            text = Path(limit_file).read_text(encoding="ascii").strip()
            if text.isdigit():
                total = min(total, int(text) // _MB)
    return int(total)


def auto_result_mb() -> int:
    """The default limit: a quarter of the memory, at most 2 GiB.

    Building a frame briefly holds it twice (the batches, then their
    concatenation), so a quarter leaves the kernel at least half the machine.
    """
    return max(64, min(_AUTO_CAP_MB, machine_memory_mb() // 4))


class ResultBudget:
    """The memory the results of one request may hold, and what they hold so far."""

    def __init__(self, limit_mb: float) -> None:
        self.limit_bytes = int(limit_mb * _MB)
        self.kept = 0  # bytes of finished results

    def check(self, key: str, held: int, rows: int) -> None:
        """Raise :class:`ResultLimitError` when finished results plus ``held`` pass the limit.

        Args:
            key: the root field being fetched (for the message).
            held: bytes the fetch in progress holds now.
            rows: rows it received so far.
        """
        if self.kept + held > self.limit_bytes:
            raise self._error(key, held, rows)

    def keep(self, key: str, nbytes: int, rows: int) -> None:
        """Count a finished result; raise :class:`ResultLimitError` when it passes the limit."""
        self.check(key, nbytes, rows)
        self.kept += nbytes

    def _error(self, key: str, held: int, rows: int) -> ResultLimitError:
        limit_mb = self.limit_bytes / _MB
        others = (
            f" (with {self.kept / _MB:,.1f} MB of this request's other results)"
            if self.kept
            else ""
        )
        return ResultLimitError(
            f"the result of {key} passed the memory limit for results, [limits]"
            f" max_result_mb = {limit_mb:,.0f} MB, after {rows:,} rows"
            f" ({held / _MB:,.1f} MB){others}; the query was stopped and cancelled."
            " Add a limit: to the query, read the rows one by one with stream(), or raise"
            " [limits] max_result_mb",
            rows=rows,
            held_bytes=self.kept + held,
            limit_bytes=self.limit_bytes,
        )


_current: ContextVar[ResultBudget | None] = ContextVar("fraiseql_result_budget", default=None)


def current() -> ResultBudget | None:
    """The budget of the request being answered, if any."""
    return _current.get()


@contextlib.contextmanager
def budgeted(limit_mb: float) -> Iterator[ResultBudget]:
    """Results fetched inside this block share one budget of ``limit_mb``; an enclosing
    budget (a request of several calls) is kept as it is."""
    outer = _current.get()
    if outer is not None:
        yield outer
        return
    budget = ResultBudget(limit_mb)
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)
