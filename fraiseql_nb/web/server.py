"""Running the HTTP app with uvicorn, hardened: what ``fraiseql-nb serve`` starts.

uvicorn bounds the idle time between requests (``timeout_keep_alive``) and
the size of a request's head (h11's incomplete-event limit), but not the time
a client may take to send that head: :class:`_Protocol` adds it, so a client
that opens connections and trickles bytes cannot hold them. It also answers
what uvicorn would answer in plain text, or not at all, in JSON: a head too
large (414 when the request line alone is, 431 otherwise), an invalid request
(400), too many connections (503; at the limit, the oldest unused connection
of a client holding more than ``max_client_connections`` unused ones is closed
first, so one client's half-sent heads cannot hold every slot) — and reads
what the client still sends
before closing, so the answer reaches it instead of a connection reset. The
body's read time is bounded by the app (:mod:`fraiseql_nb.web.http`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import sys
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.utils import ClientDisconnected

from fraiseql_nb.config import LOOPBACK_HOSTS, ServerConfig
from fraiseql_nb.errors import ConfigError
from fraiseql_nb.session import Session
from fraiseql_nb.web.guard import MAX_HEADER_BYTES
from fraiseql_nb.web.http import create_app

__all__ = ["check_exposure", "is_loopback", "uvicorn_config"]

_LINGER_S = 2.0  # how long a refused client may go on sending before the socket closes
_SWITCH_INTERVAL_S = 0.0005


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
    # Requests are parsed and answered on worker threads: under the GIL a thread parsing
    # a large document holds the event loop for up to the switch interval at each of the
    # many points an answer needs it (5 ms each by default: a 404 beside a 0.6 s parse
    # took 30 ms at the median, 1.3 s at worst); a shorter interval shares it finer.
    sys.setswitchinterval(_SWITCH_INTERVAL_S)
    return uvicorn.Config(
        create_app(session, settings),
        host=host,
        port=port,
        http=_protocol(settings),
        timeout_keep_alive=settings.keepalive_timeout_s,
        # The URL is checked by the app (a JSON 414); h11 refuses what is far beyond it.
        h11_max_incomplete_event_size=settings.max_url_bytes + MAX_HEADER_BYTES,
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


class _Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's head, a connection limit
    and JSON answers where uvicorn would answer in plain text or reset the connection."""

    head_timeout_s = 10.0
    max_connections = 64
    max_client_connections = 16
    max_url_bytes = 65_536

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._head_bytes = 0  # of the head being received
        self._line_seen = False  # whether its request line is complete
        self._lingering = False
        self._since = 0.0  # when the connection was made
        self.limit_concurrency = None  # ours answers in JSON: see _limited
        self.app = self._limited(self.app)

    def _limited(self, app: Any) -> Any:
        async def limited(scope: Any, receive: Any, send: Any) -> None:
            # This request's task is already counted; uvicorn's rule otherwise.
            busy = len(self.connections) > self.max_connections or (
                len(self.tasks) > self.max_connections
            )
            if busy and scope["type"] == "http":
                body = _error_body("the server is at its connection limit; try again shortly")
                headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ]
                await send({"type": "http.response.start", "status": 503, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await app(scope, receive, send)

        return limited

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._since = self.loop.time()
        if len(self.connections) > self.max_connections:
            victim = self._hoarder()
            if victim is not None:
                victim._refuse(
                    "this client holds more connections than its share while others wait"
                    " ([server] max_client_connections): this one, unused, is closed"
                )
        self._arm()

    def _hoarder(self) -> _Protocol | None:
        """At the connection limit: the oldest unused connection (no request, or a head
        still arriving) of the client address holding the most such connections, when
        that is more than its share — a client's half-sent heads cannot shut others out
        for ``header_timeout_s`` (70 of them once answered every client 503 for 10 s)."""
        unused: dict[str, list[_Protocol]] = {}
        for c in self.connections:
            if isinstance(c, _Protocol) and c.client and not c._lingering and c._unused():
                unused.setdefault(c.client[0], []).append(c)
        if not unused:
            return None
        most = max(unused.values(), key=len)
        if len(most) <= self.max_client_connections:
            return None
        return min(most, key=lambda c: c._since)

    def _unused(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _refuse(self, message: str) -> None:
        """Answer 503 in JSON and close, before any request of this connection."""
        body = _error_body(message)
        head = (
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self.connections.discard(self)  # it holds no slot while it lingers
        self._linger()

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # an answer was sent: what follows is read and dropped
        if self.cycle is None or self.cycle.response_complete:  # a head is arriving
            if not self._line_seen:
                self._line_seen = b"\n" in data
            self._head_bytes += len(data)
        super().data_received(data)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request's head arrived whole
            self._disarm()
            self._head_bytes, self._line_seen = 0, False

    def send_400_response(self, msg: str) -> None:
        """What h11 refused: a head too large, or not HTTP at all."""
        limit = self.max_url_bytes + MAX_HEADER_BYTES
        if self._head_bytes > limit and not self._line_seen:
            status, message = (
                414,
                (
                    f"the URL is longer than {self.max_url_bytes:,} bytes; [server] max_url_bytes"
                    " sets the limit (send long queries with POST)"
                ),
            )
        elif self._head_bytes > limit:
            status, message = (
                431,
                f"the request's headers are larger than {MAX_HEADER_BYTES:,} bytes",
            )
        else:
            status, message = 400, "this is not a valid HTTP/1.1 request"
        body = _error_body(message)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        try:
            if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                head = h11.Response(status_code=status, headers=headers)
                self.transport.write(self.conn.send(head))
                self.transport.write(self.conn.send(h11.Data(data=body)))
                self.transport.write(self.conn.send(h11.EndOfMessage()))
        except (h11.LocalProtocolError, ClientDisconnected):
            pass
        self._linger()

    def _linger(self) -> None:
        """Close for writing, drop what the client still sends, close after a while: a
        socket closed with unread data resets the connection, and the answer is lost."""
        self._lingering = True
        self._disarm()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(_LINGER_S, self.transport.close)

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


def _error_body(message: str) -> bytes:
    return json.dumps({"errors": [{"message": message}]}).encode()


def _protocol(settings: ServerConfig) -> type[H11Protocol]:
    return type(
        "FraiseQLH11",
        (_Protocol,),
        {
            "head_timeout_s": settings.header_timeout_s,
            "max_connections": settings.max_connections,
            "max_client_connections": settings.client_connections(),
            "max_url_bytes": settings.max_url_bytes,
        },
    )
