"""The analytics plane (``arrow``): see :mod:`.plane` for one query's path through it.

Modules, one concern each, in the order a query meets them:

- :mod:`.plane` — the orchestration: readiness, answering, background loads.
- :mod:`.catalog` — a table's identity, version and load estimates.
- :mod:`.inmemory` — tables within ``memory_mb``: at hand, proven current, or loaded;
  :mod:`.cache` keeps them in memory, :mod:`.store` and :mod:`.writer` on disk.
- :mod:`.disktables` — tables beyond it, answered from partitions on disk:
  :mod:`.disksync` loads and syncs them, :mod:`.partitions` plans them (pure),
  :mod:`.partfile` writes one, :mod:`.disktable` reads them.
- Keeping loaded rows exact: :mod:`.capture` (the session's change stream),
  :mod:`.pgoutput` (its messages, pure), :mod:`.changes` (their net effect by key,
  pure), :mod:`.catchup` (changed rows read and applied); else :mod:`.freshness`
  (the scan, pure) and :mod:`.views` (a view by the tables it reads).
- :mod:`.loader` and :mod:`.adbc` — reading rows over ADBC; :mod:`.background` —
  loads that run while the session goes on.
"""

from fraiseql_nb.planes.arrow.catalog import LoadEstimate
from fraiseql_nb.planes.arrow.plane import ArrowPlane, Readiness

__all__ = ["ArrowPlane", "LoadEstimate", "Readiness", "arrow_available"]


def arrow_available() -> bool:
    """Whether the analytics packages (ADBC's PostgreSQL driver) can be imported."""
    try:
        import adbc_driver_postgresql.dbapi  # noqa: F401
    except ImportError:
        return False
    return True
