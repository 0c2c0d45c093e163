"""HTTP endpoints over a Session: GraphQL over HTTP, health, readiness, Prometheus.

``fraiseql-nb serve`` runs :func:`create_app` with uvicorn (see
:mod:`fraiseql_nb.web.server`). ``/graphql`` follows the GraphQL over HTTP
specification: POST with an ``application/json`` body (``query``,
``operationName``, ``variables``, ``extensions``, each possibly null), GET
for queries (mutations: 405), and the answer in the media type the
``Accept`` header prefers: ``application/graphql-response+json`` (a request
error is a 400), ``application/json`` (a request error is a 200 with
``errors``), or an Arrow IPC stream of the single root field. A database
failure is a 503 (the details only to an authenticated client); anything
else a 500 that says no more than that. Every answer that is not a 2xx
carries a JSON ``{"errors": [{"message": …}]}`` body, whoever produced it
(a route, a middleware, the server). docs/http.md has the whole table.

What guards the endpoint, outermost first, each from ``[server]``: the URL's
length, the Origin check (other web pages), the bearer token
(:mod:`fraiseql_nb.web.guard`), the Host allow-list (DNS rebinding) and CORS, then
per request: a JSON content type (a page
cannot send one without CORS's consent), the body size and read time, and
:func:`fraiseql_nb.web.limits.check_request` (fields, depth, lists). One access
log line per request names the client, path, status and time, never the
query, its values or the token.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pyarrow as pa
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fraiseql_nb.config import ServerConfig
from fraiseql_nb.errors import BackendError, FraiseQLError, QueryError
from fraiseql_nb.ops.budget import ResultLimitError
from fraiseql_nb.pg.deadline import Deadline, RequestTimeLimitError, within
from fraiseql_nb.result import Result
from fraiseql_nb.session import Session
from fraiseql_nb.web.guard import Clients, Guard, error_response
from fraiseql_nb.web.limits import LimitError, check_request
from fraiseql_nb.web.params import (
    ARROW_STREAM,
    GRAPHQL_RESPONSE,
    JSON,
    Params,
    get_params,
    negotiate,
    operation_of,
    post_params,
    root_fields,
    size_of,
)

__all__ = ["ARROW_STREAM", "GRAPHQL_RESPONSE", "create_app", "negotiate"]

logger = logging.getLogger(__name__)


def create_app(session: Session, settings: ServerConfig | None = None) -> Starlette:
    """A Starlette app serving ``session``; ``settings`` default to the session's ``[server]``."""
    limits = settings or session.config.server

    clients = Clients(
        limits.max_client_requests or max(1, session.config.connections.pool_size // 2),
        limits.max_request_s,
    )

    async def graphql(request: Request) -> Response:
        media = negotiate(request.headers.get("accept"))
        if media is None:
            return _errors(
                406,
                f"this endpoint answers {GRAPHQL_RESPONSE}, {JSON} or {ARROW_STREAM};"
                " none of them is in the request's Accept header",
                JSON,
            )
        reads_url = request.method in ("GET", "HEAD")  # HEAD: a GET without the body
        if reads_url:
            params: Params | str | Response | bytes = get_params(request)
        else:
            params = await _post_body(request, limits)
        if isinstance(params, Response):
            return params
        # Parsing and checking the request is CPU work (a 200 KB document takes a good
        # part of a second): on a worker thread, so other clients' answers do not wait;
        # a small request (most) is done at once, cheaper than the thread's hand-over.
        if size_of(params) <= _INLINE_BYTES:
            prepared = _prepare(params, limits, media, reads_url)
        else:
            prepared = await run_in_threadpool(_prepare, params, limits, media, reads_url)
        if isinstance(prepared, Response):
            return prepared
        query, variables, operation, extensions = prepared
        client = request.client.host if request.client is not None else "-"
        if not await clients.enter(client):
            response = _errors(
                429,
                f"this client had {clients.limit} requests running (the most one client may"
                f" have at once: [server] max_client_requests) for the {clients.wait_s:g} s"
                " this one waited; send the next when one has been answered",
                media,
            )
            response.headers["Retry-After"] = "1"
            return response
        try:
            return await _run(
                request,
                Deadline(limits.max_request_s),
                session,
                query,
                variables,
                operation,
                (extensions or {}).get("backend", "auto"),
                media,
                _authenticated(request),
            )
        finally:
            clients.leave(client)

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

    middleware = [  # outermost first: the guard logs, and turns any refusal into JSON
        Middleware(Guard, settings=limits),
        Middleware(TrustedHostMiddleware, allowed_hosts=list(limits.allowed_hosts)),
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
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/health", health),
            Route("/ready", ready),
            Route("/metrics", metrics),
        ],
        middleware=middleware,
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
    )
    # /graphql/ is not /graphql: a 404 that says which paths there are, not a bodiless 307.
    app.router.redirect_slashes = False
    return app


_PATHS = "/graphql, /health, /ready and /metrics"


def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such path, a method the path does not take) in JSON."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"there is nothing at {request.url.path[:200]}; this server answers {_PATHS}"
    elif exc.status_code == 405:
        methods = (exc.headers or {}).get("Allow", "GET").split(",")
        allowed = ", ".join(sorted(m.strip() for m in methods))  # Starlette's is a set's order
        message = f"{request.method} is not allowed on {request.url.path}: use {allowed}"
        exc.headers = {**(exc.headers or {}), "Allow": allowed}
    else:
        message = str(exc.detail)
    response = _errors(exc.status_code, message)
    response.headers.update(exc.headers or {})
    return response


def _internal_error(_request: Request, _exc: Exception) -> Response:
    return _errors(500, "internal server error")


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


async def _post_body(request: Request, limits: ServerConfig) -> bytes | Response:
    """A POST's body (its JSON is read on a worker thread), or the response refusing it."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != JSON:
        return _errors(415, "send the request as Content-Type: application/json", JSON)
    return await _read_body(request, limits)


_INLINE_BYTES = 4096  # parsed on the event loop: well under a millisecond


def _prepare(
    params: Params | str | bytes, limits: ServerConfig, media: str, reads_url: bool
) -> Params | Response:
    """The request's parameters, checked against the limits, or the response refusing it
    — all before any statement runs (a worker thread's work: parsing is CPU)."""
    if isinstance(params, bytes):
        params = post_params(params)
    if isinstance(params, str):
        return _errors(400, params, media)
    query, variables, operation, _ = params
    try:
        check_request(query, variables, limits)
    except LimitError as exc:
        return _errors(400, str(exc), media)
    except QueryError as exc:
        return _request_error(exc, media)
    found = operation_of(query, operation)
    if reads_url and found is not None and found.operation.value != "query":
        response = _errors(405, "GET runs queries only: send mutations with POST", media)
        response.headers["Allow"] = "POST"
        return response
    if media == ARROW_STREAM and found is not None and root_fields(found) > 1:
        return _errors(406, "an Arrow stream carries one root field; this query has several")
    return params


async def _run(request: Request, limit: Deadline, *args: Any) -> Response:
    """Answer on a worker thread under the request's deadline; a client that goes away
    meanwhile has the request's running statement cancelled and no other started."""
    work = asyncio.ensure_future(run_in_threadpool(_answer, limit, *args))
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
        if not work.done():
            # Blocking (a cancel request per statement), on a thread of its own: the shared
            # worker threads may all be taken by requests waiting for a connection.
            await asyncio.to_thread(limit.cancel)
        return await work  # quickly, once cancelled: answering no one
    finally:
        gone.cancel()


async def _disconnected(request: Request) -> None:
    """Return when the client disconnects (the body, if any, was read before)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _answer(
    limit: Deadline,
    session: Session,
    query: str,
    variables: Any,
    operation: Any,
    backend: Any,
    media: str,
    authenticated: bool,
) -> Response:
    try:
        with within(limit):
            result = session.execute(query, variables, backend=backend, operation_name=operation)
    except ResultLimitError as exc:  # the answer would pass [limits] max_result_mb
        return _errors(413, str(exc), media)
    except RequestTimeLimitError as exc:  # past [server] max_request_s, or the client left
        return _errors(503, str(exc), media)
    except QueryError as exc:
        return _request_error(exc, media)
    except BackendError as exc:
        logger.warning("the database failed a request: %s", exc)
        return _errors(503, str(exc) if authenticated else _public(exc), media)
    except FraiseQLError as exc:  # ConfigError (a bad backend name), SchemaError
        return _request_error(QueryError(str(exc)), media)
    except Exception:  # a bug must not leak internals (or a DSN) to a client
        logger.exception("unexpected error answering a GraphQL request")
        return _errors(500, "internal server error", media)
    if media == ARROW_STREAM:
        if not isinstance(result, Result):  # several, through fragments or directives
            return _errors(406, "an Arrow stream carries one root field; this query has several")
        return Response(_ipc(result.to_arrow()), media_type=ARROW_STREAM)
    return _json(result.to_graphql(), 200, media)


def _request_error(exc: QueryError, media: str) -> Response:
    """A GraphQL request error (parse, validation, variables): 200 with ``errors`` under
    application/json, 400 under application/graphql-response+json, as the spec says."""
    status = 200 if media == JSON else 400
    body = {"errors": [_located(m, line, col) for m, line, col in exc.errors]}
    return _json(body, status, media)


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


def _errors(status: int, message: str, media: str = JSON) -> Response:
    return error_response(status, message, GRAPHQL_RESPONSE if media == GRAPHQL_RESPONSE else JSON)


def _json(body: dict[str, Any], status: int, media: str) -> Response:
    """A JSON body in the negotiated JSON media type (errors of an Arrow request: JSON)."""
    media = GRAPHQL_RESPONSE if media == GRAPHQL_RESPONSE else JSON
    return JSONResponse(body, status_code=status, media_type=f"{media}; charset=utf-8")


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()
