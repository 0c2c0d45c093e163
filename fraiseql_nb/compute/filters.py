"""WHERE as Polars expressions, with SQL's three-valued logic, and the checks that
decline what Polars would read differently from PostgreSQL (caseless matching beyond
ASCII, times beyond Polars' range, regular expressions of another dialect). Pure."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

import polars as pl

from fraiseql_nb.errors import UnsupportedError
from fraiseql_nb.language.operators import OPERATORS
from fraiseql_nb.query.ir import (
    And,
    Compare,
    Not,
    Or,
    Where,
)

__all__ = [
    "FOLDS_TO_ASCII",
    "check_caseless",
    "check_caseless_by",
    "check_finite",
    "check_time_bounds",
    "check_times",
    "where_expr",
]


def where_expr(where: Where, dtypes: dict[str, Any], timezone: str = "UTC") -> pl.Expr:
    """A Polars boolean expression with SQL's three-valued logic (Polars' is Kleene too).

    A time written without an offset is in ``timezone``, as PostgreSQL reads it.
    """
    # Flat, not a left-deep chain of & and |: Polars' optimiser is quadratic in the
    # depth of an expression (3,000 _or items took 37 s that way).
    if isinstance(where, And):
        if not where.items:
            return pl.lit(True)
        parts = [where_expr(item, dtypes, timezone) for item in where.items]
        return parts[0] if len(parts) == 1 else pl.all_horizontal(parts)
    if isinstance(where, Or):
        if not where.items:
            return pl.lit(False)
        parts = [where_expr(item, dtypes, timezone) for item in where.items]
        return parts[0] if len(parts) == 1 else pl.any_horizontal(parts)
    if isinstance(where, Not):
        return ~where_expr(where.item, dtypes, timezone)
    if not isinstance(where, Compare):
        raise UnsupportedError(f"the condition {type(where).__name__}")
    operator = OPERATORS[where.op]
    if operator.polars is None:
        raise UnsupportedError(f"the operator {where.op} on {where.path[0]}")
    name = where.path[0]
    return operator.polars(pl.col(name), where, dtypes.get(name), timezone)


def check_times(data: pl.DataFrame) -> None:
    """PostgreSQL's times run from 4713 BC to 294276 AD and to ±infinity; Python's (and
    so what a result can be turned into) from year 1 to 9999: decline a query over a
    time column holding anything outside that."""
    for name, dtype in data.schema.items():
        if not isinstance(dtype, (pl.Datetime, pl.Date)) or data.height == 0:
            continue
        physical = data.get_column(name).to_physical()
        check_time_bounds(name, dtype, physical.min(), physical.max())  # type: ignore[arg-type]


def check_finite(data: pl.DataFrame) -> None:
    """PostgreSQL ranks NaN above every number and carries NaN and ±Infinity through sums
    and spreads; Polars skips NaN in ``max`` and a result turned into JSON cannot hold
    them: decline a query over a float column holding any. (A JSON number float64 cannot
    hold is loaded as NaN for this check: see :func:`~fraiseql_nb.sql.facts.load_expression`.)"""
    for name, dtype in data.schema.items():
        if dtype not in (pl.Float32, pl.Float64):
            continue
        # One pass that any NaN or infinity makes non-finite (0.6 against 3.6 ms for 2M
        # values with is_finite); a sum overflowing to infinity declines too, as it should.
        total = data.get_column(name).sum()
        if total is not None and not math.isfinite(total):
            raise UnsupportedError(
                f"{name}, which holds NaN or infinite values, or numbers float64 cannot hold"
            )


def check_time_bounds(name: str, dtype: Any, least: int | None, most: int | None) -> None:
    """:func:`check_times` for one column whose least and greatest physical values are known
    (a table on disk records them when it loads)."""
    bounds = pl.Series([_EARLIEST, _LATEST]).cast(
        pl.Date if isinstance(dtype, pl.Date) else pl.Datetime(dtype.time_unit)
    )
    low, high = bounds.to_physical().to_list()
    if least is not None and most is not None and (least < low or most > high):
        raise UnsupportedError(f"{name}, which holds times outside years 1 to 9999")


# Every letter beyond ASCII whose lower, upper or case-folded form holds an ASCII letter:
# ß İ ı ŉ ſ ǰ ẖ ẗ ẘ ẙ ẚ ẞ, the Kelvin sign and the ligatures ﬀ to ﬆ.
FOLDS_TO_ASCII = (
    "[\u00df\u0130\u0131\u0149\u017f\u01f0\u1e96\u1e97\u1e98\u1e99"
    "\u1e9a\u1e9e\u212a\ufb00\ufb01\ufb02\ufb03\ufb04\ufb05\ufb06]"
)
_EARLIEST = dt.datetime(1, 1, 2)
_LATEST = dt.datetime(9999, 12, 30)


def check_caseless(data: pl.DataFrame, *wheres: Where | None) -> None:
    """Case-insensitive matching folds some letters differently in PostgreSQL (lower()
    per character, by locale) and Polars (Unicode simple folding: ſ matches s there).
    Patterns are ASCII (checked before), so only letters that fold, lower or upper to
    ASCII can disagree: decline when a column matched that way holds one of them."""

    def folds(name: str) -> bool:
        text = data.get_column(name).unique().cast(pl.String)
        return bool(text.str.contains(FOLDS_TO_ASCII).any())

    check_caseless_by(folds, *wheres)


def check_caseless_by(folds: Callable[[str], bool], *wheres: Where | None) -> None:
    """:func:`check_caseless`, told by ``folds`` whether a column holds such letters."""
    stack = list(wheres)
    while stack:
        item = stack.pop()
        if isinstance(item, (And, Or)):
            stack.extend(item.items)
        elif isinstance(item, Not):
            stack.append(item.item)
        elif isinstance(item, Compare) and OPERATORS[item.op].caseless and folds(item.path[0]):
            raise UnsupportedError(
                f"{item.op} on {item.path[0]}, which holds letters that fold to ASCII"
                " differently in PostgreSQL (such as ſ, K or İ)"
            )
