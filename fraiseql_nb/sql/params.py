"""Where user values go in SQL: bound parameters, or literals for loads that must not bind.

psycopg queries bind every value (``%(p1)s``). ADBC loads render them with
``psycopg.sql.Literal`` instead, because a statement with bound parameters
makes ADBC skip COPY and materialise the whole result (see DESIGN.md).
One compiler serves both: it asks a :class:`Params` for each value.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

__all__ = ["Params", "cast"]

# Types a value may be cast to. Casts are written into SQL text, so only
# plain type names pass (a hand-edited schema file must not inject SQL).
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_ ]*(\[\])?$")


def cast(pg_type: str) -> sql.SQL:
    """``::type`` for a PostgreSQL type name, typmods stripped (``numeric(12,2)`` -> numeric)."""
    base = re.sub(r"\(.*?\)", "", pg_type).strip()
    if not _TYPE_NAME.match(base):
        raise ValueError(f"not a plain PostgreSQL type name: {pg_type!r}")
    return sql.SQL("::" + base)


def _exact(value: Any) -> Any:
    """Numbers as Decimals, floats from their shortest repr (float8 -> numeric keeps 15 digits).

    Also makes number lists homogeneous, which psycopg needs to dump them.
    """
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, list):
        return [_exact(v) for v in value]
    return value


class Params:
    """Collects the values of one statement, as placeholders or literals."""

    def __init__(self, *, literal: bool = False) -> None:
        self.literal = literal
        self.values: dict[str, Any] = {}
        self._named: dict[int, str] = {}  # each placeholder made here -> its value's name

    def add(self, value: Any, pg_type: str | None = None) -> sql.Composable:
        """The SQL for ``value`` (cast to ``pg_type`` when given)."""
        if pg_type is not None and pg_type.startswith("numeric"):
            value = _exact(value)
        if self.literal:
            expr: sql.Composable = sql.Literal(value)
        else:
            name = f"p{len(self.values) + 1}"
            self.values[name] = value
            expr = sql.Placeholder(name)
            self._named[id(expr)] = name
        if pg_type is None:
            return expr
        return sql.Composed([sql.SQL("("), expr, cast(pg_type), sql.SQL(")")])

    def inline(self, statement: sql.Composable) -> sql.Composable:
        """``statement`` with each placeholder made here replaced by its value as a
        literal: the statement as it is shown (pasted, EXPLAINed), without compiling the
        query a second time."""
        if isinstance(statement, sql.Composed):
            return sql.Composed([self.inline(part) for part in statement])
        name = self._named.get(id(statement))
        return sql.Literal(self.values[name]) if name is not None else statement

    def json(self, value: Any) -> sql.Composable:
        """``value`` as a jsonb parameter."""
        return self.add(Jsonb(value), "jsonb")
