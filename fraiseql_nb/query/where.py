"""Coerced ``where``/``having`` arguments -> Where trees of the IR.

graphql-core has already checked names and value types; what is left is
what GraphQL cannot say: a null where a value is needed, a regular
expression too long to be reasonable, a NUL byte PostgreSQL text cannot hold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from graphql import Node

from fraiseql_nb.language.operators import (
    MAX_REGEX_LENGTH,
    NAMED_OPERATORS,
    OPERATORS,
    SPELLINGS,
    vector_problem,
)
from fraiseql_nb.query.ir import And, AnyItem, Compare, Not, Or, Where
from fraiseql_nb.query.values import check_scalar
from fraiseql_nb.schema.model import FieldType

if TYPE_CHECKING:
    from fraiseql_nb.query.parse import Context

__all__ = [
    "MAX_REGEX_LENGTH",
    "build_column_where",
    "build_entity_where",
    "is_empty",
]

_BOOLEANS = ("_and", "_or", "_not")


def is_empty(where: Where) -> bool:
    """True for the tree that matches everything (an empty And)."""
    return isinstance(where, And) and not where.items


def build_entity_where(
    ctx: Context, node: Node, value: dict[str, Any], otype: FieldType, prefix: tuple[str, ...] = ()
) -> Where:
    """The Where tree of a ``<Entity>WhereInput`` value over document paths."""
    items: list[Where] = []
    for name, arg in value.items():
        if name in _BOOLEANS:
            items.append(
                _boolean(name, arg, lambda v: build_entity_where(ctx, node, v, otype, prefix))
            )
        elif name in ("strictly_contains", "isnull") and otype.field(name) is None:
            # On the object itself: its document (strictly_contains), or whether it is there.
            owner = ".".join(prefix) if prefix else name
            items.append(_compare(ctx, node, owner, prefix, name, arg, "JSON", None))
        else:
            field = otype.field(name)
            if field is None:  # validation makes this unreachable; keep it loud
                raise ctx.error(f"unknown field {name!r} in where", node)
            path = (*prefix, field.key)
            ftype = field.type
            if ftype.kind == "object":
                items.append(build_entity_where(ctx, node, arg, ftype, path))
                continue
            is_list = ftype.kind == "list"
            scalar_type = (ftype.item if is_list else ftype) or FieldType(kind="scalar")
            scalar = scalar_type.scalar if scalar_type.kind == "scalar" else "JSON"
            for op, operand, negated in _spelled(ctx, node, name, arg):
                if op == "any":
                    if operand is None:
                        raise ctx.error(f"{name}.any needs conditions, got null", node)
                    inner = build_entity_where(ctx, node, operand, scalar_type)
                    items.append(AnyItem(path=path, item=inner))
                    continue
                compare = _compare(
                    ctx,
                    node,
                    name,
                    path,
                    op,
                    operand,
                    scalar or "JSON",
                    scalar_type.json,
                    is_list=is_list,
                )
                if field.column is not None:
                    _check_dimensions(ctx, node, f"{name}.{op}", field.pg_type, operand, op)
                    compare = replace(compare, column=field.column)
                items.append(Not(item=compare) if negated else compare)
    return items[0] if len(items) == 1 else And(items=tuple(items))


def build_column_where(
    ctx: Context,
    node: Node,
    value: dict[str, Any],
    resolve: Callable[[str], str],
    flat: dict[str, tuple[str, str]] | None = None,
    *,
    named: bool = False,
) -> Where:
    """The Where tree of a fact table's where/having value; ``resolve`` gives a name's scalar
    (``named``: the type has having's named form, see :data:`NAMED_OPERATORS`)."""
    items: list[Where] = []
    if named:
        value = _named(ctx, node, value, resolve)
    for name, arg in _unflattened(ctx, node, value, flat or {}).items():
        if name in _BOOLEANS:
            items.append(
                _boolean(
                    name,
                    arg,
                    lambda v: build_column_where(ctx, node, v, resolve, flat, named=named),
                )
            )
            continue
        scalar = resolve(name)
        for op, operand, negated in _spelled(ctx, node, name, arg):
            compare = _compare(ctx, node, name, (name,), op, operand, scalar, None)
            items.append(Not(item=compare) if negated else compare)
    return items[0] if len(items) == 1 else And(items=tuple(items))


def _named(
    ctx: Context, node: Node, value: dict[str, Any], resolve: Callable[[str], str]
) -> dict[str, Any]:
    """``{field: "paypal", gt: 100}`` as ``{paypal: {gt: 100}}``; its values (typed JSON,
    as an alias's type is not known to the schema) checked against the output's type."""
    ops = {k: v for k, v in value.items() if k in NAMED_OPERATORS}
    if "field" not in value:
        if ops:
            raise ctx.error(
                f"having: {', '.join(ops)} tests an output named by field:"
                ' ({field: "paypal", gt: 100}); give the field',
                node,
            )
        return value
    name = value["field"]
    if not isinstance(name, str) or not name:
        raise ctx.error("having: field: names the output to test (its name or alias)", node)
    if not ops:
        raise ctx.error(
            f"having: {{field: {name!r}}} tests nothing; give an operator (gt: 100)", node
        )
    scalar = resolve(name)
    checked: dict[str, Any] = {}
    for op, operand in ops.items():
        try:
            if op == "is_null":
                checked[op] = check_scalar("Boolean", operand)
            elif op in ("in", "nin"):
                if not isinstance(operand, list):
                    raise ValueError(f"{operand!r} is not a list")
                checked[op] = [check_scalar(scalar, v) for v in operand]
            else:
                checked[op] = None if operand is None else check_scalar(scalar, operand)
        except ValueError as exc:
            raise ctx.error(f"having {name}.{op}: {exc}", node) from None
    rest = {k: v for k, v in value.items() if k != "field" and k not in NAMED_OPERATORS}
    if name in rest:
        raise ctx.error(
            f"having: {name} is given twice ({{field: {name!r}, …}} and {name}: …); give it once",
            node,
        )
    return {**rest, name: checked}


def _unflattened(
    ctx: Context, node: Node, value: dict[str, Any], flat: dict[str, tuple[str, str]]
) -> dict[str, Any]:
    """FraiseQL's flattened keys (``revenue_sum_gt: 10``) in the nested form
    (``revenue_sum: {gt: 10}``), merged with what the nested form gives the same name; one
    condition given two values is a QueryError naming both."""
    if not any(key in flat for key in value):
        return value
    out: dict[str, Any] = {}
    said: dict[tuple[str, str], str] = {}
    for key, arg in value.items():
        if key in _BOOLEANS:
            out[key] = arg
            continue
        pairs = [(*flat[key], arg)] if key in flat else [(key, op, v) for op, v in arg.items()]
        for name, op, operand in pairs:
            conditions = out.setdefault(name, {})
            if op in conditions and conditions[op] != operand:
                raise ctx.error(
                    f"{said[(name, op)]} and {key} are one condition ({name}: {{{op}: …}})"
                    f" given two values ({conditions[op]!r} and {operand!r}); give one",
                    node,
                )
            conditions[op] = operand
            said.setdefault((name, op), key)
    return out


def _spelled(
    ctx: Context, node: Node, name: str, arg: dict[str, Any]
) -> list[tuple[str, Any, bool]]:
    """A field's conditions as (operator, value, negated), whichever spelling each was
    written in (``ne`` is ``neq``, ``nlike`` is ``not like``); two spellings of one
    meaning with different values are a QueryError naming both (one value is one
    condition)."""
    seen: dict[tuple[str, bool], tuple[str, Any]] = {}
    out = []
    for written, operand in arg.items():
        op, negated = SPELLINGS.get(written, (written, False))
        first = seen.get((op, negated))
        if first is not None:
            if first[1] != operand or type(first[1]) is not type(operand):
                raise ctx.error(
                    f"{name}: {first[0]} and {written} are two spellings of one condition,"
                    f" given different values ({first[1]!r} and {operand!r}); give one",
                    node,
                )
            continue
        seen[(op, negated)] = (written, operand)
        out.append((op, operand, negated))
    return out


def _boolean(name: str, arg: Any, build: Callable[[Any], Where]) -> Where:
    if name == "_not":
        return Not(item=build(arg))
    parts = tuple(build(v) for v in arg)
    return And(items=parts) if name == "_and" else Or(items=parts)


def _compare(
    ctx: Context,
    node: Node,
    name: str,
    path: tuple[str, ...],
    op: str,
    value: Any,
    scalar: str,
    json: str | None,
    *,
    is_list: bool = False,
) -> Compare:
    where = f"{name}.{op}"
    if value is None:
        hint = "; to match missing values use isnull: true" if op in ("eq", "neq") else ""
        raise ctx.error(f"{where} needs a value, got null{hint}", node)
    _check_text(ctx, node, where, value)
    operator = OPERATORS[op]
    wrong = operator.check(value) if operator.check is not None else None
    if wrong is not None:
        raise ctx.error(f"{where}: {wrong}", node)
    if scalar == "ID" and json == "number" and operator.operand in ("value", "values"):
        value = _as_number(ctx, node, where, value)
    return Compare(path=path, op=op, value=value, scalar=scalar, json=json, is_list=is_list)


def _check_dimensions(
    ctx: Context, node: Node, where: str, pg_type: str | None, operand: Any, op: str
) -> None:
    """A vector compared with a vector column has the column's dimensions (pgvector would
    refuse the statement; this names the field and the value first)."""
    if OPERATORS[op].operand == "vector":
        problem = vector_problem(operand.get("vector"), pg_type)
        if problem is not None:
            raise ctx.error(f"{where}: {problem}", node)


def _check_text(ctx: Context, node: Node, where: str, value: Any) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise ctx.error(f"{where}: text values cannot contain NUL characters", node)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_text(ctx, node, where, item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(ctx, node, where, key)
            _check_text(ctx, node, where, item)


def _as_number(ctx: Context, node: Node, where: str, value: Any) -> Any:
    if isinstance(value, list):
        return [_as_number(ctx, node, where, v) for v in value]
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ctx.error(f"{where}: {value!r} is not an id (ids here are numbers)", node) from None
