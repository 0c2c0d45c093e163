"""The aggregates the Polars engine computes, one row each, with SQL's semantics. Pure.

Each row takes the measure three ways — as loaded (``col``), as float64 (``num``), and
exact where PostgreSQL is exact (``exact``: decimals stay decimals, integers become
Int128; floats are ``num``) — and returns the
aggregate. ``count``, ``count_distinct`` and the percentiles (``median``, ``p90``…, from
:data:`fraiseql_nb.language.vocabulary.PERCENTILES`) are computed beside this table. An
aggregate of the vocabulary missing here is declined (PostgreSQL answers it), never
answered as another: ``tests/test_operators.py`` checks that none is missing.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

__all__ = ["MEASURES", "computes", "shifted"]

Measure = Callable[[pl.Expr, pl.Expr, pl.Expr], pl.Expr]


def _avg(col: pl.Expr, num: pl.Expr, exact: pl.Expr) -> pl.Expr:
    if exact is num:
        return num.mean()
    if exact is not col:
        # Integers: the exact sum, divided once in float64 (within an ulp of PostgreSQL's
        # numeric quotient; a decimal division would cost three times the sum).
        return exact.sum().cast(pl.Float64) / pl.when(col.count() > 0).then(col.count())
    # The exact sum divided with 18 decimals, then rounded once, as PostgreSQL's numeric
    # avg is: the same digits in every run, whatever the order of rows. (A sum with more
    # than 20 integer digits does not fit: PostgreSQL answers.)
    # The divisor is NULL where there is no value: Polars evaluates both branches of a
    # when(), and a decimal divided by zero raises.
    return exact.sum().cast(pl.Decimal(38, 18)) / pl.when(col.count() > 0).then(col.count())


#: name -> (col, num, exact) -> the aggregate (cast to float64 by the caller).
MEASURES: dict[str, Measure] = {
    # SQL: the sum of no value is NULL, where Polars says 0.
    "sum": lambda col, num, exact: pl.when(col.count() > 0).then(exact.sum()),
    "avg": _avg,
    "min": lambda col, num, exact: exact.min(),
    "max": lambda col, num, exact: exact.max(),
    "stddev": lambda col, num, exact: pl.when(col.count() > 1).then(shifted(exact).std(ddof=1)),
    "variance": lambda col, num, exact: pl.when(col.count() > 1).then(shifted(exact).var(ddof=1)),
}


def shifted(exact: pl.Expr) -> pl.Expr:
    """The values less their least, as float64: the same spread, without the cancellation
    of large values with a small spread (1e12 + 0.1 is not a float64; 0.1 nearly is).
    Decimals subtract exactly; floats near each other do too (Sterbenz). PostgreSQL's
    numeric spread is exact and its float8 one compensated: this keeps up with both."""
    return (exact - exact.min()).cast(pl.Float64)


def computes(function: str, percentile: float | None) -> bool:
    """Whether the engine computes this aggregate (else the arrow plane declines it)."""
    return function in ("count", "count_distinct") or percentile is not None or function in MEASURES
