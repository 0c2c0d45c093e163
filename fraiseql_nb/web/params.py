"""GraphQL over HTTP's request parameters, read and checked before anything runs (pure:
no session, no I/O): a POST's JSON body or a GET's URL → ``(query, variables,
operationName, extensions)``, else why not; the media type an Accept header prefers;
the operation a document runs and how many root fields it plainly asks for."""

from __future__ import annotations

import json
from typing import Any

from graphql import FieldNode, GraphQLError, OperationDefinitionNode, get_operation_ast, parse
from starlette.requests import Request

__all__ = [
    "ARROW_STREAM",
    "GRAPHQL_RESPONSE",
    "JSON",
    "Params",
    "get_params",
    "negotiate",
    "operation_of",
    "post_params",
    "root_fields",
    "size_of",
]

ARROW_STREAM = "application/vnd.apache.arrow.stream"
GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
_ACCEPTED = {
    GRAPHQL_RESPONSE: GRAPHQL_RESPONSE,
    JSON: JSON,
    ARROW_STREAM: ARROW_STREAM,
    "application/*": JSON,
    "*/*": JSON,
}
#: A request's query, variables, operationName and extensions.
Params = tuple[str, Any, Any, Any]


def post_params(body: bytes) -> Params | str:
    """A POST's GraphQL parameters from its JSON body; else why not (a 400)."""
    try:
        parsed = json.loads(body or b"{}", parse_constant=_no_constant)
    except ValueError:
        return "the body is not valid JSON"
    except RecursionError:
        return "the body is not valid JSON: it nests too deeply"
    if not isinstance(parsed, dict):
        return "the body must be a JSON object with a 'query' string"
    return _checked(parsed)


def size_of(params: Params | str | bytes) -> int:
    if isinstance(params, bytes | str):
        return len(params)
    query, variables, _, _ = params
    return len(query) + (len(json.dumps(variables)) if variables else 0)


def root_fields(operation: OperationDefinitionNode) -> int:
    """Root fields the operation asks for, when its text says it plainly; 1 when it does
    not (fragments, @skip, @include: then the answer is checked once it is computed)."""
    selections = operation.selection_set.selections
    if all(isinstance(s, FieldNode) and not s.directives for s in selections):
        return len(selections)
    return 1


def get_params(request: Request) -> Params | str:
    """A GET's GraphQL parameters from the URL: variables and extensions as JSON text."""
    url = request.query_params
    for name in ("query", "operationName", "variables", "extensions"):
        if len(url.getlist(name)) > 1:
            return f"the {name} parameter is given {len(url.getlist(name))} times; give it once"
    params: dict[str, Any] = {k: url.get(k) for k in ("query", "operationName")}
    for name in ("variables", "extensions"):
        text = url.get(name)
        if text is None or text == "":
            continue
        try:
            params[name] = json.loads(text, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            return f"the {name} parameter is not valid JSON"
    return _checked(params)


def _checked(params: dict[str, Any]) -> Params | str:
    """The four GraphQL-over-HTTP parameters, each of its type or null; else why not."""
    query = params.get("query")
    if not isinstance(query, str):
        return "the request must carry a 'query' string"
    operation = params.get("operationName")
    if operation is not None and not isinstance(operation, str):
        return "operationName must be a string or null"
    for name in ("variables", "extensions"):
        if params.get(name) is not None and not isinstance(params[name], dict):
            return f"{name} must be a JSON object or null"
    return query, params.get("variables"), operation, params.get("extensions")


def negotiate(accept: str | None) -> str | None:
    """The media type to answer in, from an Accept header (None: none acceptable).

    The highest ``q`` wins, the first listed among equals; ``*/*``, ``application/*``
    and no header at all get ``application/json``, which every client reads.
    """
    if accept is None or not accept.strip():
        return JSON
    best: tuple[float, str] | None = None
    for part in accept.split(","):
        media, *options = (p.strip() for p in part.split(";"))
        media = media.lower()
        chosen = _ACCEPTED.get(media)
        if chosen is None:
            continue
        q = 1.0
        for option in options:
            name, _, value = option.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and (best is None or q > best[0]):  # among equals, the first stays
            best = (q, chosen)
    return best[1] if best else None


def operation_of(query: str, operation: str | None) -> OperationDefinitionNode | None:
    """The operation to run (None when the document does not say: the query's own errors
    are reported when it runs)."""
    try:
        document = parse(query, no_location=True)
    except GraphQLError:
        return None
    return get_operation_ast(document, operation)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python's json reads NaN and Infinity
