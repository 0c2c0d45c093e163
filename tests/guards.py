"""Guards that keep one bad test from eating the machine: a memory ceiling per test.

A test whose process passes ``$FRAISEQL_TEST_MAX_RSS_MB`` (default 6144 MB; the suite
normally stays under 1.5 GB), growing by more than 256 MB itself, fails at once with :class:`MemoryCeilingError`, raised in
the main thread by a watchdog (SIGUSR1 interrupts whatever the test waits on), and the
suite goes on. The time limit per test is pytest-timeout's (``timeout`` in pyproject).
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from types import FrameType

import pytest

CEILING_MB = int(os.environ.get("FRAISEQL_TEST_MAX_RSS_MB", "6144"))
_PAGE = os.sysconf("SC_PAGE_SIZE")
_GROWTH_MB = 256  # what a test must add itself: memory an earlier one left is not its own
_armed = threading.Event()
_fired = threading.Event()
_baseline = [0.0]


class MemoryCeilingError(Exception):
    """The test process grew past the memory ceiling of the test suite."""


def rss_mb() -> float:
    """This process's resident memory."""
    fields = Path("/proc/self/statm").read_text(encoding="ascii").split()
    return int(fields[1]) * _PAGE / 2**20


def _raise(signum: int, frame: FrameType | None) -> None:
    raise MemoryCeilingError(
        f"the test process passed {CEILING_MB:,} MB of memory ($FRAISEQL_TEST_MAX_RSS_MB):"
        " stopped before it takes the machine down"
    )


def _watch(main: int) -> None:
    while True:
        _armed.wait()
        now = rss_mb()
        if not _fired.is_set() and now > CEILING_MB and now > _baseline[0] + _GROWTH_MB:
            _fired.set()
            signal.pthread_kill(main, signal.SIGUSR1)
        threading.Event().wait(0.2)


def pytest_configure(config: pytest.Config) -> None:
    if not Path("/proc/self/statm").exists():
        return  # not Linux: no ceiling
    signal.signal(signal.SIGUSR1, _raise)
    main = threading.main_thread().ident
    assert main is not None
    threading.Thread(target=_watch, args=(main,), name="test-memory-ceiling", daemon=True).start()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _fired.clear()
    _baseline[0] = rss_mb()
    _armed.set()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    _armed.clear()
