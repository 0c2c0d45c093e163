"""Health and readiness: each plane's status, the pool and the cache, never an exception."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg

from fraiseql_nb.conninfo import redact, secrets_of
from fraiseql_nb.pool import connection_kwargs

if TYPE_CHECKING:
    from fraiseql_nb.session import Session

__all__ = ["check_health"]

_PROBE_TIMEOUT_S = 3


def check_health(session: Session) -> dict[str, Any]:
    """``{"status": healthy|degraded|unhealthy, "backends": {...}}`` for ``session``.

    The database is reached on a new connection (within a few seconds): down, it
    makes the wire and postgres planes unhealthy and the whole "unhealthy",
    with the reason, password masked. The arrow plane is "disabled" by
    configuration, "unavailable" (making the whole "degraded") when its
    packages do not import.
    """
    reason = None
    if session.closed:
        reason = "the session is closed"
    else:
        # A fresh connection, not the pool: after an outage the pool reconnects
        # with a growing back-off, which should not make a live database look down.
        kwargs = connection_kwargs(session._dsn, session.config)
        kwargs["connect_timeout"] = _PROBE_TIMEOUT_S
        try:
            with psycopg.connect(session._dsn, **kwargs) as conn:
                conn.execute("SELECT 1").fetchone()
        except Exception as exc:  # noqa: BLE001 - any failure is a status, not an exception
            detail = " ".join(str(exc).split()) or type(exc).__name__
            reason = redact(f"the database does not answer: {detail}", secrets_of(session._dsn))
    db = "healthy" if reason is None else "unhealthy"

    backends: dict[str, Any] = {}
    wire_on = session.config.backends.use_wire_backend
    backends["wire"] = {
        "status": db if wire_on else "disabled",
        "pool": session.pool_stats(),
    }
    arrow_status = (
        "disabled"
        if not session.config.backends.use_arrow_backend
        else "unavailable"
        if not session._arrow_ready
        else db
    )
    cache = session.cache_stats()
    backends["arrow"] = {
        "status": arrow_status,
        "cache": {k: cache[k] for k in ("entries", "bytes", "hit_rate")},
    }
    backends["postgres"] = {"status": db}
    for b in backends.values():
        if reason is not None and b["status"] == "unhealthy":
            b["reason"] = reason
    if reason is not None:
        status = "unhealthy"
    elif arrow_status == "unavailable":
        status = "degraded"
    else:
        status = "healthy"
    out: dict[str, Any] = {"status": status, "backends": backends}
    if reason is not None:
        out["reason"] = reason
    return out
