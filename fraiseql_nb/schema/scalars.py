"""The GraphQL scalars and operand types the query language adds to GraphQL's own: a
64-bit integer, ISO 8601 dates and times, JSON (bounded in depth and size), a text
search, vectors and text sets with a threshold. Each parses and checks its value
where graphql-core validates a query, so a bad value is a located error."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from graphql import (
    GraphQLBoolean,
    GraphQLFloat,
    GraphQLID,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLString,
    IntValueNode,
    StringValueNode,
    ValueNode,
    value_from_ast_untyped,
)

from fraiseql_nb.language.operators import DISTANCES
from fraiseql_nb.language.vocabulary import POLARS_TRUNCATE

__all__ = [
    "JSON",
    "MAX_JSON_DEPTH",
    "SCALAR_TYPES",
    "BigInt",
    "Date",
    "DateTime",
    "OutputName",
    "TextSearch",
    "TextSetThreshold",
    "TimeGroup",
    "VectorOrder",
    "VectorThreshold",
    "operand_type",
]


_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$"
)


def _parse_bigint(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"BigInt cannot represent {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"BigInt cannot represent {value!r}") from None


def _parse_bigint_literal(node: ValueNode, _variables: Any = None) -> int:
    if isinstance(node, (IntValueNode, StringValueNode)):
        return _parse_bigint(node.value)
    raise ValueError("BigInt cannot represent a non-integer value")


def _temporal(name: str, *, date_only: bool) -> GraphQLScalarType:
    def parse(value: Any) -> str:
        if not isinstance(value, str) or not _DATETIME.match(value):
            raise ValueError(f"{name} cannot represent {value!r}: expected ISO 8601 text")
        text = value.replace("Z", "+00:00").replace(" ", "T", 1)
        try:
            if date_only:
                dt.date.fromisoformat(text)
            else:
                offset = dt.datetime.fromisoformat(text).utcoffset()
                if offset is not None and abs(offset) >= dt.timedelta(hours=16):
                    raise ValueError("a time zone offset is at most ±15:59")
        except ValueError as exc:
            raise ValueError(f"{name} cannot represent {value!r}: {exc}") from None
        return value

    def parse_literal(node: ValueNode, _variables: Any = None) -> str:
        if not isinstance(node, StringValueNode):
            raise ValueError(f"{name} cannot represent a non-string value")
        return parse(node.value)

    pattern = "YYYY-MM-DD" if date_only else "YYYY-MM-DD[THH:MM[:SS[.ffffff]]][Z|±HH:MM]"
    return GraphQLScalarType(
        name,
        parse_value=parse,
        parse_literal=parse_literal,
        description=f"ISO 8601 text: {pattern}",
    )


#: How deep a JSON argument may nest (deeper values are refused, not recursed into).
MAX_JSON_DEPTH = 32


def _json_value(value: Any) -> Any:
    """``value`` if it is plain JSON: finite numbers, text, booleans, null, lists and
    objects with text keys, at most :data:`MAX_JSON_DEPTH` deep. Checked without
    recursion, so that a hostile value cannot exhaust the stack."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"JSON values nest at most {MAX_JSON_DEPTH} deep")
        if isinstance(item, int) and not isinstance(item, bool) and item.bit_length() > 3300:
            raise ValueError("JSON numbers have at most 1,000 digits")
        if item is None or isinstance(item, (bool, int, str)):
            continue
        if isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                raise ValueError("JSON numbers are finite (no NaN or Infinity)")
        elif isinstance(item, (list, tuple)):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, dict):
            for key, v in item.items():
                if not isinstance(key, str):
                    raise ValueError(f"JSON object keys are text, not {type(key).__name__}")
                stack.append((v, depth + 1))
        else:
            raise ValueError(f"{type(item).__name__} is not a JSON value")
    return value


def _json_literal(node: ValueNode, variables: Any = None) -> Any:
    return _json_value(value_from_ast_untyped(node, variables))


BigInt = GraphQLScalarType(
    "BigInt",
    parse_value=_parse_bigint,
    parse_literal=_parse_bigint_literal,
    description="A 64-bit integer (GraphQL's Int is 32-bit); accepts digits in a string too",
)
DateTime = _temporal("DateTime", date_only=False)
Date = _temporal("Date", date_only=True)
JSON = GraphQLScalarType(
    "JSON", parse_value=_json_value, parse_literal=_json_literal, description="Any JSON value"
)


def _text_search(value: Any) -> Any:
    """A text search operand: the words (english), or ``{query, language}``."""
    if isinstance(value, str):
        return value
    if (
        isinstance(value, dict)
        and isinstance(value.get("query"), str)
        and isinstance(value.get("language", "english"), str)
        and set(value) <= {"query", "language"}
    ):
        return value
    raise ValueError(
        'a text search is a string ("red fox") or {query: "renard", language: "french"}'
    )


TextSearch = GraphQLScalarType(
    "TextSearch",
    parse_value=_text_search,
    parse_literal=lambda node, variables=None: _text_search(
        value_from_ast_untyped(node, variables)
    ),
    description='Words to search for: "red fox" (english), or {query: "…", language: "french"}',
)


def _time_group(value: Any) -> Any:
    """A time column's groupBy: true/false, or a bucket's unit (FraiseQL's
    ``{occurred_at: "day"}``)."""
    if isinstance(value, bool) or value in POLARS_TRUNCATE:
        return value
    units = ", ".join(POLARS_TRUNCATE)
    raise ValueError(f"TimeGroup cannot represent {value!r}: give true, or a bucket ({units})")


def _output_name(value: Any) -> str:
    """An output of the selection, by name or alias: ``revenue_sum`` or ``"prev"``."""
    if isinstance(value, str) and re.fullmatch(r"[_A-Za-z][_0-9A-Za-z]*", value):
        return value
    raise ValueError(f"OutputName cannot represent {value!r}: give an output's name or alias")


OutputName = GraphQLScalarType(
    "OutputName",
    parse_value=_output_name,
    parse_literal=lambda node, variables=None: _output_name(
        value_from_ast_untyped(node, variables)
    ),
    description='an output of the selection, by name or alias (revenue_sum, or "prev")',
)
TimeGroup = GraphQLScalarType(
    "TimeGroup",
    parse_value=_time_group,
    parse_literal=lambda node, variables=None: _time_group(value_from_ast_untyped(node, variables)),
    description='true: group by the time itself; "day", "hour"…: by its bucket (FraiseQL\'s form)',
)
VectorOrder = GraphQLInputObjectType(
    "VectorOrder",
    {
        name: GraphQLInputField(
            GraphQLList(GraphQLNonNull(GraphQLFloat)),
            description=f"nearest first to this vector by pgvector's {symbol}",
        )
        for name, symbol in DISTANCES.items()
    },
    description="Nearest first: one distance and its vector (a k-nearest search with limit)",
)


VectorThreshold = GraphQLInputObjectType(
    "VectorThreshold",
    {
        "vector": GraphQLInputField(GraphQLNonNull(GraphQLList(GraphQLNonNull(GraphQLFloat)))),
        "threshold": GraphQLInputField(GraphQLNonNull(GraphQLFloat)),
    },
    description="A vector and a threshold: the distance bound, or the least inner product",
)
TextSetThreshold = GraphQLInputObjectType(
    "TextSetThreshold",
    {
        "values": GraphQLInputField(GraphQLNonNull(GraphQLList(GraphQLNonNull(GraphQLString)))),
        "threshold": GraphQLInputField(GraphQLNonNull(GraphQLFloat)),
    },
    description="A set of text values and the greatest Jaccard distance from it",
)
SCALAR_TYPES: dict[str, GraphQLScalarType] = {
    "Int": GraphQLInt,
    "BigInt": BigInt,
    "Float": GraphQLFloat,
    "String": GraphQLString,
    "Boolean": GraphQLBoolean,
    "ID": GraphQLID,
    "DateTime": DateTime,
    "Date": Date,
    "JSON": JSON,
}


def operand_type(operand: str, gql: Any) -> Any:
    """The GraphQL input type of an operator's operand (see :class:`Operator`)."""
    if operand == "values":
        return GraphQLList(GraphQLNonNull(gql))
    if operand == "boolean":
        return GraphQLBoolean
    if operand == "int":
        return GraphQLInt
    if operand == "text":
        return GraphQLString
    if operand == "json":
        return JSON
    if operand == "search":
        return TextSearch
    if operand == "vector":
        return VectorThreshold
    if operand == "text set":
        return TextSetThreshold
    return gql
