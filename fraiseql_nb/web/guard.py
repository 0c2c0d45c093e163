"""What stands in front of every HTTP request, before any route: the URL's and headers'
size, the Origin check (other web pages), the bearer token and the access log
(:class:`Guard`, an ASGI middleware), error answers in JSON whoever made them, and
the requests each client may have running at once (:class:`Clients`)."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fraiseql_nb.config import ServerConfig

__all__ = ["MAX_HEADER_BYTES", "OPEN_PATHS", "Clients", "Guard", "error_response"]

# One line per request; the name predates web/ (logging configurations may name it).
access_logger = logging.getLogger("fraiseql_nb.http.access")
OPEN_PATHS = ("/health",)  # answered without the token (status only)
MAX_HEADER_BYTES = 16 * 1024  # a request's headers, without its request line


def error_response(status: int, message: str, media: str = "application/json") -> Response:
    """``{"errors": [{"message": …}]}``: every answer that is not a 2xx has this body."""
    body = {"errors": [{"message": message}]}
    return JSONResponse(body, status_code=status, media_type=f"{media}; charset=utf-8")


class Guard:
    """Origin check, bearer token and the access log, around every request."""

    def __init__(self, app: ASGIApp, settings: ServerConfig) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        size = 0

        held: list[Message] = []  # a non-JSON error answer, rewritten once whole

        async def counted(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
                if status >= 400 and not is_json(message.get("headers", ())):
                    held.append(message)
                    return
            elif message["type"] == "http.response.body":
                if held:
                    held.append(message)
                    if message.get("more_body", False):
                        return
                    message = await as_json(held, send)
                size += len(message.get("body", b""))
            await send(message)

        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            refusal = self._refusal(scope, headers)
            if refusal is not None:
                await refusal(scope, receive, counted)
            else:
                await self.app(scope, receive, counted)
        finally:
            if self.settings.access_log:
                client = scope.get("client") or ("-", 0)
                access_logger.info(
                    "%s %s %s %d %.1fms %dB",
                    client[0],
                    scope["method"],
                    scope["path"],
                    status,
                    (time.perf_counter() - started) * 1e3,
                    size,
                )

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> Response | None:
        url_bytes = len(scope.get("raw_path") or scope["path"].encode()) + len(
            scope.get("query_string", b"")
        )
        if url_bytes > self.settings.max_url_bytes:
            return error_response(
                414,
                f"the URL is longer than {self.settings.max_url_bytes:,} bytes; [server]"
                " max_url_bytes sets the limit (send long queries with POST)",
            )
        header_bytes = sum(len(k) + len(v) + 4 for k, v in scope["headers"])
        if header_bytes > MAX_HEADER_BYTES:
            return error_response(
                431, f"the request's headers are larger than {MAX_HEADER_BYTES:,} bytes"
            )
        origin = headers.get("origin")
        if origin is not None and not self._origin_allowed(origin, headers.get("host", "")):
            return error_response(
                403,
                f"requests from the web page at {origin[:200]} are not allowed;"
                " add its origin to [server] allowed_origins to allow them",
            )
        if origin is None and headers.get("sec-fetch-site") in ("cross-site", "same-site"):
            # A page's <img>, <script> or form sends no Origin on a GET: the browser's
            # Fetch Metadata still says the request came from another site.
            return error_response(
                403,
                "requests from another site's web page are not allowed: a page may call"
                " this server with fetch() from an origin in [server] allowed_origins",
            )
        if (
            scope["method"] == "OPTIONS"
            and origin is not None
            and "access-control-request-method" in headers
        ):
            return None  # a CORS preflight carries no token: CORS answers it
        state = scope.setdefault("state", {})
        token = self.settings.token
        given = headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        state["authenticated"] = bool(
            token
            and scheme.lower() == "bearer"
            and hmac.compare_digest(value.strip().encode(), token.encode())
        )
        if token and not state["authenticated"] and scope["path"] not in OPEN_PATHS:
            response = error_response(401, "this endpoint needs Authorization: Bearer <token>")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        return None

    def _origin_allowed(self, origin: str, host: str) -> bool:
        """A listed origin, or the page the server itself serves (same host and port)."""
        if origin in self.settings.allowed_origins:
            return True
        try:
            return urlsplit(origin).netloc.lower() == host.lower()
        except ValueError:
            return False


class Clients:
    """Requests running per client address, at most ``limit`` each: one client (17 costly
    requests at once) cannot take every pooled connection from the others. A client's
    further requests wait for one of its own to finish (holding no connection), up to
    ``wait_s``; then 429. Used on the event loop only."""

    def __init__(self, limit: int, wait_s: float) -> None:
        self.limit = limit
        self.wait_s = wait_s
        self._slots: dict[str, tuple[asyncio.Semaphore, int]] = {}  # semaphore, users

    async def enter(self, client: str) -> bool:
        sem, users = self._slots.get(client) or (asyncio.Semaphore(self.limit), 0)
        self._slots[client] = (sem, users + 1)
        if not sem.locked():  # a free slot: taken at once, no timer
            await sem.acquire()
            return True
        try:
            await asyncio.wait_for(sem.acquire(), timeout=self.wait_s)
        except asyncio.TimeoutError:
            self._release_user(client)
            return False
        except BaseException:  # cancelled (the server stopping)
            self._release_user(client)
            raise
        return True

    def leave(self, client: str) -> None:
        self._slots[client][0].release()
        self._release_user(client)

    def _release_user(self, client: str) -> None:
        sem, users = self._slots[client]
        if users <= 1:
            del self._slots[client]
        else:
            self._slots[client] = (sem, users - 1)


def is_json(headers: Any) -> bool:
    for name, value in headers:
        if name.lower() == b"content-type":
            return b"json" in value.lower()
    return False


async def as_json(held: list[Message], send: Send) -> Message:
    """Send the start of an error answer that was not JSON (a middleware's plain text:
    an unknown Host, a refused CORS preflight) as JSON; the body message to send next."""
    start = held[0]
    text = b"".join(m.get("body", b"") for m in held[1:]).decode("utf-8", "replace").strip()
    body = json.dumps({"errors": [{"message": text[:500] or "request refused"}]}).encode()
    headers = [
        (k, v)
        for k, v in start.get("headers", ())
        if k.lower() not in (b"content-type", b"content-length")
    ]
    length = str(len(body)).encode()
    headers += [(b"content-type", b"application/json"), (b"content-length", length)]
    await send({**start, "headers": headers})
    held.clear()
    return {"type": "http.response.body", "body": body}
