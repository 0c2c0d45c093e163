"""Tab completion in ``%%fraiseql`` cells, from the session's GraphQL schema.

Text being typed does not parse, so the text before the cursor is read
token by token, keeping a stack of where it is: a selection set of some
type, a field's arguments, an input object, a value. What may come next is
then read off the graphql-core schema: the type's fields, the field's
arguments, the input's fields, an enum's values. Registered with IPython's
completer (matcher API v2) by ``%load_ext fraiseql_nb``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
)

__all__ = ["complete", "matcher"]

_TOKEN = re.compile(
    r'"""(?:.|\n)*?"""|"(?:\\.|[^"\\\n])*"?|#[^\n]*|\.\.\.|[_A-Za-z][_0-9A-Za-z]*'
    r"|-?\d[\d.eE+-]*|\$[_A-Za-z][_0-9A-Za-z]*|[{}()\[\]:=!@]"
)
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")


def complete(text: str, schema: GraphQLSchema) -> tuple[str, list[tuple[str, str]]]:
    """The partial name at the end of ``text`` and what may complete it: (name, kind) pairs,
    kind being "field", "argument", "input field", "value" or "keyword"."""
    tokens = [t for t in _TOKEN.findall(text) if not t.startswith("#")]
    prefix = ""
    if tokens and _NAME.fullmatch(tokens[-1]) and text.endswith(tokens[-1]):
        prefix = tokens.pop()
    frame = _walk(tokens, schema)
    options = _options(frame)
    return prefix, [(n, k) for n, k in options if n.startswith(prefix) and n != prefix]


# A frame: (kind, GraphQL type or field, pending name). Kinds: "top" (before the
# operation's selection), "vars" (variable definitions), "select", "args", "object",
# "value", "list".
Frame = list[Any]


def _walk(tokens: list[str], schema: GraphQLSchema) -> Frame:
    stack: list[Frame] = [["top", None, None]]
    for tok in tokens:
        kind, what, pending = stack[-1]
        if kind == "top":
            if tok == "(":
                stack.append(["vars", None, None])
            elif tok == "{":
                stack.append(["select", schema.query_type, None])
        elif kind == "vars":
            if tok == ")":
                stack.pop()
        elif kind == "select":
            if tok == "}":
                stack.pop()
            elif tok == "(":
                stack.append(["args", pending, None])
            elif tok == "{":
                inner = get_named_type(pending.type) if isinstance(pending, GraphQLField) else None
                selectable = inner if isinstance(inner, GraphQLObjectType) else None
                stack.append(["select", selectable, None])
            elif tok == ":":
                stack[-1][2] = None  # what came before was an alias
            elif _NAME.fullmatch(tok) and isinstance(what, GraphQLObjectType):
                stack[-1][2] = what.fields.get(tok)
        elif kind in ("args", "object"):
            if tok in (")", "}"):
                stack.pop()
            elif tok == ":":
                owner = _argument_type if kind == "args" else _field_type
                stack.append(["value", owner(what, pending), None])
            elif _NAME.fullmatch(tok):
                stack[-1][2] = tok
        elif kind == "value":
            # One value: an object or a list takes the frame's place; anything else ends it.
            if tok == "{":
                stack[-1] = ["object", _input_object(what), None]
            elif tok == "[":
                stack[-1] = ["list", _item(what), None]
            else:
                stack.pop()
        elif kind == "list":
            if tok == "]":
                stack.pop()
            elif tok == "{":
                stack.append(["object", _input_object(what), None])
            elif tok == "[":
                stack.append(["list", _item(what), None])
    return stack[-1]


def _input_object(gtype: Any) -> GraphQLInputObjectType | None:
    named = get_named_type(gtype) if gtype is not None else None
    return named if isinstance(named, GraphQLInputObjectType) else None


def _item(gtype: Any) -> Any:
    """The item type of a list type (or the type itself: GraphQL coerces one value)."""
    inner = gtype.of_type if isinstance(gtype, GraphQLNonNull) else gtype
    return inner.of_type if isinstance(inner, GraphQLList) else inner


def _argument_type(field: Any, name: str | None) -> Any:
    if isinstance(field, GraphQLField) and name in field.args:
        return field.args[name].type
    return None


def _field_type(input_type: Any, name: str | None) -> Any:
    if isinstance(input_type, GraphQLInputObjectType) and name in input_type.fields:
        return input_type.fields[name].type
    return None


def _options(frame: Frame) -> list[tuple[str, str]]:
    kind, what, _ = frame
    if kind == "top":
        return [("query", "keyword")]
    if kind == "select" and isinstance(what, GraphQLObjectType):
        return [(n, "field") for n in what.fields] + [("__typename", "field")]
    if kind == "args" and isinstance(what, GraphQLField):
        return [(n, "argument") for n in what.args]
    if kind == "object" and isinstance(what, GraphQLInputObjectType):
        # Another spelling of an operator (deprecated) validates but is not offered.
        return [(n, "input field") for n, f in what.fields.items() if f.deprecation_reason is None]
    if kind in ("value", "list"):
        named = get_named_type(what) if what is not None else None
        if isinstance(named, GraphQLEnumType):
            return [(n, "value") for n in named.values]
        if named is not None and named.name == "Boolean":
            return [("true", "value"), ("false", "value")]
    return []


def matcher(schema_of: Callable[[], GraphQLSchema | None]) -> Any:
    """An IPython matcher completing ``%%fraiseql`` cells (and ``%fraiseql { … }`` lines)
    from the schema ``schema_of()`` returns (None when not connected)."""
    from IPython.core.completer import SimpleCompletion, context_matcher

    @context_matcher(identifier="fraiseql")
    def fraiseql_matcher(context: Any) -> dict[str, Any]:
        lines = context.full_text.split("\n")
        before = "\n".join([*lines[: context.cursor_line], context.text_until_cursor])
        if before.startswith("%%fraiseql"):
            text = before.split("\n", 1)[1] if "\n" in before else ""
        elif before.lstrip().startswith("%fraiseql") and "{" in before:
            text = before[before.index("{") :]
        else:
            return {"completions": []}
        schema = schema_of()
        if schema is None or not text:
            return {"completions": []}
        _, found = complete(text, schema)
        return {
            "completions": [SimpleCompletion(text=n, type=k) for n, k in found],
            "suppress": True,
        }

    return fraiseql_matcher
