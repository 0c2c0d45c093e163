"""What the arrow plane offers the router for a task: a pure decision over its readiness
(whether the columns are at hand, or what loading them would cost) and the settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fraiseql_nb.config import Config
from fraiseql_nb.errors import BackendError, QueryError
from fraiseql_nb.planes.arrow.catalog import LoadEstimate
from fraiseql_nb.planes.contract import Offer

__all__ = ["Readiness", "ReadinessState", "arrow_off", "arrow_offer"]

#: How ready a query's columns are (see :class:`Readiness`).
ReadinessState = Literal[
    "memory", "store", "disk", "ending", "loading", "failed", "declined", "cold"
]


@dataclass(frozen=True)
class Readiness:
    """Whether a query's columns are at hand: "memory", "store", "disk" (a table beyond the
    memory budget, on disk), "ending" (loading, nearly done), "loading", "failed" (a load
    failed a moment ago), "declined" (the plane does not take the table) or "cold"."""

    state: ReadinessState
    reason: str
    estimate: LoadEstimate | None = None
    beyond: bool = False  # declined: beyond the store's budget (the cluster may take it)


def arrow_off(config: Config, packages: bool) -> Offer | None:
    """The plane is off by configuration, or its packages do not import (None: it is on)."""
    if not config.backends.use_arrow_backend:
        return Offer(
            "off",
            "arrow plane off",
            error=BackendError(
                "the arrow plane is off ([backends] use_arrow_backend = false);"
                " use backend='postgres' or 'auto'"
            ),
        )
    if not packages:
        return Offer(
            "off",
            "analytics packages missing",
            error=BackendError(
                "the arrow plane needs adbc-driver-postgresql and pyarrow, which do not import;"
                " use backend='postgres' or 'auto'"
            ),
        )
    return None


def arrow_offer(
    config: Config,
    *,
    packages: bool = True,
    readiness: Readiness | None = None,
    declined: str | None = None,
    requested: bool = False,
    key: str = "query",
) -> Offer:
    """The arrow plane's offer: off, declined (``declined``: what of the query it does not
    compute), else from ``readiness`` (asked by name: ready, whatever it holds)."""
    off = arrow_off(config, packages)
    if off is not None:
        return off
    if declined is not None:
        return Offer(
            "declined",
            f"arrow declines {declined}",
            error=QueryError(
                f"{key}: the arrow plane does not handle {declined}; use backend='postgres'"
                " or 'auto'"
            ),
        )
    if requested:
        return Offer("ready", "requested")
    assert readiness is not None
    state = readiness.state
    if state in ("memory", "store", "disk"):
        return Offer("ready", readiness.reason)
    if state == "ending":
        return Offer("soon", readiness.reason)
    if state == "loading":
        return Offer("loading", readiness.reason)
    if state != "cold":  # a load failed a moment ago, or the table is not this plane's
        return Offer(
            "busy", readiness.reason, beyond=readiness.reason if readiness.beyond else None
        )
    estimate = readiness.estimate
    assert estimate is not None
    limit = config.routing.max_load_mb
    beyond = f"load {estimate.mb:.0f} MB > {limit:g} MB" if estimate.mb > limit else None
    if estimate.rows < config.routing.min_rows_for_arrow:
        return Offer("busy", f"{estimate.rows:,} rows < min_rows_for_arrow", beyond=beyond)
    if beyond is not None:
        return Offer("busy", beyond, beyond=beyond)
    cap = f" ≤ {limit:g} MB" if limit != float("inf") else ""
    return Offer(
        "cold",
        f"load {estimate.mb:.0f} MB{cap}",
        meanwhile="arrow cold: loading in the background",
    )
