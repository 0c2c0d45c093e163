"""FraiseQL's variables-only request — ``{ sales_aggregate }`` or ``{ sales_window }`` with
the whole request in the variables, as FraiseQL's runtime reads it — rewritten as the
GraphQL query it means, with the request's values as that query's variables. Pure.

Aggregates: ``table``, ``where`` (flattened keys), ``groupBy`` (``true`` or a bucket
name), ``aggregates`` (``[{"count": {}}, {"revenue_sum": {}}]``), ``having`` (flattened
keys), ``orderBy`` (``{"revenue_sum": "DESC"}`` or a list), ``limit``, ``offset``. Windows:
``table``, ``select`` (``[{"type": "dimension", "path": "category", "alias": …}]``),
``windows`` (``[{"function": {"type": "row_number"}, "alias", "partitionBy", "orderBy",
"frame"}]``), ``where``, ``orderBy``, ``limit``, ``offset``. Every name reaches the query
as a GraphQL name (checked against GraphQL's name syntax, then by validation against the
schema) and every value as a variable; a key FraiseQL would ignore is a QueryError here.
"""

from __future__ import annotations

import re
from typing import Any

from graphql import FieldNode, GraphQLError, GraphQLSchema, OperationDefinitionNode, parse

from fraiseql_nb.errors import QueryError
from fraiseql_nb.schema.model import FactTable

__all__ = ["AGGREGATE_KEYS", "WINDOW_KEYS", "rewrite"]

AGGREGATE_KEYS = ("table", "where", "groupBy", "aggregates", "having", "orderBy", "limit", "offset")
WINDOW_KEYS = ("table", "select", "windows", "where", "orderBy", "limit", "offset")
_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")
#: FraiseQL's window function types whose fields are ours under another argument name.
_MEASURE_FUNCTIONS = ("running_sum", "running_avg", "running_min", "running_max")
_FIELD_FUNCTIONS = ("lag", "lead", "first_value", "last_value", "running_count")


def rewrite(
    text: str, variables: dict[str, Any] | None, facts: list[FactTable], gql: GraphQLSchema
) -> tuple[str, dict[str, Any]] | None:
    """The GraphQL query and variables a variables-only request means, or None when
    ``text`` is not one (a root field of a fact table with no arguments and no selection)."""
    try:
        document = parse(text)
    except GraphQLError:
        return None  # the regular path reports it
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or len(document.definitions) != 1:
        return None
    fields = operations[0].selection_set.selections
    if len(fields) != 1 or not isinstance(fields[0], FieldNode):
        return None
    field = fields[0]
    if field.selection_set is not None or field.arguments:
        return None
    name = field.name.value
    fact = next((f for f in facts if name in (f.aggregate_query, f.window_query)), None)
    if fact is None:
        return None
    request = dict(variables or {})
    window = name == fact.window_query
    _check_keys(name, request, WINDOW_KEYS if window else AGGREGATE_KEYS)
    _check_table(fact, request.get("table"))
    args = gql.query_type.fields[name].args  # type: ignore[union-attr]
    out = _Rewritten(args)
    for key in ("where", "limit", "offset"):
        out.argument(key, request.get(key))
    if window:
        selection = _window_selection(fact, request, out)
        out.argument("orderBy", _order_list(request.get("orderBy"), name))
    else:
        out.argument("groupBy", request.get("groupBy"))
        out.argument("having", request.get("having"))
        out.argument("orderBy", _order_list(request.get("orderBy"), name))
        selection = _aggregate_selection(request, name)
    if not selection:
        what = "select or windows" if window else "groupBy or aggregates"
        raise QueryError(f"{name}: the request selects nothing; give {what}")
    declared = f"({', '.join(out.declared)})" if out.declared else ""
    arguments = f"({', '.join(out.passed)})" if out.passed else ""
    query = f"query{declared} {{ {name}{arguments} {{ {' '.join(selection)} }} }}"
    return query, out.values


class _Rewritten:
    """The variables of the rewritten query: each request value passed as one."""

    def __init__(self, args: dict[str, Any]) -> None:
        self.args = args
        self.declared: list[str] = []
        self.passed: list[str] = []
        self.values: dict[str, Any] = {}

    def argument(self, key: str, value: Any) -> None:
        if value is None:
            return
        self.variable(key, str(self.args[key].type), value)
        self.passed.append(f"{key}: ${key}")

    def variable(self, name: str, type_name: str, value: Any) -> str:
        self.declared.append(f"${name}: {type_name}")
        self.values[name] = value
        return f"${name}"


def _check_keys(name: str, request: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = [k for k in request if k not in allowed]
    if unknown:
        raise QueryError(
            f"{name}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}"
            f" in the request's variables (FraiseQL's request takes {', '.join(allowed)})"
        )


def _check_table(fact: FactTable, table: Any) -> None:
    if table is None:
        return
    if table not in (fact.relation, fact.name, f"{fact.schema}.{fact.relation}"):
        raise QueryError(
            f"table {table!r} is not the table of {fact.aggregate_query} ({fact.relation})"
        )


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise QueryError(f"{what}: {value!r} is not a field name")
    return value


def _aggregate_selection(request: dict[str, Any], query: str) -> list[str]:
    selection: list[str] = []
    group_by = request.get("groupBy") or {}
    if not isinstance(group_by, dict):
        raise QueryError(f'{query}: groupBy is an object ({{"category": true}})')
    for key, on in group_by.items():
        name = _name(key, "groupBy")
        if isinstance(on, str):
            name = _name(f"{name}_{on}", "groupBy")
        if on and name not in selection:
            selection.append(name)
    aggregates = request.get("aggregates") or []
    if not isinstance(aggregates, list):
        raise QueryError(f'{query}: aggregates is a list ([{{"count": {{}}}}])')
    for item in aggregates:
        names = [item] if isinstance(item, str) else item if isinstance(item, dict) else None
        if names is None:
            raise QueryError(f'{query}: an aggregate is {{"revenue_sum": {{}}}}, not {item!r}')
        for key in names:
            if isinstance(item, dict) and item[key] not in ({}, None):
                raise QueryError(f"{query}: aggregate {key}: takes {{}}, not {item[key]!r}")
            name = _name(key, "aggregates")
            if name not in selection:
                selection.append(name)
    return selection


def _order_list(order: Any, query: str) -> list[dict[str, Any]] | None:
    """FraiseQL's ``{"revenue_sum": "DESC"}`` (directions in any case) as the list form."""
    if order is None:
        return None
    items = [{k: v} for k, v in order.items()] if isinstance(order, dict) else order
    if not isinstance(items, list):
        raise QueryError(f'{query}: orderBy is {{"revenue_sum": "DESC"}} or a list of those')
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise QueryError(f"{query}: orderBy item {item!r} is not an object")
        out.append(
            {k: v.upper() if isinstance(v, str) and k != "field" else v for k, v in item.items()}
        )
    return out


def _column(fact: FactTable, spec: Any, what: str) -> str:
    """A FraiseQL column spec (``{"type": "dimension", "path": "product.name"}``, or
    ``{"type": "measure"|"filter", "name": …}``) as the column's name here."""
    if isinstance(spec, str):
        return _name(spec, what)
    if not isinstance(spec, dict):
        raise QueryError(f"{what}: {spec!r} is not a column")
    if spec.get("type") == "dimension":
        path = spec.get("path")
        dim = next(
            (d for d in fact.dimensions if isinstance(path, str) and ".".join(d.path) == path),
            None,
        )
        return dim.name if dim is not None else _name(path, what)
    return _name(spec.get("name"), what)


def _window_selection(fact: FactTable, request: dict[str, Any], out: _Rewritten) -> list[str]:
    selection: list[str] = []
    for spec in request.get("select") or []:
        column = _column(fact, spec, "select")
        alias = (
            _name(spec.get("alias", column), "select alias") if isinstance(spec, dict) else column
        )
        selection.append(column if alias == column else f"{alias}: {column}")
    for i, window in enumerate(request.get("windows") or []):
        if not isinstance(window, dict):
            raise QueryError(f"windows: {window!r} is not a window")
        unknown = [
            k for k in window if k not in ("function", "alias", "partitionBy", "orderBy", "frame")
        ]
        if unknown:
            raise QueryError(f"windows[{i}]: unknown key {', '.join(map(repr, unknown))}")
        function = window.get("function") or {}
        kind = _name(
            function.get("type") if isinstance(function, dict) else None, "window function"
        )
        alias = _name(window.get("alias", kind), "window alias")
        args: list[str] = []
        for key, value in function.items():
            if key == "type":
                continue
            if key in ("field", "measure") and kind in (*_MEASURE_FUNCTIONS, *_FIELD_FUNCTIONS):
                args.append(f"field: {_name(value, kind)}")
            elif key == "n" and kind == "ntile":
                args.append(f"buckets: {out.variable(f'w{i}_n', 'Int!', value)}")
            elif key == "offset" and kind in ("lag", "lead"):
                args.append(f"offset: {out.variable(f'w{i}_offset', 'Int', value)}")
            elif key == "default" and kind in ("lag", "lead"):
                args.append(f"default: {out.variable(f'w{i}_default', 'JSON', value)}")
            else:
                raise QueryError(f"windows[{i}]: {kind} does not take {key!r} here")
        partition = [_column(fact, p, "partitionBy") for p in window.get("partitionBy") or []]
        if partition:
            args.append(f"partitionBy: [{', '.join(partition)}]")
        order = _order_list(window.get("orderBy"), f"windows[{i}]")
        if order:
            row_type = out.args["orderBy"].type
            args.append(f"orderBy: {out.variable(f'w{i}_order', str(row_type), order)}")
        args += _frame(window.get("frame"), i, out)
        call = f"{kind}({', '.join(args)})" if args else kind
        selection.append(f"{alias}: {call}")
    return selection


def _frame(frame: Any, i: int, out: _Rewritten) -> list[str]:
    """A ROWS frame as preceding/following (what the window functions here take)."""
    if frame is None:
        return []
    if not isinstance(frame, dict) or frame.get("frame_type", "ROWS") != "ROWS":
        raise QueryError(f"windows[{i}]: only ROWS frames are taken, not {frame!r}")
    args = []
    for end, side in (("start", "preceding"), ("end", "following")):
        bound = frame.get(end) or {}
        kind = bound.get("type") if isinstance(bound, dict) else None
        if kind == f"n_{side}":
            args.append(f"{side}: {out.variable(f'w{i}_{side}', 'Int', bound.get('n'))}")
        elif kind not in ("unbounded_preceding" if end == "start" else "current_row", None):
            raise QueryError(f"windows[{i}]: a frame {end} of {kind!r} is not taken")
    return args
