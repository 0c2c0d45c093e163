"""The cluster plane: the analytics plane's partitions on Ray (``[cluster] address``)."""

from fraiseql_nb.planes.cluster.plane import ClusterPlane
from fraiseql_nb.planes.cluster.runtime import cluster_available

__all__ = ["ClusterPlane", "cluster_available"]
