"""Running the HTTP app with uvicorn, hardened: what ``fraiseql-nb serve`` starts.

uvicorn bounds the connections (``limit_concurrency``: a 503 beyond), the
idle time between requests (``timeout_keep_alive``) and the size of a
request's head (h11's incomplete-event limit), but not the time a client
may take to send that head: :class:`_HeadDeadline` adds it, so a client
that opens connections and trickles bytes cannot hold them. The body's
read time is bounded by the app (:mod:`fraiseql_nb.http`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import sys
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from fraiseql_nb.config import LOOPBACK_HOSTS, ServerConfig
from fraiseql_nb.errors import ConfigError
from fraiseql_nb.http import create_app
from fraiseql_nb.session import Session

__all__ = ["check_exposure", "is_loopback", "uvicorn_config"]

_HEAD_BYTES = 16 * 1024  # a request line and headers larger than this are refused


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the server reachable from this machine only."""
    if host.strip("[]") in ("localhost", *(h.strip("[]") for h in LOOPBACK_HOSTS)):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, settings: ServerConfig) -> ServerConfig:
    """The settings to serve on ``host`` with, or a ConfigError when that would be unsafe.

    Beyond loopback a token is required; a specific bind address is added to the
    Host allow-list, a wildcard one (0.0.0.0) needs the names clients use listed.
    """
    if is_loopback(host):
        return settings
    if not settings.token:
        raise ConfigError(
            f"serving on {host} reaches beyond this machine: set a bearer token with"
            " $FRAISEQL_SERVER_TOKEN (or [server] token) first",
            key="server.token",
        )
    if host in ("0.0.0.0", "::", ""):
        if tuple(settings.allowed_hosts) == LOOPBACK_HOSTS:
            raise ConfigError(
                f"serving on {host or 'every address'}: list the host names clients will use"
                " in [server] allowed_hosts (or $FRAISEQL_SERVER_ALLOWED_HOSTS; '*' for any)",
                key="server.allowed_hosts",
            )
        return settings
    shown = f"[{host}]" if ":" in host else host
    if shown in settings.allowed_hosts or "*" in settings.allowed_hosts:
        return settings
    from dataclasses import replace

    return replace(settings, allowed_hosts=(*settings.allowed_hosts, shown))


def uvicorn_config(
    session: Session, host: str, port: int, settings: ServerConfig
) -> uvicorn.Config:
    """uvicorn's configuration for serving ``session`` with ``settings``' limits."""
    settings = check_exposure(host, settings)
    _log_access(settings.access_log)
    return uvicorn.Config(
        create_app(session, settings),
        host=host,
        port=port,
        http=_with_head_deadline(settings.header_timeout_s),
        timeout_keep_alive=settings.keepalive_timeout_s,
        limit_concurrency=settings.max_connections,
        h11_max_incomplete_event_size=_HEAD_BYTES,
        access_log=False,  # ours names no query string (GET queries carry values)
        log_level="warning",
        server_header=False,
    )


def _log_access(enabled: bool) -> None:
    log = logging.getLogger("fraiseql_nb.http.access")
    if enabled and not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


class _HeadDeadline(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's head."""

    head_timeout_s = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request's head arrived whole
            self._disarm()

    def on_response_complete(self) -> None:
        self._arm()  # the next request's head is due (pipelined ones disarm it at once)
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.head_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()


def _with_head_deadline(seconds: float) -> type[H11Protocol]:
    return type("HeadDeadlineH11", (_HeadDeadline,), {"head_timeout_s": seconds})
