"""HTTP endpoints over a Session: GraphQL-over-HTTP, health, readiness, Prometheus.

``fraiseql-nb serve`` runs :func:`create_app` with uvicorn (see
:mod:`fraiseql_nb.server`). ``POST /graphql`` takes ``{"query", "variables",
"operationName"}`` as ``application/json`` and answers ``{"data": {...}}``,
or an Arrow IPC stream of the single root field when the request's Accept
asks for ``application/vnd.apache.arrow.stream``. A bad query is a 400 with
GraphQL's ``{"errors": [...]}`` (message and locations); a database failure
a 503 (the details only to an authenticated client); anything else a 500
that says no more than that.

What guards the endpoint, outermost first, each from ``[server]``:
the Host allow-list (DNS rebinding), the Origin check and CORS (other web
pages), the bearer token, then per request: a JSON content type (a page
cannot send one without CORS's consent), the body size and read time, and
:func:`fraiseql_nb.limits.check_request` (fields, depth, lists). One access
log line per request names the client, path, status and time, never the
query, its values or the token.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fraiseql_nb.config import ServerConfig
from fraiseql_nb.errors import BackendError, FraiseQLError, QueryError
from fraiseql_nb.limits import check_request
from fraiseql_nb.result import Result
from fraiseql_nb.session import Session

__all__ = ["ARROW_STREAM", "create_app"]

ARROW_STREAM = "application/vnd.apache.arrow.stream"
logger = logging.getLogger(__name__)
access_logger = logging.getLogger("fraiseql_nb.http.access")
_OPEN_PATHS = ("/health",)  # answered without the token (status only)


def create_app(session: Session, settings: ServerConfig | None = None) -> Starlette:
    """A Starlette app serving ``session``; ``settings`` default to the session's ``[server]``."""
    limits = settings or session.config.server

    async def graphql(request: Request) -> Response:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            return _errors(415, "send the request as Content-Type: application/json")
        body = await _read_body(request, limits)
        if isinstance(body, Response):
            return body
        try:
            parsed = json.loads(body or b"{}", parse_constant=_no_constant)
        except ValueError:
            return _errors(400, "the body is not valid JSON")
        except RecursionError:
            return _errors(400, "the body is not valid JSON: it nests too deeply")
        if not isinstance(parsed, dict) or not isinstance(parsed.get("query"), str):
            return _errors(400, "the body must be a JSON object with a 'query' string")
        variables = parsed.get("variables")
        try:
            check_request(parsed["query"], variables, limits)
        except QueryError as exc:
            return _errors(400, str(exc))
        extensions = parsed.get("extensions") if isinstance(parsed.get("extensions"), dict) else {}
        # The database work is blocking: it runs on a worker thread.
        return await run_in_threadpool(
            _answer,
            session,
            parsed["query"],
            variables,
            parsed.get("operationName"),
            extensions.get("backend", "auto"),
            ARROW_STREAM in request.headers.get("accept", ""),
            _authenticated(request),
        )

    def health(request: Request) -> Response:
        h = session.health()
        status = 503 if h["status"] == "unhealthy" else 200
        if not _authenticated(request):
            # The statuses only: a reason may name the socket path, database or role.
            backends = {k: {"status": v["status"]} for k, v in h.get("backends", {}).items()}
            return JSONResponse({"status": h["status"], "backends": backends}, status_code=status)
        return JSONResponse(h, status_code=status)

    def ready(request: Request) -> Response:
        r = session.ready()
        if not _authenticated(request):
            r = {"ready": r["ready"]}
        return JSONResponse(r, status_code=200 if r["ready"] else 503)

    def metrics(_request: Request) -> Response:
        return Response(session.metrics_text(), media_type=CONTENT_TYPE_LATEST)

    middleware = [
        Middleware(TrustedHostMiddleware, allowed_hosts=list(limits.allowed_hosts)),
        Middleware(_Guard, settings=limits),
    ]
    if limits.allowed_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(limits.allowed_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["content-type", "authorization"],
            )
        )
    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["POST"]),
            Route("/health", health),
            Route("/ready", ready),
            Route("/metrics", metrics),
        ],
        middleware=middleware,
    )


class _Guard:
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

        async def counted(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
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
        origin = headers.get("origin")
        if origin is not None and not self._origin_allowed(origin, headers.get("host", "")):
            return _errors(
                403,
                f"requests from the web page at {origin[:200]} are not allowed;"
                " add its origin to [server] allowed_origins to allow them",
            )
        state = scope.setdefault("state", {})
        token = self.settings.token
        given = headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        state["authenticated"] = bool(
            token
            and scheme.lower() == "bearer"
            and hmac.compare_digest(value.strip().encode(), token.encode())
        )
        if token and not state["authenticated"] and scope["path"] not in _OPEN_PATHS:
            response = _errors(401, "this endpoint needs Authorization: Bearer <token>")
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


async def _read_body(request: Request, limits: ServerConfig) -> bytes | Response:
    """The request body, or the response refusing it: too large (413) or too slow (408)."""
    declared = request.headers.get("content-length")
    too_large = _errors(
        413,
        f"the body is larger than {limits.max_body_bytes:,} bytes;"
        " [server] max_body_bytes sets the limit",
    )
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
        return too_large

    async def read() -> bytes | None:
        chunks = []
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limits.max_body_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    try:
        body = await asyncio.wait_for(read(), timeout=limits.body_timeout_s)
    except asyncio.TimeoutError:
        return _errors(408, f"the body took longer than {limits.body_timeout_s:g} s to arrive")
    except ClientDisconnect:
        return _errors(400, "the client went away while sending the body")
    return too_large if body is None else body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python's json reads NaN and Infinity


def _answer(
    session: Session,
    query: str,
    variables: Any,
    operation: Any,
    backend: Any,
    arrow: bool,
    authenticated: bool,
) -> Response:
    try:
        result = session.execute(query, variables, backend=backend, operation_name=operation)
    except QueryError as exc:
        return JSONResponse(
            {"errors": [_located(m, line, col) for m, line, col in exc.errors]}, status_code=400
        )
    except BackendError as exc:
        logger.warning("the database failed a request: %s", exc)
        return _errors(503, str(exc) if authenticated else _public(exc))
    except FraiseQLError as exc:  # ConfigError (a bad backend name), SchemaError
        return _errors(400, str(exc))
    except Exception:  # a bug must not leak internals (or a DSN) to a client
        logger.exception("unexpected error answering a GraphQL request")
        return _errors(500, "internal server error")
    if arrow:
        if not isinstance(result, Result):
            return _errors(406, "an Arrow stream carries one root field; this query has several")
        return Response(_ipc(result.to_arrow()), media_type=ARROW_STREAM)
    return JSONResponse(result.to_graphql())


def _authenticated(request: Request) -> bool:
    """Whether the request carried the configured token (never when none is configured)."""
    return bool(request.scope.get("state", {}).get("authenticated", False))


def _public(exc: BackendError) -> str:
    """What an unauthenticated client may learn of a database failure: what kind it was,
    never the server's socket path, database or role (the server's log has those)."""
    text = str(exc)
    if text.startswith("the query ran longer than the statement timeout"):
        return text.split(";")[0] + "; narrow the query"
    if "does not exist any more" in text:
        return "a relation this query reads no longer exists; the server must reconnect"
    return "the database could not answer the query; the server's log has the details"


def _located(message: str, line: int | None, column: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"message": message}
    if line is not None and column is not None:
        out["locations"] = [{"line": line, "column": column}]
    return out


def _errors(status: int, message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message}]}, status_code=status)


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()
