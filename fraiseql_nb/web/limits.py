"""What one request to the HTTP endpoint may ask for. Pure: no I/O.

A public endpoint must not be knocked over by one cheap request: ten
thousand root aliases would run ten thousand queries, a fragment spread
many times over multiplies the fields, and a list of two million values
costs seconds of CPU before any SQL is sent. These checks run on the
request's text and variables before the session sees them, each against a
``[server]`` setting, and refuse with a :class:`~fraiseql_nb.errors.QueryError`
(HTTP 400) naming the limit and the setting that raises it.
"""

from __future__ import annotations

import functools
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    ListValueNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
)

from fraiseql_nb.config import ServerConfig
from fraiseql_nb.errors import QueryError

__all__ = ["LimitError", "check_request"]


class LimitError(QueryError):
    """A request asks for more than a ``[server]`` limit allows: refused with a 400
    whatever the media type (a GraphQL error in the request is another matter)."""


# Tokens a document may have: enough for any hand-written query, a bound on parsing.
_TOKENS_PER_FIELD = 50


def check_request(text: str, variables: Any, limits: ServerConfig) -> None:
    """Refuse a request that asks for more than ``limits`` allow.

    Raises:
        QueryError: a limit is exceeded (the message names the setting), or the text
            does not parse within the token budget.
    """
    if len(text) > _CACHED_TEXT or not _text_passed(text, limits):
        _check_text(text, limits)
    _check_variables(variables, limits.max_list_length)


# A client repeats its queries: a text that passed is not parsed again (small ones only,
# so the cache stays small). Only passes are remembered, never a refusal's cost.
_CACHED_TEXT = 8 * 1024


@functools.lru_cache(maxsize=512)
def _text_passed(text: str, limits: ServerConfig) -> bool:
    _check_text(text, limits)
    return True


def _check_text(text: str, limits: ServerConfig) -> None:
    try:
        document = parse(text, max_tokens=limits.max_fields * _TOKENS_PER_FIELD)
    except GraphQLError as exc:
        if "tokens" in exc.message and "aborted" in exc.message:
            raise LimitError(exc.message) from None
        where = exc.locations[0] if exc.locations else None
        raise QueryError(
            exc.message,
            line=where.line if where else None,
            column=where.column if where else None,
        ) from None
    _check_selections(document, limits)
    _check_literals(document, limits.max_list_length)


def _too_many(what: str, limit: int, setting: str) -> LimitError:
    return LimitError(f"the request has more than {limit:,} {what}; [server] {setting} allows more")


def _check_selections(document: DocumentNode, limits: ServerConfig) -> None:
    """Root fields, all fields (fragments expanded) and depth, counted without recursion.

    In introspection, ``ofType`` links one type to one other (a list or non-null
    wrapper): it adds no level, so clients' standard introspection query (nine
    ``ofType`` deep) fits; the levels that fan out still count.
    """
    fragments = {
        d.name.value: d.selection_set
        for d in document.definitions
        if isinstance(d, FragmentDefinitionNode)
    }
    for operation in document.definitions:
        if not isinstance(operation, OperationDefinitionNode):
            continue
        roots = 0
        fields = 0
        # (selection set, depth, fragments on the way there: a cycle is graphql-core's to
        # report, whether under __schema or __type)
        stack: list[tuple[SelectionSetNode, int, frozenset[str], bool]] = [
            (operation.selection_set, 1, frozenset(), False)
        ]
        while stack:
            selection_set, depth, seen, introspecting = stack.pop()
            if depth > limits.max_depth:
                raise _too_many("levels of nested selections", limits.max_depth, "max_depth")
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    fields += 1
                    if depth == 1:
                        roots += 1
                    if selection.selection_set is not None:
                        name = selection.name.value
                        inner = introspecting or (depth == 1 and name in ("__schema", "__type"))
                        step = 0 if introspecting and name == "ofType" else 1
                        stack.append((selection.selection_set, depth + step, seen, inner))
                elif isinstance(selection, InlineFragmentNode):
                    stack.append((selection.selection_set, depth, seen, introspecting))
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    if name in fragments and name not in seen:
                        stack.append((fragments[name], depth, seen | {name}, introspecting))
            if roots > limits.max_root_fields:
                raise _too_many("root fields", limits.max_root_fields, "max_root_fields")
            if fields > limits.max_fields:
                raise _too_many("fields (fragments expanded)", limits.max_fields, "max_fields")


def _check_literals(document: DocumentNode, max_length: int) -> None:
    """List values written in the text."""
    stack: list[Node] = list(document.definitions)
    while stack:
        node = stack.pop()
        if isinstance(node, ListValueNode) and len(node.values) > max_length:
            raise _too_many("values in one list", max_length, "max_list_length")
        for key in node.keys:
            child = getattr(node, key, None)
            if isinstance(child, Node):
                stack.append(child)
            elif isinstance(child, tuple):
                stack.extend(c for c in child if isinstance(c, Node))


def _check_variables(variables: Any, max_length: int) -> None:
    """List values given in the variables (JSON), at any depth."""
    stack = [variables]
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            if len(value) > max_length:
                raise _too_many("values in one list", max_length, "max_list_length")
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
