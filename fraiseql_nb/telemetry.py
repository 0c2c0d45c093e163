"""What each query cost: :class:`QueryMetrics`, one per root field executed."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["QueryMetrics"]


@dataclass(frozen=True, kw_only=True)
class QueryMetrics:
    """The cost of one query.

    Attributes:
        backend: the plane that ran it: "wire", "arrow" or "postgres".
        kind: "rows", "aggregate" or "window".
        root_field: the root field (alias or name) it answered.
        duration_ms: wall time from start to the complete result.
        ttfr_ms: time to the first row (or first byte) received.
        rows: rows in the result.
        bytes: bytes received from the database.
        result_bytes: size of the result in memory.
        cache_hit: whether the analytics cache answered (None where no cache applies).
        sql: the SQL sent (values inlined as literals, ready to paste).
        error: the error message when the query failed.
    """

    backend: str
    kind: str
    root_field: str
    duration_ms: float
    ttfr_ms: float | None = None
    rows: int = 0
    bytes: int = 0
    result_bytes: int = 0
    cache_hit: bool | None = None
    sql: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
