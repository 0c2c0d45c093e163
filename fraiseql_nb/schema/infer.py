"""Infer document field types from a sample of JSON documents (pure, no I/O).

Rules: every sampled value of a field decides its type; a field is nullable
when any sampled document has it null or lacks it; objects become object
types and arrays list types of their elements' type; integers too large for
GraphQL's 32-bit ``Int`` become ``BigInt``; strings that are all ISO
timestamps (dates) become ``DateTime`` (``Date``); ``id`` and ``*_id``
fields become ``ID``; anything mixed becomes ``JSON``. A ``__typename`` key
(FraiseQL writes one into documents) is GraphQL's meta field, not a field.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from fraiseql_nb.schema.model import Field, FieldType
from fraiseql_nb.schema.naming import graphql_name, pascal, singular, unique

__all__ = ["infer_fields", "scalar_of_value"]

_INT32 = 2**31 - 1
_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MAX_DEPTH = 8


class _Acc:
    """What has been seen of one field across the sample."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.present = 0
        self.nulls = 0
        self.big_int = False
        self.keys: dict[str, _Acc] = {}
        self.objects = 0
        self.items: _Acc | None = None

    def add(self, value: Any, depth: int = 0) -> None:
        self.present += 1
        kind = scalar_of_value(value)
        if kind is None:
            self.nulls += 1
            return
        self.kinds[kind] += 1
        if kind in ("Int", "BigInt") and abs(value) > _INT32:
            self.big_int = True
        if depth >= _MAX_DEPTH:
            return
        if kind == "object":
            self.objects += 1
            for key, sub in value.items():
                self.keys.setdefault(key, _Acc()).add(sub, depth + 1)
        elif kind == "list":
            if self.items is None:
                self.items = _Acc()
            for sub in value:
                self.items.add(sub, depth + 1)


def scalar_of_value(value: Any) -> str | None:
    """The kind of one JSON value: a scalar name, "object", "list", or None for null."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Int"
    if isinstance(value, float):
        return "Float"
    if isinstance(value, str):
        if _DATETIME.match(value):
            return "DateTime"
        if _DATE.match(value):
            return "Date"
        return "String"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "list"
    return "JSON"


def infer_fields(
    docs: Iterable[dict[str, Any]], type_name: str, taken: set[str] | None = None
) -> tuple[tuple[Field, ...], int]:
    """Infer the fields of documents of GraphQL type ``type_name``.

    Args:
        docs: sampled documents (JSON objects; anything else is ignored).
        type_name: the entity's type name, the stem of nested object type names.
        taken: GraphQL type names already used; new names are added to it.

    Returns:
        The fields, in first-seen key order, and the number of documents used.
    """
    root = _Acc()
    for doc in docs:
        if isinstance(doc, dict):
            root.add(doc)
    names = taken if taken is not None else set()
    names.add(type_name)
    return _fields(root, type_name, names, top=True), root.objects


def _fields(acc: _Acc, type_name: str, taken: set[str], *, top: bool = False) -> tuple[Field, ...]:
    out: list[Field] = []
    used: set[str] = set()
    for key, sub in acc.keys.items():
        if key == "__typename":
            continue  # GraphQL's own meta field, answered from the type name
        name = graphql_name(key)
        if name is None or name in used:
            continue  # no valid GraphQL name: reachable only through the JSON scalar
        used.add(name)
        ftype = _type(sub, f"{type_name}{pascal(name)}", taken, id_like=_id_like(name, top))
        nullable = sub.nulls > 0 or sub.present < acc.objects
        out.append(Field(name=name, key=key, type=ftype, nullable=nullable))
    if top:
        out.sort(key=lambda f: f.name != "id")  # the id first, the rest as first seen
    return tuple(out)


def _id_like(name: str, top: bool) -> bool:
    return (top and name == "id") or name.endswith("_id")


def _type(acc: _Acc, type_name: str, taken: set[str], *, id_like: bool = False) -> FieldType:
    kinds = set(acc.kinds)
    if kinds == {"object"}:
        name = unique(type_name, taken)
        return FieldType(kind="object", type_name=name, fields=_fields(acc, name, taken))
    if kinds == {"list"}:
        items = acc.items if acc.items is not None else _Acc()
        return FieldType(kind="list", item=_type(items, singular(type_name), taken))
    scalar = _scalar(kinds, acc.big_int)
    json_kind = {
        "Int": "number",
        "BigInt": "number",
        "Float": "number",
        "Boolean": "boolean",
        "JSON": None,
    }.get(scalar, "string")
    if id_like and scalar in ("Int", "BigInt", "String"):
        scalar = "ID"
    return FieldType(kind="scalar", scalar=scalar, json=json_kind)


def _scalar(kinds: set[str], big_int: bool) -> str:
    if kinds == {"Int"}:
        return "BigInt" if big_int else "Int"
    if kinds and kinds <= {"Int", "Float"}:
        return "Float"
    if kinds in ({"DateTime"}, {"DateTime", "Date"}):
        return "DateTime"  # a bare date casts to a timestamp at midnight
    if len(kinds) == 1 and next(iter(kinds)) in ("Boolean", "String", "Date"):
        return next(iter(kinds))
    if kinds and kinds <= {"String", "Date", "DateTime"}:
        return "String"
    return "JSON"
