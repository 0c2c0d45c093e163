"""Health and readiness: each plane's status, the pool and the cache, never an exception."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from fraiseql_nb.config import Config
from fraiseql_nb.pg.conninfo import redact, secrets_of
from fraiseql_nb.pg.pool import connection_kwargs

__all__ = ["HealthInputs", "check_health"]


@dataclass(frozen=True)
class HealthInputs:
    """What health needs to know of a session, handed over by the session itself (health
    never reads a session's internals). ``dsn`` holds the password: it is only used to
    connect, and masked in every reason."""

    dsn: str = field(repr=False)
    config: Config
    closed: bool
    pool: dict[str, Any]
    #: Each plane's own report (None: not configured, left out): ``status`` "database"
    #: (as healthy as the database), "healthy", "disabled" or "unavailable", and what else
    #: it says (``pool``: the pool's gauges, said by the plane whose connections they are).
    planes: dict[str, dict[str, Any] | None] = field(default_factory=dict)


_PROBE_TIMEOUT_S = 3


def check_health(state: HealthInputs) -> dict[str, Any]:
    """``{"status": healthy|degraded|unhealthy, "backends": {...}}`` for a state.

    The database is reached on a new connection (within a few seconds): down, it
    makes every plane that is as healthy as the database (the wire and postgres
    planes, the arrow plane when on) unhealthy and the whole "unhealthy", with the
    reason, password masked. A plane says itself when it is "disabled" by
    configuration or "unavailable" (the arrow plane's packages do not import, a
    configured cluster does not answer), which makes the whole "degraded". A pool
    whose every connection is taken while queries wait for one makes the whole
    "degraded", with the reason.
    """
    reason = None
    if state.closed:
        reason = "the session is closed"
    else:
        # A fresh connection, not the pool: after an outage the pool reconnects
        # with a growing back-off, which should not make a live database look down.
        kwargs = connection_kwargs(state.dsn, state.config)
        kwargs["connect_timeout"] = _PROBE_TIMEOUT_S
        try:
            with psycopg.connect(state.dsn, **kwargs) as conn:
                conn.execute("SELECT 1").fetchone()
        except Exception as exc:  # noqa: BLE001 - any failure is a status, not an exception
            detail = " ".join(str(exc).split()) or type(exc).__name__
            reason = redact(f"the database does not answer: {detail}", secrets_of(state.dsn))
    db = "healthy" if reason is None else "unhealthy"

    backends: dict[str, Any] = {}
    for name, report in state.planes.items():
        if report is not None:
            status = report["status"]
            backends[name] = {**report, "status": db if status == "database" else status}
    for b in backends.values():
        if reason is not None and b["status"] == "unhealthy":
            b["reason"] = reason
    pool = state.pool
    # Every pooled connection taken and requests waiting for one: a query now waits
    # (up to pool_timeout_s) though the database answers.
    exhausted = (
        pool.get("waiting", 0) > 0
        and pool.get("idle", 0) == 0
        and pool.get("size", 0) >= pool.get("max", 0) > 0  # not a pool still growing
    )
    if reason is not None:
        status = "unhealthy"
    elif exhausted or any(b["status"] == "unavailable" for b in backends.values()):
        status = "degraded"
        if exhausted:
            reason = (
                f"all {pool.get('active', 0)} pooled connections are busy and"
                f" {pool['waiting']} quer{'y waits' if pool['waiting'] == 1 else 'ies wait'}"
                " for one ([connections] pool_size)"
            )
            for b in backends.values():
                if "pool" in b:
                    b["reason"] = reason
    else:
        status = "healthy"
    out: dict[str, Any] = {"status": status, "backends": backends}
    if reason is not None:
        out["reason"] = reason
    return out
