"""What the cluster plane offers the router for a task: a pure decision. It takes the
tables beyond what this machine may hold — said by an earlier plane's offer
(``beyond``) — and answers those it holds already."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fraiseql_nb.errors import BackendError, QueryError
from fraiseql_nb.planes.contract import Offer

__all__ = ["ClusterState", "cluster_offer", "passes"]


@dataclass(frozen=True)
class ClusterState:
    """The cluster plane, for one query: whether it is configured and on (else ``off``:
    why not), what it declines in the query, whether it holds the table already, and
    whether a background load of it runs or failed a moment ago (``loading``: what to
    say, else None)."""

    on: bool
    off: str = ""
    declined: str | None = None
    holds: bool = False
    loading: str | None = None
    configured: bool = True


def passes(earlier: Mapping[str, Offer]) -> bool:
    """Under ``auto``, nothing to ask the cluster: a plane before it answers, or the plane
    before it is off — the cluster plane extends the arrow plane, so with that off ``auto``
    leaves it alone (asked by name, it answers)."""
    return any(o.state in ("ready", "soon", "off") for o in earlier.values())


def cluster_offer(
    state: ClusterState,
    earlier: Mapping[str, Offer],
    *,
    requested: bool = False,
    key: str = "query",
) -> Offer:
    """The cluster plane's offer for one fact query."""
    if not state.configured:
        return Offer(
            "off",
            "no cluster configured",
            error=BackendError(
                "no cluster is configured ([cluster] address); use backend='arrow', 'postgres'"
                " or 'auto'"
            ),
        )
    if not state.on:
        return Offer(
            "off",
            f"the cluster plane is off: {state.off}",
            error=BackendError(f"the cluster plane is off: {state.off}; use backend='auto'"),
        )
    if state.declined is not None:
        refused = QueryError(
            f"{key}: the cluster plane does not handle {state.declined}; use"
            " backend='postgres' or 'auto'"
        )
        # Under auto, what declines it is the earlier planes' to say.
        return Offer(
            "declined" if requested else "pass", f"cluster declines {state.declined}", error=refused
        )
    if requested:
        return Offer("ready", "requested")
    if passes(earlier):
        return Offer("pass")
    if state.holds:
        return Offer("ready", "on the cluster")
    beyond = next((o.beyond for o in earlier.values() if o.beyond), None)
    if beyond is None:
        return Offer("pass")  # within this machine, the plane before serves it
    if state.loading is not None:
        return Offer("busy", f"{beyond}: {state.loading}")
    return Offer(
        "cold",
        f"{beyond}: on the cluster",
        meanwhile=f"{beyond}: loading on the cluster in the background",
    )
