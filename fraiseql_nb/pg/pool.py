"""The psycopg connection pool every plane draws from, and its health figures.

Connections are read-only (``default_transaction_read_only``), carry a
``statement_timeout``, a UTC (or configured) time zone and an
``application_name``, run in autocommit (each statement its own
transaction), and are checked on checkout when they sat idle for a while, so
that a restarted server or a killed backend costs one reconnect, not an
error. A connection back from a query less than ``_FRESH_S`` ago is handed out
unchecked (a round trip saved per query under load); should it have died in
between, the planes run their statement once more on another connection.
"""

from __future__ import annotations

import re
import time
import weakref
from typing import Any

from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from fraiseql_nb.config import Config
from fraiseql_nb.errors import BackendError, ConfigError
from fraiseql_nb.pg.db import connect

__all__ = [
    "APPLICATION_NAME",
    "PoolTimeout",
    "connection_kwargs",
    "open_pool",
    "own_timeout",
    "pool_stats",
    "probe",
    "set_timeout",
]

APPLICATION_NAME = "fraiseql-nb"
_TIMEZONE = re.compile(r"^[A-Za-z0-9_+\-/]+$")
_FRESH_S = 2.0
_returned: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
_retimed: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()  # set_timeout


def connection_kwargs(
    dsn: str, config: Config, *, application_name: str = APPLICATION_NAME
) -> dict[str, Any]:
    """libpq parameters of a plane connection (they override the DSN's own)."""
    wire = config.connections
    timezone = config.routing.timezone
    if not _TIMEZONE.match(timezone):
        raise ConfigError(
            f"routing.timezone {timezone!r} is not a time zone name", key="routing.timezone"
        )
    ours = (
        f"-c default_transaction_read_only=on -c statement_timeout={wire.statement_timeout_ms}"
        f" -c TimeZone={timezone}"
    )
    existing = conninfo_to_dict(dsn).get("options")
    kwargs: dict[str, Any] = {
        "autocommit": True,
        "application_name": application_name,
        "connect_timeout": wire.connect_timeout_s,
        "options": f"{existing} {ours}" if existing else ours,
    }
    if wire.enable_tls:
        kwargs["sslmode"] = "require"
    return kwargs


def open_pool(dsn: str, config: Config, *, name: str = "fraiseql-nb") -> ConnectionPool:
    """Open the pool; an unreachable DSN raises BackendError (password masked) at once."""
    kwargs = connection_kwargs(dsn, config)
    # One direct connection first: its error says why, where the pool would only time out.
    probe(dsn, config)
    wire = config.connections
    pool: ConnectionPool = ConnectionPool(
        dsn,
        kwargs=kwargs,
        min_size=1,
        max_size=wire.pool_size,
        open=False,
        check=_check,
        reset=_stamp,
        timeout=wire.pool_timeout_s,
        name=name,
    )
    try:
        pool.open(wait=True, timeout=wire.connect_timeout_s)
    except PoolTimeout:
        pool.close()
        raise BackendError(
            f"could not open a connection pool within {wire.connect_timeout_s} s"
        ) from None
    return pool


def probe(dsn: str, config: Config) -> None:
    """Connect once, directly: raises BackendError saying why the database does not answer."""
    kwargs = {k: v for k, v in connection_kwargs(dsn, config).items() if k != "autocommit"}
    connect(dsn, autocommit=True, **kwargs).close()


def set_timeout(conn: Any, timeout_ms: int) -> None:
    """Give ``conn``'s next statements this statement_timeout (a request's time left; a
    round trip unless it has it already); :func:`own_timeout` puts the configured one
    back when a use without one takes it."""
    if _retimed.get(conn) != timeout_ms:
        conn.execute("SELECT set_config('statement_timeout', %s, false)", (str(timeout_ms),))
        _retimed[conn] = timeout_ms


def own_timeout(conn: Any) -> None:
    """Put back the configured statement_timeout if a request changed it (RESET returns
    to the connection's startup option): a round trip only then."""
    if conn in _retimed:
        conn.execute("RESET statement_timeout")
        _retimed.pop(conn, None)  # only once it is back


def _stamp(conn: Any) -> None:
    """Note when a connection came back to the pool (its reset hook)."""
    _returned[conn] = time.monotonic()


def _check(conn: Any) -> None:
    """psycopg_pool's check (an empty query), skipped for a connection used just now."""
    if conn.broken or time.monotonic() - _returned.get(conn, 0.0) > _FRESH_S:
        ConnectionPool.check_connection(conn)


def pool_stats(pool: ConnectionPool | None) -> dict[str, int]:
    """Pool gauges: size, idle, active, waiting, max."""
    if pool is None:
        return {"size": 0, "idle": 0, "active": 0, "waiting": 0, "max": 0}
    stats = pool.get_stats()
    size = stats.get("pool_size", 0)
    idle = stats.get("pool_available", 0)
    return {
        "size": size,
        "idle": idle,
        "active": max(size - idle, 0),
        "waiting": stats.get("requests_waiting", 0),
        "max": pool.max_size,
    }
