"""The routing policy as a pure decision (no database)."""

from __future__ import annotations

import pytest

import fraiseql_nb as fq
from fraiseql_nb.config import Config, load_config
from fraiseql_nb.planes.arrow import LoadEstimate, Readiness
from fraiseql_nb.planes.arrow.offer import arrow_offer
from fraiseql_nb.planes.cluster.offer import ClusterState, cluster_offer
from fraiseql_nb.planes.contract import Offer
from fraiseql_nb.planes.router import Route, choose_plane

DEFAULT = load_config({}, environ={})


def route(
    kind: str,
    requested: str,
    config: Config,
    *,
    arrow_ready: bool,
    readiness: Readiness | None,
    cluster: ClusterState | None = None,
) -> Route:
    """The route from the offers the planes make of these states (the wire plane's as it
    makes it: ready, unless off), as a session asks them: in the registry's order."""
    offers: dict[str, Offer] = {}
    asked = requested != "auto"
    if kind == "rows":
        if requested in ("auto", "wire"):
            on = config.backends.use_wire_backend
            offers["wire"] = (
                Offer("ready", "row query")
                if on
                else Offer(
                    "off",
                    "wire plane off: one buffered query",
                    error=fq.BackendError(
                        "the wire plane is off ([backends] use_wire_backend = false)"
                    ),
                )
            )
    else:
        if requested in ("auto", "arrow"):
            offers["arrow"] = arrow_offer(
                config, packages=arrow_ready, readiness=readiness, requested=asked
            )
        if requested in ("auto", "cluster") and cluster is not None:
            offers["cluster"] = cluster_offer(cluster, offers, requested=asked)
    if requested == "postgres":
        offers["postgres"] = Offer(
            "ready", "requested: one buffered query" if kind == "rows" else "requested"
        )
    return choose_plane(kind, requested, offers, background=config.routing.background_loads)


SMALL = Readiness("cold", "not loaded", LoadEstimate(rows=100_000, bytes=5 * 2**20, cached=False))
BIG = Readiness("cold", "not loaded", LoadEstimate(rows=10**9, bytes=900 * 2**20, cached=False))
CACHED = Readiness("memory", "cached")
STORED = Readiness("store", "stored")
LOADING = Readiness("loading", "arrow loading 40%")
ENDING = Readiness("ending", "arrow: waited for its load, 1.2 s from done")
FAILED = Readiness("failed", "arrow load failed: boom")


@pytest.mark.parametrize(
    ("kind", "requested", "config", "ready", "readiness", "plane", "reason"),
    [
        ("rows", "auto", {}, True, None, "wire", "row query"),
        ("rows", "wire", {}, True, None, "wire", "row query"),
        ("rows", "postgres", {}, True, None, "postgres", "requested: one buffered query"),
        (
            "rows",
            "auto",
            {"backends": {"use_wire_backend": False}},
            True,
            None,
            "postgres",
            "wire plane off: one buffered query",
        ),
        ("aggregate", "auto", {}, True, SMALL, "postgres", "arrow cold: loading in the background"),
        (
            "aggregate",
            "auto",
            {"routing": {"background_loads": False}},
            True,
            SMALL,
            "arrow",
            "load 5 MB",
        ),
        (
            "aggregate",
            "auto",
            {"routing": {"background_loads": False, "max_load_mb": 512}},
            True,
            SMALL,
            "arrow",
            "load 5 MB ≤ 512 MB",
        ),
        (
            "aggregate",
            "auto",
            {"routing": {"max_load_mb": 512}},
            True,
            BIG,
            "postgres",
            "load 900 MB > 512 MB",
        ),
        # No cap by default: a big table loads in the background (to disk, past memory_mb).
        ("aggregate", "auto", {}, True, BIG, "postgres", "arrow cold: loading in the background"),
        ("aggregate", "auto", {}, True, Readiness("disk", "from disk"), "arrow", "from disk"),
        ("window", "auto", {}, True, CACHED, "arrow", "cached"),
        ("window", "auto", {}, True, STORED, "arrow", "stored"),
        ("aggregate", "auto", {}, True, LOADING, "postgres", "arrow loading 40%"),
        (
            "aggregate",
            "auto",
            {},
            True,
            ENDING,
            "arrow",
            "arrow: waited for its load, 1.2 s from done",
        ),
        ("aggregate", "auto", {}, True, FAILED, "postgres", "arrow load failed: boom"),
        (
            "aggregate",
            "auto",
            {"routing": {"max_load_mb": 1}},
            True,
            SMALL,
            "postgres",
            "load 5 MB > 1 MB",
        ),
        (
            "aggregate",
            "auto",
            {"routing": {"min_rows_for_arrow": 10**6}},
            True,
            SMALL,
            "postgres",
            "100,000 rows < min_rows_for_arrow",
        ),
        (
            "aggregate",
            "auto",
            {"backends": {"use_arrow_backend": False}},
            True,
            None,
            "postgres",
            "arrow plane off",
        ),
        ("aggregate", "auto", {}, False, None, "postgres", "analytics packages missing"),
        ("aggregate", "postgres", {}, True, None, "postgres", "requested"),
        ("window", "arrow", {}, True, None, "arrow", "requested"),
    ],
)
def test_choices(
    kind: str,
    requested: str,
    config: dict,
    ready: bool,
    readiness: Readiness | None,
    plane: str,
    reason: str,
) -> None:
    chosen = route(
        kind, requested, load_config(config, environ={}), arrow_ready=ready, readiness=readiness
    )
    assert (chosen.plane, chosen.reason) == (plane, reason)
    # Only a cold table under auto starts a background load (after the answer); only a
    # load about to end is waited for.
    assert chosen.load == ("arrow" if reason == "arrow cold: loading in the background" else None)
    assert chosen.wait == (readiness is ENDING)


@pytest.mark.parametrize(
    ("kind", "requested", "config", "ready", "error", "message"),
    [
        ("aggregate", "wire", {}, True, fq.QueryError, "the 'wire' plane runs row queries only"),
        ("rows", "arrow", {}, True, fq.QueryError, "not 'arrow'"),
        (
            "rows",
            "wire",
            {"backends": {"use_wire_backend": False}},
            True,
            fq.BackendError,
            "use_wire_backend = false",
        ),
        (
            "aggregate",
            "arrow",
            {"backends": {"use_arrow_backend": False}},
            True,
            fq.BackendError,
            "use_arrow_backend = false",
        ),
        ("window", "arrow", {}, False, fq.BackendError, "needs adbc-driver-postgresql"),
    ],
)
def test_refusals(
    kind: str, requested: str, config: dict, ready: bool, error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        route(kind, requested, load_config(config, environ={}), arrow_ready=ready, readiness=SMALL)


BEYOND = Readiness(
    "declined",
    "load 900 MB > the store's budget 512 MB",
    LoadEstimate(rows=10**9, bytes=900 * 2**20, cached=False),
    beyond=True,
)


@pytest.mark.parametrize(
    ("config", "readiness", "cluster", "plane", "reason", "load_cluster"),
    [
        ({}, BEYOND, ClusterState(on=True, holds=True), "cluster", "on the cluster", False),
        (
            {},
            BEYOND,
            ClusterState(on=True),
            "postgres",
            "load 900 MB > the store's budget 512 MB: loading on the cluster in the background",
            True,
        ),
        (
            {},
            BEYOND,
            ClusterState(on=True, loading="loading on the cluster"),
            "postgres",
            "load 900 MB > the store's budget 512 MB: loading on the cluster",
            False,
        ),
        (
            {"routing": {"background_loads": False}},
            BEYOND,
            ClusterState(on=True),
            "cluster",
            "load 900 MB > the store's budget 512 MB: on the cluster",
            False,
        ),
        (
            {"routing": {"max_load_mb": 512}},
            BIG,
            ClusterState(on=True),
            "postgres",
            "load 900 MB > 512 MB: loading on the cluster in the background",
            True,
        ),
        # Within this machine the arrow plane serves; a cluster that is off or declines
        # changes nothing.
        (
            {},
            SMALL,
            ClusterState(on=True),
            "postgres",
            "arrow cold: loading in the background",
            False,
        ),
        ({}, CACHED, ClusterState(on=True), "arrow", "cached", False),
        # The cluster plane extends the arrow plane: with that off, auto leaves it alone.
        (
            {"backends": {"use_arrow_backend": False}},
            None,
            ClusterState(on=True, holds=True),
            "postgres",
            "arrow plane off",
            False,
        ),
        ({}, BEYOND, ClusterState(on=False, off="down"), "postgres", BEYOND.reason, False),
        (
            {},
            BEYOND,
            ClusterState(on=True, declined="a view"),
            "postgres",
            BEYOND.reason,
            False,
        ),
    ],
)
def test_the_cluster_takes_tables_beyond_this_machine_without_waiting(
    config: dict,
    readiness: Readiness,
    cluster: ClusterState,
    plane: str,
    reason: str,
    load_cluster: bool,
) -> None:
    chosen = route(
        "aggregate",
        "auto",
        load_config(config, environ={}),
        arrow_ready=True,
        readiness=readiness,
        cluster=cluster,
    )
    assert (chosen.plane, chosen.reason, chosen.load == "cluster") == (plane, reason, load_cluster)
