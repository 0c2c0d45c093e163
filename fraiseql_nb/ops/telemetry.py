"""What each query cost: :class:`QueryMetrics`, the session's query log, Prometheus metrics.

Every root field executed (or refused) leaves a QueryMetrics; the session
keeps the last ``keep`` as a Polars DataFrame (``Session.query_log``) and
counts them in a per-session prometheus-client registry (so two sessions
never mix their numbers): queries by backend, kind and outcome, a duration
histogram by backend, rows and bytes by backend, cache hits/misses/bytes,
and the connection pool's gauges.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass, fields
from typing import Any

import polars as pl
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["QueryMetrics", "Telemetry"]


@dataclass(frozen=True, kw_only=True)
class QueryMetrics:
    """The cost of one query.

    Attributes:
        backend: the plane that ran it: "wire", "arrow" or "postgres" ("none" if refused).
        kind: "rows", "aggregate" or "window" ("invalid" for a refused document).
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


_LOG_SCHEMA = {
    "backend": pl.String,
    "kind": pl.String,
    "root_field": pl.String,
    "duration_ms": pl.Float64,
    "ttfr_ms": pl.Float64,
    "rows": pl.Int64,
    "bytes": pl.Int64,
    "result_bytes": pl.Int64,
    "cache_hit": pl.Boolean,
    "sql": pl.String,
    "error": pl.String,
}
assert list(_LOG_SCHEMA) == [f.name for f in fields(QueryMetrics)]


class Telemetry:
    """A session's query log and Prometheus registry."""

    def __init__(self, keep: int = 1000) -> None:
        self._log: deque[QueryMetrics] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self.registry = CollectorRegistry()
        r = self.registry
        self.queries = Counter(
            "fraiseql_queries", "Root fields executed", ["backend", "kind", "outcome"], registry=r
        )
        self.duration = Histogram(
            "fraiseql_query_duration_seconds",
            "Wall time of a root field",
            ["backend"],
            registry=r,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.rows = Counter("fraiseql_rows", "Rows returned", ["backend"], registry=r)
        self.bytes = Counter(
            "fraiseql_bytes", "Bytes received from PostgreSQL", ["backend"], registry=r
        )
        self.cache_hits = Counter(
            "fraiseql_cache_hits", "Analytics queries answered from the cache", registry=r
        )
        self.cache_misses = Counter(
            "fraiseql_cache_misses", "Analytics queries that loaded data", registry=r
        )
        self.cache_bytes = Gauge(
            "fraiseql_cache_bytes", "Bytes held by the analytics cache", registry=r
        )
        self.cache_entries = Gauge(
            "fraiseql_cache_entries", "Loads held by the analytics cache", registry=r
        )
        self.pool = Gauge(
            "fraiseql_pool_connections", "Connection pool gauges", ["state"], registry=r
        )

    def record(self, m: QueryMetrics) -> None:
        """Add one query to the log and the counters."""
        with self._lock:
            self._log.append(m)
        outcome = "ok" if m.error is None else ("invalid" if m.kind == "invalid" else "error")
        self.queries.labels(m.backend, m.kind, outcome).inc()
        if m.error is None:
            self.duration.labels(m.backend).observe(m.duration_ms / 1e3)
            self.rows.labels(m.backend).inc(m.rows)
            self.bytes.labels(m.backend).inc(m.bytes)
        if m.cache_hit is True:
            self.cache_hits.inc()
        elif m.cache_hit is False:
            self.cache_misses.inc()

    def log(self) -> pl.DataFrame:
        """The kept queries, oldest first."""
        with self._lock:
            rows = [m.to_dict() for m in self._log]
        return pl.DataFrame(rows, schema=_LOG_SCHEMA)

    def text(self, pool: dict[str, int], cache: dict[str, Any]) -> str:
        """Prometheus exposition text, gauges read now."""
        for state, value in pool.items():
            self.pool.labels(state).set(value)
        self.cache_bytes.set(cache.get("bytes", 0))
        self.cache_entries.set(cache.get("entries", 0))
        return generate_latest(self.registry).decode()
