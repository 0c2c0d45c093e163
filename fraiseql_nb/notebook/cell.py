"""A cell's GraphQL text, made ready to send: notebook variables bound, limits applied;
and back: an error's position on the cell, a result saying the limit added.

Two conveniences of the magic change the document before it reaches
:meth:`Session.execute`:

- ``$name`` used but not declared is declared here, its value taken from
  the notebook namespace. A declared variable also takes the namespace's
  value when there is one, else its default, as GraphQL says. A bound
  variable's type is the one GraphQL expects where it is used (``$n`` in
  ``limit: $n`` is an ``Int``), else inferred from the Python value.
- ``--limit N`` (or ``%config FraiseQL.autolimit``) adds ``limit: N`` to
  every entity list and window root field that does not set one.

Both are insertions into the text, never a reprint: the user's query is
sent as written, and an error's line and column are mapped back onto the
cell (:meth:`Prepared.locate`).
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLInputType,
    OperationDefinitionNode,
    OperationType,
    TypeInfo,
    TypeInfoVisitor,
    VariableNode,
    Visitor,
    parse,
    visit,
)
from graphql.language import SourceLocation, get_location
from graphql.language.source import Source

from fraiseql_nb.errors import QueryError
from fraiseql_nb.result import Result, Results
from fraiseql_nb.schema import Schema
from fraiseql_nb.schema.graphql import graphql_schema

__all__ = [
    "SHORT",
    "Prepared",
    "limited",
    "located_in_cell",
    "prepare",
    "python_value_type",
    "without_comment",
]

SHORT = "_fraiseql_short"  # attribute carrying a query error's rendering on the cell


@dataclass
class Prepared:
    """The text to send, the variables, and how to map positions back to the cell."""

    text: str
    variables: dict[str, Any]
    bound: dict[str, str] = field(default_factory=dict)  # name -> GraphQL type declared here
    limited: dict[str, int] = field(default_factory=dict)  # root field -> limit added
    # Insertions made, as (line, column, length) in the sent text, 1-based.
    _inserts: list[tuple[int, int, int]] = field(default_factory=list)

    def locate(self, line: int, column: int) -> tuple[int, int]:
        """A position in the sent text, as a position in the original text."""
        for ln, col, n in sorted(self._inserts, reverse=True):
            if ln != line or column < col:
                continue
            column = column - n if column >= col + n else col  # inside the insertion: its start
        return line, column


def prepare(
    text: str,
    schema: Schema,
    namespace: Mapping[str, Any],
    variables: Mapping[str, Any] | None = None,
    *,
    limit: int | None = None,
    operation_name: str | None = None,
) -> Prepared:
    """Bind undeclared ``$variables`` from ``namespace`` and add ``limit`` where missing.

    A document that does not parse is returned unchanged: the session's
    parser reports the syntax error with its position.
    """
    given = dict(variables or {})
    try:
        doc = parse(text, no_location=False)
    except GraphQLError:
        return Prepared(text=text, variables=given)
    ops = [d for d in doc.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        ops = [o for o in ops if o.name is not None and o.name.value == operation_name]
    if len(ops) != 1 or ops[0].operation != OperationType.QUERY:
        return Prepared(text=text, variables=given)  # the session says what is wrong
    op = ops[0]
    source = Source(text)
    edits: list[tuple[int, str]] = []  # (offset, text to insert)

    declared = {d.variable.name.value for d in op.variable_definitions or ()}
    wanted = _variable_usages(op, schema)
    bound: dict[str, str] = {}
    for name in declared:
        # A declared variable takes the notebook's value when there is one, else its default.
        if name not in given and name in namespace:
            given[name] = _jsonable(namespace[name])
    for name, (expected, offset) in wanted.items():
        if name in declared or name in given:
            continue
        if name not in namespace:
            where = get_location(source, offset)
            raise QueryError(
                f"variable ${name} is not declared and not defined in the notebook",
                line=where.line,
                column=where.column,
            )
        value = _jsonable(namespace[name])
        gql_type = str(expected) if expected is not None else python_value_type(value, name)
        bound[name] = gql_type
        given[name] = value
    if bound:
        definitions = ", ".join(f"${n}: {t}" for n, t in bound.items())
        if op.variable_definitions:
            # query Q($a: Int) -> query Q($a: Int, $b: String)
            last = op.variable_definitions[-1]
            assert last.loc is not None
            edits.append((last.loc.end, ", " + definitions))
        elif op.name is not None:
            assert op.name.loc is not None
            edits.append((op.name.loc.end, f"({definitions})"))
        else:
            assert op.loc is not None
            if text.startswith("{", op.loc.start):  # shorthand "{ … }"
                edits.append((op.loc.start, f"query ({definitions}) "))
            else:  # "query { … }": after the keyword
                edits.append((op.loc.start + len("query"), f" ({definitions})"))

    limited: dict[str, int] = {}
    if limit is not None:
        limitable = {e.list_query for e in schema.entities} | {f.window_query for f in schema.facts}
        for node in op.selection_set.selections:
            if not isinstance(node, FieldNode) or node.name.value not in limitable:
                continue
            if any(a.name.value == "limit" for a in node.arguments or ()):
                continue
            if node.selection_set is None:  # FraiseQL's request: its limit is a variable
                if "limit" not in given:
                    given["limit"] = limit
                    limited[(node.alias or node.name).value] = limit
                continue
            limited[(node.alias or node.name).value] = limit
            if node.arguments:
                first = node.arguments[0]
                assert first.loc is not None
                edits.append((first.loc.start, f"limit: {limit}, "))
            else:
                assert node.name.loc is not None
                edits.append((node.name.loc.end, f"(limit: {limit})"))

    out = text
    inserts = []
    for offset, insert in sorted(edits, reverse=True):
        out = out[:offset] + insert + out[offset:]
    shift_by_line: dict[int, int] = {}
    for offset, insert in sorted(edits):
        pos: SourceLocation = get_location(source, offset)
        before = shift_by_line.get(pos.line, 0)
        inserts.append((pos.line, pos.column + before, len(insert)))
        shift_by_line[pos.line] = before + len(insert)
    return Prepared(text=out, variables=given, bound=bound, limited=limited, _inserts=inserts)


def _variable_usages(op: OperationDefinitionNode, schema: Schema) -> dict[str, Any]:
    """Each variable used in ``op``: the input type GraphQL expects at its first use
    (None where it cannot tell), and where that use is (character offset)."""
    type_info = TypeInfo(graphql_schema(schema))
    found: dict[str, tuple[GraphQLInputType | None, int]] = {}

    class Usages(Visitor):
        def enter_variable(self, node: VariableNode, *_: Any) -> None:
            offset = node.loc.start if node.loc is not None else 0
            found.setdefault(node.name.value, (type_info.get_input_type(), offset))

    visit(op, TypeInfoVisitor(type_info, Usages()))
    return found


def python_value_type(value: Any, name: str = "value") -> str:
    """The GraphQL type of a (JSON-ready) Python value: 3 → Int!, [1, 2] → [Int!]!."""
    if isinstance(value, bool):
        return "Boolean!"
    if isinstance(value, int):
        return "Int!" if -(2**31) <= value < 2**31 else "BigInt!"
    if isinstance(value, float):
        return "Float!"
    if isinstance(value, str):
        return "String!"
    if isinstance(value, list):
        kinds = {python_value_type(v, name) for v in value if v is not None}
        if len(kinds) == 1:
            inner = kinds.pop()
            return f"[{inner if None not in value else inner.rstrip('!')}]!"
        if kinds == {"Int!", "Float!"}:
            return "[Float!]!"
        return "JSON!"
    if isinstance(value, dict):
        return "JSON!"
    if value is None:
        return "JSON"
    raise QueryError(
        f"variable ${name}: a {type(value).__name__} cannot be sent to GraphQL; use a number,"
        " text, a bool, a date or datetime, or a list of those"
    )


def _jsonable(value: Any) -> Any:
    """A notebook value as GraphQL variables carry it (dates as ISO text, tuples as lists)."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "to_list") and callable(value.to_list):  # a Polars or pandas Series
        return [_jsonable(v) for v in value.to_list()]
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, (str, bytes)):
        try:
            return value.item()  # a NumPy scalar
        except (TypeError, ValueError):
            return value
    return value


def without_comment(text: str) -> str:
    """``text`` without a trailing ``# comment``, as a shell reads one: a ``#`` that
    starts a word, outside quotes (``password=a#b`` and ``"a # b"`` keep theirs)."""
    quote: str | None = None
    escaped = False
    previous = " "
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\" and quote != "'":
            escaped = True
        elif quote is not None:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and previous.isspace():
            return text[:i].rstrip()
        previous = ch
    return text


def located_in_cell(
    exc: QueryError, text: str, prepared: Prepared, line_offset: int, prefix: str
) -> QueryError:
    """The error with its positions moved onto the cell, and a short rendering of it."""
    source = text.splitlines()
    errors = []
    short = []
    for message, line, column in exc.errors:
        if line is None or column is None:
            errors.append((message, None, None))
            short.append(f"QueryError: {message}")
            continue
        line, column = prepared.locate(line, column)
        cell_line = line + line_offset
        cell_column = column + (len(prefix) if line == 1 else 0)
        errors.append((message, cell_line, cell_column))
        snippet = source[line - 1] if 0 < line <= len(source) else ""
        if line == 1:
            snippet = prefix + snippet
        short += [
            f"QueryError: {message}",
            f"  at cell line {cell_line}, column {cell_column}:",
            f"    {snippet}",
            "    " + " " * (cell_column - 1 if line == 1 else column - 1) + "^",
        ]
    located = QueryError(errors[0][0], errors=tuple(errors))
    setattr(located, SHORT, short)
    return located


def limited(result: Result | Results, limits: dict[str, int]) -> Result | Results:
    """The result(s), each saying the limit the notebook added to its query, if any."""
    if isinstance(result, Result):
        return result.evolve(limited=limits.get(result.key))
    return Results([r.evolve(limited=limits.get(r.key)) for r in result.values()])
