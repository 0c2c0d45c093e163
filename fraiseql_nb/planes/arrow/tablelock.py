"""One process at a time loads or syncs a table of the store: an OS file lock per table.

Every notebook of a user on one machine shares the store (the default data
home), so two kernels can want the same table at once. Whoever takes the
table's lock loads or syncs it; the others wait for it, then read what it
wrote (its ``meta.json``) and sync from there — never two processes writing
one table's files. The lock is ``flock`` on ``<store>/.locks/<key>.lock``:
the kernel releases it when its holder exits, killed or not, so a waiter
takes over at once. The file (outside the table's folder, which a cache clear
removes) says who holds it and what it is doing, and its modification time is
the holder's heartbeat (a thread of the holder touches it every second, however
long a statement runs): ``fraiseql-nb cache status`` shows it, and a waiter
gives up on a holder it has seen stand still for :data:`STALL_S` (a suspended
kernel).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: one process per store
    fcntl = None  # type: ignore[assignment]

__all__ = ["STALL_S", "Busy", "Held", "Holder", "held_locks", "table_lock"]

LOCKS = ".locks"
#: A holder whose heartbeat has not moved this long is given up on (not taken over:
#: only its exit releases the lock).
STALL_S = 60.0
_POLL_S = 0.1
_BEAT_EVERY_S = 0.5
_TOUCH_EVERY_S = 1.0


@dataclass(frozen=True)
class Holder:
    """Who holds a table's lock, what it is doing and when it last said so."""

    pid: int
    host: str
    since: float
    doing: str
    beat: float  # seconds since the epoch

    def __str__(self) -> str:
        here = "" if self.host == socket.gethostname() else f" on {self.host}"
        return f"process {self.pid}{here}, {self.doing}"


class Busy(Exception):  # noqa: N818 - a signal to the caller: another process has the table
    """The table's lock is held by another process (``stalled``: without a heartbeat for
    :data:`STALL_S`)."""

    def __init__(self, holder: Holder | None, *, stalled: bool = False) -> None:
        super().__init__(str(holder) if holder else "another process")
        self.holder = holder
        self.stalled = stalled


class Held:
    """A table's lock, held: :meth:`beat` tells the waiters (and ``cache status``) what the
    holder is doing."""

    def __init__(self, fd: int, doing: str) -> None:
        self._fd = fd
        self._since = time.time()
        self._last = 0.0
        self.beat(doing, force=True)
        self._done = threading.Event()
        self._toucher = threading.Thread(
            target=self._touch, name="fraiseql-table-lock", daemon=True
        )
        self._toucher.start()

    def _touch(self) -> None:
        """The heartbeat while the lock is held: alive, even inside a long statement."""
        while not self._done.wait(_TOUCH_EVERY_S):
            with contextlib.suppress(OSError):
                os.utime(self._fd)

    def release(self) -> None:
        self._done.set()
        self._toucher.join()

    def beat(self, doing: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < _BEAT_EVERY_S:
            return
        self._last = now
        text = json.dumps(
            {"pid": os.getpid(), "host": socket.gethostname(), "since": self._since, "doing": doing}
        ).encode()
        with contextlib.suppress(OSError):  # the heartbeat is advice: never fail a load on it
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, text, 0)


def _path(root: Path, key: str) -> Path:
    return root / LOCKS / f"{key}.lock"


def _read(path: Path) -> Holder | None:
    try:
        beat = path.stat().st_mtime
        info = json.loads(path.read_text(encoding="utf-8"))
        return Holder(
            pid=int(info["pid"]),
            host=str(info["host"]),
            since=float(info["since"]),
            doing=str(info["doing"]),
            beat=beat,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # being written, or never was


@contextlib.contextmanager
def table_lock(
    root: Path,
    key: str,
    doing: str,
    *,
    wait_s: float | None,
    cancelled: Callable[[], bool] = lambda: False,
) -> Iterator[Held]:
    """The table's lock, waited for at most ``wait_s`` seconds (None: as long as its holder
    makes progress), polling, so an interrupt or ``cancelled`` ends the wait.

    Raises:
        Busy: another process held it all along (or stalled).
    """
    folder = root / LOCKS
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = _path(root, key)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        started = time.monotonic()
        seen, moved = _mtime(path), started  # the heartbeat as this waiter saw it move
        while fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                now = time.monotonic()
                beat = _mtime(path)
                if beat != seen:
                    seen, moved = beat, now
                if wait_s is not None and now - started >= wait_s:
                    raise Busy(_read(path)) from None
                if now - moved > STALL_S:
                    raise Busy(_read(path), stalled=True) from None
                if cancelled():
                    raise Busy(_read(path)) from None
                time.sleep(_POLL_S)
        held = Held(fd, doing)
        try:
            yield held
        finally:
            held.release()
    finally:
        os.close(fd)  # releases the flock


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def held_locks(root: Path) -> dict[str, Holder | None]:
    """The tables whose lock a process holds now, by key, with who holds it (probed: a lock
    that can be taken is free, and is let go at once)."""
    out: dict[str, Holder | None] = {}
    folder = root / LOCKS
    if fcntl is None or not folder.is_dir():
        return out
    for path in folder.glob("*.lock"):
        if is_held(path):
            out[path.name[: -len(".lock")]] = _read(path)
    return out


def is_held(path: Path) -> bool:
    """Whether a process holds the lock at ``path`` now."""
    if fcntl is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


def key_held(root: Path, key: str) -> bool:
    """Whether a process holds the lock of the table under ``key`` (a folder of the store:
    its ``-parts`` suffix, if any, is the same table's)."""
    return is_held(_path(root, key))
