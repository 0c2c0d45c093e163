"""Store writes on one thread of their own, when the session's queries pause.

A query never waits for the disk, nor shares the CPU with a write: loaded
columns are queued here and written once no query has run for a moment
(``_IDLE_S``), at once on close or ``prefetch(wait=True)``. A table refreshed
after its write was queued is not written (the data was dropped).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fraiseql_nb.planes.arrow.cache import TableData
from fraiseql_nb.planes.arrow.catalog import TableIdentity
from fraiseql_nb.planes.arrow.store import ColumnStore

__all__ = ["StoreWriter"]

_IDLE_S = 1.0  # store writes wait for this long a pause between queries


class StoreWriter:
    """Queues writes of loaded columns to ``store`` (none when it is off)."""

    def __init__(self, store: ColumnStore | None) -> None:
        self._store = store
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fraiseql-store")
        self._lock = threading.Lock()
        self._refreshes: dict[str, int] = {}  # per table key: refreshes, for queued writes
        self._active = 0  # queries of the session running now (any plane)
        self._last_query = 0.0  # when the last one ended
        self._hurry = threading.Event()  # write now (close, prefetch(wait=True))

    def persist(
        self,
        table: TableIdentity,
        data: TableData,
        delta: Any = None,
        base: TableData | None = None,
    ) -> None:
        """Write ``data`` (or append ``delta`` to the stored ``base``) once queries pause."""
        store = self._store
        if store is None or not table.persistable:
            return
        about = {"relation": table.relation, "database": table.database, "role": table.role}
        with self._lock:
            refreshes = self._refreshes.get(table.key, 0)

        def write() -> None:
            while not self._hurry.is_set() and not self._idle():
                self._hurry.wait(0.1)
            with self._lock:
                if self._refreshes.get(table.key, 0) != refreshes:
                    return  # refreshed since: this data was dropped
            if delta is None or base is None:
                store.write(table.key, data, about)
            else:
                store.append(table.key, data, delta, about, base=base)

        with contextlib.suppress(RuntimeError):  # closed meanwhile: not stored, then
            self._pool.submit(write)

    def refreshed(self, key: str) -> None:
        """The table's data was dropped: a write queued before now must not bring it back."""
        with self._lock:
            self._refreshes[key] = self._refreshes.get(key, 0) + 1

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Mark a query of the session running (on any plane): writes wait for a pause."""
        with self._lock:
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                self._last_query = time.monotonic()

    def flush(self) -> None:
        """Wait for the writes queued so far."""
        self._hurry.set()
        try:
            self._pool.submit(lambda: None).result()
        finally:
            self._hurry.clear()

    def close(self) -> None:
        """Finish the queued writes now."""
        self._hurry.set()
        self._pool.shutdown(wait=True)

    def _idle(self) -> bool:
        with self._lock:
            return not self._active and time.monotonic() - self._last_query >= _IDLE_S
