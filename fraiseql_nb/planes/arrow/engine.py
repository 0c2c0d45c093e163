"""Polars as the arrow and cluster planes use it: whether the plane's packages import,
what it cannot compute (turned into a decline, for PostgreSQL to answer), and the plan
shown for an answer."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import polars as pl

from fraiseql_nb.compute.aggregate import aggregate_plan
from fraiseql_nb.errors import UnsupportedError
from fraiseql_nb.query.ir import AggregateQuery, WindowQuery

__all__ = ["arrow_available", "computing", "engine_plan"]


def engine_plan(
    where: str,
    dtypes: dict[str, Any],
    query: AggregateQuery | WindowQuery,
    timezone: str,
    *,
    streaming: bool = False,
) -> str:
    """Where the rows were, then Polars' plan of an aggregate (a window is computed
    eagerly, one function at a time: there is no lazy plan to show)."""
    if isinstance(query, WindowQuery):
        return f"{where}: filtered, then each window function over its partitions (eager)"
    return f"{where}\n" + aggregate_plan(dtypes, query, timezone=timezone, streaming=streaming)


def arrow_available() -> bool:
    """Whether the analytics packages (ADBC's PostgreSQL driver) can be imported."""
    try:
        import adbc_driver_postgresql.dbapi  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def computing() -> Iterator[None]:
    """Polars could not compute it (a value it cannot coerce…): PostgreSQL can."""
    try:
        yield
    except (
        pl.exceptions.PolarsError,
        pl.exceptions.PanicException,  # a Rust panic: a BaseException, caught here
        OverflowError,
        ValueError,
        KeyError,  # zoneinfo's ZoneInfoNotFoundError: a zone PostgreSQL knows, Python not
    ) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnsupportedError(f"this query ({detail})") from None
