"""HTTP endpoints over a Session: GraphQL-over-HTTP, health, readiness, Prometheus.

``fraiseql-nb serve`` runs :func:`create_app` with uvicorn. ``POST /graphql``
takes ``{"query", "variables", "operationName"}`` and answers
``{"data": {...}}``, or an Arrow IPC stream of the single root field when the
request's Accept asks for ``application/vnd.apache.arrow.stream``. A bad
query is a 400 with GraphQL's ``{"errors": [...]}`` (message and locations);
a database failure a 503 with the message, password masked; anything else
a 500 that says no more than that.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pyarrow as pa
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fraiseql_nb.errors import BackendError, FraiseQLError, QueryError
from fraiseql_nb.result import Result
from fraiseql_nb.session import Session

__all__ = ["ARROW_STREAM", "create_app"]

ARROW_STREAM = "application/vnd.apache.arrow.stream"
logger = logging.getLogger(__name__)


def create_app(session: Session) -> Starlette:
    """A Starlette app serving ``session``."""

    async def graphql(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return _errors(400, [{"message": "the body is not valid JSON"}])
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return _errors(
                400, [{"message": "the body must be a JSON object with a 'query' string"}]
            )
        extensions = body.get("extensions") if isinstance(body.get("extensions"), dict) else {}
        backend = extensions.get("backend", "auto")
        # The database work is blocking: it runs on a worker thread.
        return await run_in_threadpool(
            _answer,
            session,
            body["query"],
            body.get("variables"),
            body.get("operationName"),
            backend,
            ARROW_STREAM in request.headers.get("accept", ""),
        )

    def health(_request: Request) -> Response:
        h = session.health()
        return JSONResponse(h, status_code=503 if h["status"] == "unhealthy" else 200)

    def ready(_request: Request) -> Response:
        r = session.ready()
        return JSONResponse(r, status_code=200 if r["ready"] else 503)

    def metrics(_request: Request) -> Response:
        return Response(session.metrics_text(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["POST"]),
            Route("/health", health),
            Route("/ready", ready),
            Route("/metrics", metrics),
        ]
    )


def _answer(
    session: Session, query: str, variables: Any, operation: Any, backend: str, arrow: bool
) -> Response:
    try:
        result = session.execute(query, variables, backend=backend, operation_name=operation)
    except QueryError as exc:
        return _errors(400, [_located(m, line, col) for m, line, col in exc.errors])
    except BackendError as exc:
        return _errors(503, [{"message": str(exc)}])
    except FraiseQLError as exc:  # ConfigError (a bad backend name), SchemaError
        return _errors(400, [{"message": str(exc)}])
    except Exception:  # a bug must not leak internals (or a DSN) to a client
        logger.exception("unexpected error answering a GraphQL request")
        return _errors(500, [{"message": "internal server error"}])
    if arrow:
        if not isinstance(result, Result):
            return _errors(
                406, [{"message": "an Arrow stream carries one root field; this query has several"}]
            )
        return Response(_ipc(result.to_arrow()), media_type=ARROW_STREAM)
    return JSONResponse(result.to_graphql())


def _located(message: str, line: int | None, column: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"message": message}
    if line is not None and column is not None:
        out["locations"] = [{"line": line, "column": column}]
    return out


def _errors(status: int, errors: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"errors": errors}, status_code=status)


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()
