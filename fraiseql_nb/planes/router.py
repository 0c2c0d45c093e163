"""Which plane runs a query: a pure decision, returned with its reason.

Policy for ``backend="auto"``:

- row queries run on ``wire``, or, with ``[backends] use_wire_backend =
  false``, through one plain buffered psycopg query (reported as ``postgres``);
- aggregate and window queries run on ``arrow`` when the analytics plane is
  on, its packages import and the columns they need are at hand (in memory,
  or in the persisted store). Otherwise they run on ``postgres`` — at once,
  never waiting for a load — and, when loading the table is estimated at no
  more than ``[routing] max_load_mb`` (and it has at least
  ``min_rows_for_arrow`` rows), the table starts loading in the background;
  later queries run on ``arrow`` once it is loaded. A query that arrives
  while the load is expected to end within ``[routing] wait_for_load_s``
  waits for it (running it on PostgreSQL meanwhile would cost as much, and
  slow the load); with ``[routing] background_loads = false`` the first query
  loads in the foreground instead.
  A query the analytics plane declines (it touches a column of a type that
  plane does not load exactly, such as ``inet``) runs on ``postgres``: that
  plane answers exactly or not at all.

With a cluster configured (``[cluster] address``), ``auto`` sends a fact query to
``cluster`` when its table is on the cluster already; a table beyond what this
machine may hold (the store's budget, or ``max_load_mb``) is answered on
``postgres`` while the cluster loads it in the background (or, with background
loads off, loaded on the cluster first) — unless the cluster plane declines the
query (a view, a window without a partitionBy): then as above.

An explicit backend is obeyed, or refused with an error saying why.
"""

from __future__ import annotations

from dataclasses import dataclass

from fraiseql_nb.config import Config
from fraiseql_nb.errors import BackendError, QueryError
from fraiseql_nb.planes.arrow import LoadEstimate, Readiness
from fraiseql_nb.planes.contract import PlaneName

__all__ = ["ClusterState", "Route", "choose_plane"]


@dataclass(frozen=True)
class Route:
    """A plane and why it was chosen; ``load``: start loading the table into the arrow
    plane in the background (``load_cluster``: onto the cluster); ``wait``: wait for the
    table's load (running, nearly done) before answering."""

    plane: PlaneName
    reason: str
    load: bool = False
    wait: bool = False
    load_cluster: bool = False


@dataclass(frozen=True)
class ClusterState:
    """The cluster plane, for one query: whether it is on (else ``off``: why not), what it
    declines in the query, whether it holds the table already, and whether a background
    load of it runs or failed a moment ago (``loading``: what to say, else None)."""

    on: bool
    off: str = ""
    declined: str | None = None
    holds: bool = False
    loading: str | None = None


def choose_plane(
    kind: str,
    requested: str,
    config: Config,
    *,
    arrow_ready: bool,
    readiness: Readiness | None = None,
    key: str = "query",
    declined: str | None = None,
    cluster: ClusterState | None = None,
) -> Route:
    """Choose the plane for one root field.

    Args:
        kind: "rows", "aggregate" or "window".
        requested: "auto", "wire", "arrow" or "postgres".
        config: the session's configuration.
        arrow_ready: whether the analytics packages import.
        readiness: whether the columns an analytics query needs are at hand, or what
            loading them would cost.
        key: the root field, for messages.
        declined: why the analytics plane would not answer this query, if it would not.
        cluster: the cluster plane's state (None: no cluster configured).
    """
    arrow_on = config.backends.use_arrow_backend and arrow_ready
    if kind == "rows":
        wire_on = config.backends.use_wire_backend
        if requested == "postgres":
            return Route("postgres", "requested: one buffered query")
        if requested in ("arrow", "cluster"):
            raise QueryError(
                f"{key} is a row query: it runs on the 'wire' plane (or 'postgres'),"
                f" not {requested!r}"
            )
        if requested == "wire" and not wire_on:
            raise BackendError(
                "the wire plane is off ([backends] use_wire_backend = false);"
                " use backend='postgres' or 'auto'"
            )
        if wire_on:
            return Route("wire", "row query")
        return Route("postgres", "wire plane off: one buffered query")
    if requested == "cluster":
        return _cluster_requested(kind, cluster, key)
    if requested == "wire":
        raise QueryError(
            f"{key} is an {kind} query: the 'wire' plane runs row queries only;"
            " use 'arrow', 'postgres' or 'auto'"
        )
    if requested == "postgres":
        return Route("postgres", "requested")
    if requested == "arrow":
        if not config.backends.use_arrow_backend:
            raise BackendError(
                "the arrow plane is off ([backends] use_arrow_backend = false);"
                " use backend='postgres' or 'auto'"
            )
        if not arrow_ready:
            raise BackendError(
                "the arrow plane needs adbc-driver-postgresql and pyarrow, which do not import;"
                " use backend='postgres' or 'auto'"
            )
        if declined is not None:
            raise QueryError(
                f"{key}: the arrow plane does not handle {declined}; use backend='postgres'"
                " or 'auto'"
            )
        return Route("arrow", "requested")
    if not arrow_on:
        why = (
            "arrow plane off"
            if not config.backends.use_arrow_backend
            else "analytics packages missing"
        )
        return Route("postgres", why)
    if declined is not None:
        return Route("postgres", f"arrow declines {declined}")
    assert readiness is not None
    usable = cluster is not None and cluster.on and cluster.declined is None
    if usable and readiness.state not in ("memory", "store", "disk", "ending"):
        assert cluster is not None
        estimate = readiness.estimate
        if cluster.holds:
            return Route("cluster", "on the cluster")
        beyond = readiness.reason if readiness.beyond else None
        if beyond is None and estimate is not None and estimate.mb > config.routing.max_load_mb:
            beyond = f"load {estimate.mb:.0f} MB > {config.routing.max_load_mb:g} MB"
        if beyond is not None:
            # As for the arrow plane, nothing waits for a load: PostgreSQL answers while
            # the cluster loads the table (unless loads are in the foreground).
            if cluster.loading is not None:
                return Route("postgres", f"{beyond}: {cluster.loading}")
            if config.routing.background_loads:
                return Route(
                    "postgres",
                    f"{beyond}: loading on the cluster in the background",
                    load_cluster=True,
                )
            return Route("cluster", f"{beyond}: on the cluster")
    if readiness.state in ("memory", "store", "disk", "ending"):
        return Route("arrow", readiness.reason, wait=readiness.state == "ending")
    if readiness.state != "cold":  # loading, declined, or a load failed a moment ago
        return Route("postgres", readiness.reason)
    estimate: LoadEstimate | None = readiness.estimate
    assert estimate is not None
    limit = config.routing.max_load_mb
    if estimate.rows < config.routing.min_rows_for_arrow:
        return Route("postgres", f"{estimate.rows:,} rows < min_rows_for_arrow")
    if estimate.mb > limit:
        return Route("postgres", f"load {estimate.mb:.0f} MB > {limit:g} MB")
    if config.routing.background_loads:
        return Route("postgres", "arrow cold: loading in the background", load=True)
    cap = f" ≤ {limit:g} MB" if limit != float("inf") else ""
    return Route("arrow", f"load {estimate.mb:.0f} MB{cap}")


def _cluster_requested(kind: str, cluster: ClusterState | None, key: str) -> Route:
    if cluster is None:
        raise BackendError(
            "no cluster is configured ([cluster] address); use backend='arrow', 'postgres'"
            " or 'auto'"
        )
    if not cluster.on:
        raise BackendError(f"the cluster plane is off: {cluster.off}; use backend='auto'")
    if cluster.declined is not None:
        raise QueryError(
            f"{key}: the cluster plane does not handle {cluster.declined}; use"
            " backend='postgres' or 'auto'"
        )
    return Route("cluster", "requested")
