"""The Polars rendering of the WHERE operators the engine computes exactly (rows of
:data:`fraiseql_nb.language.operators.OPERATORS`). Pure. What Polars would read differently from
PostgreSQL raises :class:`~fraiseql_nb.errors.UnsupportedError`: PostgreSQL answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import polars as pl

from fraiseql_nb.compute.literals import (
    MAX_PATTERN,
    comparable,
    like_regex,
    literal_value,
    portable_regex,
)
from fraiseql_nb.errors import UnsupportedError

if TYPE_CHECKING:
    from fraiseql_nb.query.ir import Compare

PolarsRenderer = Callable[[pl.Expr, "Compare", Any, str], pl.Expr]


def typed(c: Compare, dtype: Any, timezone: str) -> Any:
    """The value as the column holds it (PostgreSQL answers what Polars cannot hold)."""
    name = c.path[0]
    try:
        value = literal_value(c.value, dtype, timezone)
    except (ValueError, TypeError, OverflowError, KeyError) as exc:
        # A time past year 9999 in UTC, a time zone Python does not know: PostgreSQL can.
        raise UnsupportedError(f"the value {c.value!r} of {name} ({exc})") from None
    return comparable(value, dtype, name)


def binary(compare: Callable[[pl.Expr, pl.Expr], pl.Expr]) -> PolarsRenderer:
    def render(col: pl.Expr, c: Compare, dtype: Any, timezone: str) -> pl.Expr:
        value = typed(c, dtype, timezone)
        return compare(col, pl.lit(value, dtype=dtype) if dtype is not None else pl.lit(value))

    return render


def in_(negate: bool) -> PolarsRenderer:
    def render(col: pl.Expr, c: Compare, dtype: Any, timezone: str) -> pl.Expr:
        value = typed(c, dtype, timezone)
        if not value:
            return pl.lit(negate)
        # One hashed membership test, however long the list (10,000 values: 5 ms).
        kind = pl.String if isinstance(dtype, (pl.Categorical, pl.Enum)) else dtype
        member = col.is_in(pl.Series(value, dtype=kind).implode())
        return ~member if negate else member

    return render


def isnull(col: pl.Expr, c: Compare, dtype: Any, timezone: str) -> pl.Expr:
    return col.is_null() if c.value else col.is_not_null()


def literal(method: str) -> PolarsRenderer:
    def render(col: pl.Expr, c: Compare, dtype: Any, timezone: str) -> pl.Expr:
        text = col.cast(pl.String).str
        if method == "contains":
            return text.contains(c.value, literal=True)
        return getattr(text, method)(c.value)  # type: ignore[no-any-return]

    return render


def like(make: Callable[[str], str], *, caseless: bool) -> PolarsRenderer:
    def render(col: pl.Expr, c: Compare, dtype: Any, timezone: str) -> pl.Expr:
        if caseless and not c.value.isascii():
            # Case folding of other letters differs between PostgreSQL and Polars (ſ, İ, ß).
            raise UnsupportedError(f"{c.op} with letters beyond ASCII")
        pattern = make(c.value)
        if len(pattern) > MAX_PATTERN:
            raise UnsupportedError(f"a {c.op} pattern of {len(pattern):,} characters")
        regex = like_regex(pattern, case_insensitive=caseless)
        return col.cast(pl.String).str.contains(regex)

    return render


def regex(*, caseless: bool) -> PolarsRenderer:
    def render(col: pl.Expr, c: Compare, dtype: Any, timezone: str) -> pl.Expr:
        if caseless and not c.value.isascii():
            raise UnsupportedError(f"{c.op} with letters beyond ASCII")
        portable = portable_regex(c.value)
        if portable is None:
            raise UnsupportedError(f"the regular expression {c.value!r} (PostgreSQL's dialect)")
        flags = "(?is)" if caseless else "(?s)"
        return col.cast(pl.String).str.contains(flags + portable)

    return render
