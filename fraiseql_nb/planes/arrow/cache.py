"""Loaded fact-table columns in memory: one :class:`TableData` per table (and per filter).

A TableData holds every row of some columns of one table as a Polars frame,
exact at one snapshot, with what is needed to prove it still is (see
:mod:`.freshness`) and to extend it by appended rows. The cache is an LRU
bounded by ``[arrow_backend] cache_size_mb``; its lock is held only to look
up or swap entries (never while loading or computing), so reading it, stats,
health and explain never wait for a load.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import polars as pl

from fraiseql_nb.planes.arrow.freshness import Snapshot
from fraiseql_nb.planes.arrow.views import Bases

__all__ = ["MemoryCache", "TableData"]


@dataclass(frozen=True)
class TableData:
    """Rows of one fact table (all of them, or those of one filter), exact at ``snapshot``.

    Attributes:
        frame: one column per loaded name.
        exprs: each column's load expression: a column loaded another way (a changed
            schema file, exact decimals toggled) is not the same column.
        snapshot: what the rows are exact at.
        window: rows in the snapshot's window and their hash (:mod:`.freshness`).
        files: the table's file nodes when loaded (a TRUNCATE or rewrite changes them).
        attrs: a digest of the table's columns when loaded (an ALTER TABLE changes it).
        verified_at: when the rows were last proven current (monotonic clock).
        bases: a view's tables as the rows saw them (:mod:`.views`); None for a table,
            or a view any commit may change.
    """

    frame: pl.DataFrame
    exprs: dict[str, str]
    snapshot: Snapshot
    window: tuple[int, str]
    files: str
    attrs: str
    verified_at: float = field(default_factory=time.monotonic)
    bases: Bases | None = None

    @property
    def rows(self) -> int:
        return self.frame.height

    @property
    def nbytes(self) -> int:
        return int(self.frame.estimated_size())

    def holds(self, exprs: dict[str, str]) -> bool:
        """Whether every column of ``exprs`` is here, loaded the same way."""
        return all(self.exprs.get(name) == expr for name, expr in exprs.items())

    def same_table(self, files: str, attrs: str) -> bool:
        """Whether the table has kept its files and columns since the load."""
        return self.files == files and self.attrs == attrs

    def verified(self, snapshot: Snapshot, bases: Bases | None = None) -> TableData:
        """The same rows, proven current at ``snapshot`` (with a view's tables there)."""
        return replace(
            self, snapshot=snapshot, verified_at=time.monotonic(), bases=bases or self.bases
        )

    def appended(
        self, delta: pl.DataFrame, snapshot: Snapshot, window: tuple[int, str]
    ) -> TableData:
        """These rows and ``delta`` (rows appended since), exact at ``snapshot``."""
        if delta.height:
            delta = delta.select(
                [pl.col(name).cast(dtype) for name, dtype in self.frame.schema.items()]
            )
            frame = pl.concat([self.frame, delta], how="vertical", rechunk=False)
        else:
            frame = self.frame
        return replace(
            self, frame=frame, snapshot=snapshot, window=window, verified_at=time.monotonic()
        )


class MemoryCache:
    """An LRU of TableData by key, bounded in bytes; thread-safe."""

    def __init__(self, budget_mb: float, *, enabled: bool = True) -> None:
        self.budget = int(budget_mb * 2**20)
        self.enabled = enabled
        self._entries: OrderedDict[str, TableData] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> TableData | None:
        with self._lock:
            data = self._entries.get(key)
            if data is not None:
                self._entries.move_to_end(key)
            return data

    def put(self, key: str, data: TableData) -> bool:
        """Keep ``data`` under ``key``; False when it is too big to keep (used once)."""
        if not self.enabled or data.nbytes > self.budget:
            self.drop(lambda k: k == key)
            return False
        with self._lock:
            self._entries[key] = data
            self._entries.move_to_end(key)
            while len(self._entries) > 1 and self._bytes() > self.budget:
                self._entries.popitem(last=False)  # least recently used first
        return True

    def drop(self, match: Callable[[str], bool]) -> int:
        with self._lock:
            keys = [k for k in self._entries if match(k)]
            for k in keys:
                del self._entries[k]
            return len(keys)

    def stats(self) -> tuple[int, int]:
        """Entries and bytes."""
        with self._lock:
            return len(self._entries), self._bytes()

    def _bytes(self) -> int:
        return sum(d.nbytes for d in self._entries.values())
