"""The analytics plane (``arrow``): see :mod:`.plane` for one query's path through it.

Modules, one concern each: :mod:`.catalog` (identity, version, estimates),
:mod:`.freshness` (exact change detection, pure), :mod:`.loader` (ADBC),
:mod:`.cache` (memory), :mod:`.store` (disk), :mod:`.background` (loads that
run while the session goes on), :mod:`.plane` (the orchestration).
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
