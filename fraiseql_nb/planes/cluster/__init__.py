"""The cluster plane: the analytics plane's partitions on Ray (``[cluster] address``)."""

from __future__ import annotations

import warnings

from fraiseql_nb.planes.cluster.plane import ClusterPlane
from fraiseql_nb.planes.cluster.runtime import cluster_available
from fraiseql_nb.planes.contract import Context, Registration

__all__ = ["REGISTRATION", "ClusterPlane", "cluster_available"]


def _build(ctx: Context) -> ClusterPlane:
    dsn = ctx.analytics_dsn
    plane = ClusterPlane(dsn, ctx.config, ctx.analytics_pool, dsn)
    if ctx.config.cluster.address:
        off = plane.join()
        if off:
            # The caller of fq.connect: build ← Planes ← Session ← connect ← them.
            warnings.warn(f"the cluster plane is off: {off}; the other planes work", stacklevel=5)
    return plane


REGISTRATION = Registration(
    name="cluster",
    build=_build,
    runs=frozenset({"facts"}),
    colour="#b7791f",
    summary="the arrow plane's partitions on a Ray cluster, for tables beyond this machine",
)
