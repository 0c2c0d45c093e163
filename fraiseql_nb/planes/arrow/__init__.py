"""The analytics plane (``arrow``): see :mod:`.plane` for one query's path through it.

Modules, one concern each, in the order a query meets them:

- :mod:`.plane` — the orchestration: offer, answering, background loads;
  :mod:`.ready` — how ready a query's columns are; :mod:`.offer` — what that makes
  its offer to the router (pure).
- :mod:`.catalog` — a table's identity, version and load estimates.
- :mod:`.inmemory` — tables within ``memory_mb``: at hand, proven current, or loaded;
  :mod:`.cache` keeps them in memory, :mod:`.store` and :mod:`.writer` on disk.
- :mod:`.disktables` — tables beyond it, answered from partitions on disk:
  :mod:`.disksync` loads and syncs them, :mod:`.partitions` plans them (pure),
  :mod:`.diskcompute` computes over them,
  :mod:`.partfile` writes one, :mod:`.disktable` reads them.
- Keeping loaded rows exact: :mod:`.capture` (the session's change stream;
  :mod:`.publication` whether a table can be followed, and its publication),
  :mod:`.pgoutput` (its messages, pure), :mod:`.changes` (their net effect by key,
  pure), :mod:`.catchup` (changed rows read and applied); else :mod:`.freshness`
  (the scan, pure) and :mod:`.views` (a view by the tables it reads).
- :mod:`.loader` and :mod:`.adbc` — reading rows over ADBC, :mod:`.typed` the frames
  they become; :mod:`.loads` — loads
  that run while the session goes on (:mod:`.background` runs them); :mod:`.engine` —
  Polars' share: what it cannot compute, the plan shown.
"""

from fraiseql_nb.planes.arrow.catalog import LoadEstimate
from fraiseql_nb.planes.arrow.engine import arrow_available
from fraiseql_nb.planes.arrow.offer import Readiness
from fraiseql_nb.planes.arrow.plane import ArrowPlane
from fraiseql_nb.planes.contract import Context, Registration

__all__ = ["REGISTRATION", "ArrowPlane", "LoadEstimate", "Readiness", "arrow_available"]


def _build(ctx: Context) -> ArrowPlane:
    # With an analytics_connection (a replica), the plane reads the catalogue, table
    # versions and data there: a version is only comparable where it was read.
    dsn = ctx.analytics_dsn
    return ArrowPlane(dsn, ctx.config, ctx.analytics_pool, dsn, ctx.store)


REGISTRATION = Registration(
    name="arrow",
    build=_build,
    runs=frozenset({"facts"}),
    colour="#2f855a",
    summary="aggregates and windows over fact-table columns loaded once over ADBC,"
    " kept in memory or on disk, computed in Polars",
)
