"""Values checked against the SQL type of the column they are compared with. Pure.

GraphQL's scalars say "an ID", "an Int"; the column may be a ``uuid`` or a
``smallint``. A value that the column's type cannot hold is the caller's
mistake and is refused here, before any SQL is sent, with a message naming
the value and the type (PostgreSQL would refuse it too, but after the
statement was sent, as a database error). Values that pass come back in
canonical form (a uuid lowercased with dashes, as PostgreSQL prints it), so
that a plane comparing text — the analytics plane holds uuids as text —
matches exactly what PostgreSQL matches.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from fraiseql_nb.language.operators import typed_ops

__all__ = ["INTEGER_RANGES", "TYPED_OPS", "base_type", "check_scalar", "check_value"]

#: Operators whose values are compared with the column's own type.
TYPED_OPS = typed_ops()

#: Integer column types and the values they hold.
INTEGER_RANGES = {
    "smallint": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1),
    "int2": (-(2**15), 2**15 - 1),
    "int4": (-(2**31), 2**31 - 1),
    "int8": (-(2**63), 2**63 - 1),
}


def base_type(pg_type: str) -> str:
    """``character varying(20)`` -> ``character varying``; ``numeric(12,2)`` -> ``numeric``."""
    return re.sub(r"\(.*?\)", "", pg_type).strip()


def check_value(pg_type: str, value: Any) -> Any:
    """``value`` (or each item of a list) as a value of ``pg_type``, canonical.

    Raises:
        ValueError: the type cannot hold the value; the message says why.
    """
    if isinstance(value, list):
        return [check_value(pg_type, v) for v in value]
    kind = base_type(pg_type)
    if kind == "uuid":
        return _uuid(value)
    if kind in INTEGER_RANGES:
        return _integer(value, kind)
    if kind == "boolean" and not isinstance(value, bool):
        raise ValueError(f"{value!r} is not a boolean")
    return value


def check_scalar(scalar: str, value: Any) -> Any:
    """``value`` as a value of the GraphQL ``scalar`` (for arguments typed JSON, such
    as a window function's ``default``, which graphql-core cannot check).

    Raises:
        ValueError: the value is not one of ``scalar``; the message says why.
    """
    if scalar in ("Int", "BigInt"):
        return _integer(value, "bigint")
    if scalar == "Float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        raise ValueError(f"{_show(value)} is not a number")
    if scalar == "Boolean":
        if isinstance(value, bool):
            return value
        raise ValueError(f"{_show(value)} is not a boolean")
    if scalar in ("Date", "DateTime"):
        if isinstance(value, str):
            try:
                text = value.replace("Z", "+00:00")
                if scalar == "Date":
                    dt.date.fromisoformat(text)
                else:
                    dt.datetime.fromisoformat(text)
                return value
            except ValueError:
                pass
        what = "date" if scalar == "Date" else "time"
        raise ValueError(f"{_show(value)} is not an ISO 8601 {what}")
    if scalar == "ID" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value
    raise ValueError(f"{_show(value)} is not text")


def _uuid(value: Any) -> str:
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value.strip()))
        except ValueError:
            pass
    raise ValueError(f"{_show(value)} is not a uuid (expected text like {uuid.UUID(int=0)})")


def _integer(value: Any, kind: str) -> int:
    low, high = INTEGER_RANGES[kind]
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif (isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,40}\s*", value)) or (
        isinstance(value, float) and value.is_integer()
    ):
        number = int(value)
    if number is None:
        raise ValueError(f"{_show(value)} is not an integer")
    if not low <= number <= high:
        raise ValueError(f"{number} is out of range for {kind} ({low} to {high})")
    return number


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"
