"""The aggregate functions, one row each — as :mod:`.operators` has one row per WHERE
operator: what the selected field is named after, the output's type, the SQL rendering,
the Polars rendering (None: the arrow plane declines, PostgreSQL answers), and how the
cluster plane combines per-partition results. The GraphQL schema, the IR, the SQL
compiler, the Polars engine and the cluster's merge all read :data:`AGGREGATES`, so a
row added here is an aggregate everywhere (``tests/language/test_operators.py`` adds one at run
time and finds it in the schema, the SQL and the Polars result).

Polars renderings take the field three ways — as loaded (``col``), as float64
(``num``), and exact where PostgreSQL is exact (``exact``: decimals stay decimals,
integers become Int128; floats are ``num``) — and follow SQL's semantics (the sum of no
value is NULL; a sample spread of one value is NULL).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import polars as pl
from psycopg import sql

__all__ = [
    "AGGREGATES",
    "OUTPUT_DTYPES",
    "OUTPUT_PG_TYPES",
    "AggregateFunction",
    "measure_aggregates",
    "percentiles",
    "shifted",
]

#: Polars: (col, num, exact) -> the aggregate.
PolarsAggregate = Callable[[pl.Expr, pl.Expr, pl.Expr], pl.Expr]
#: SQL: the field's value expression (None for an aggregate over rows) and, for an
#: ``ordered`` one, the ``ORDER BY …`` of its values -> the aggregate call, uncast
#: (``sum(x)``, ``percentile_cont(0.5) WITHIN GROUP (ORDER BY x)``).
SqlAggregate = Callable[[sql.Composable | None, sql.Composable], sql.Composable]


@dataclass(frozen=True)
class AggregateFunction:
    """One aggregate function.

    Attributes:
        name: the function; the selected field is ``<measure>_<name>`` (``over``
            "measure"), ``<column>_<name>`` ("column": any column or dimension), or
            ``<name>`` itself ("rows").
        output: the GraphQL scalar of its value ("Int", "Float", "String", "Boolean"), or
            "JSON": a list of its field's values.
        sql: its SQL rendering: one aggregate call (the compiler adds a conditional
            aggregate's ``FILTER (WHERE …)`` after it and casts it to the output's type).
        polars: its Polars rendering, or None (the arrow plane declines it).
        merge: "parts" when per-partition results combine exactly (the cluster plane's
            merge implements it), else "shuffle" (every value of a group to one worker).
        percentile: the fraction, for a percentile (interpolated, as percentile_cont).
        accumulated: its float value is summed up, so the planes may differ in the last
            digits: ordering by it treats such near-ties as ties.
        ordered: its value lists its field's values, in the order of the fact's id (SQL
            leaves that order unspecified: every plane gives this one).
        applies: the scalars of the fields it takes (empty: any).
        text_only: the arrow plane computes it over text fields only (other values
            would be spelled as PostgreSQL spells them: 12.50, not 12.5).
    """

    name: str
    over: Literal["rows", "measure", "column"]
    output: Literal["Int", "Float"]
    sql: SqlAggregate
    polars: PolarsAggregate | None
    merge: Literal["parts", "shuffle"] = "shuffle"
    percentile: float | None = None
    accumulated: bool = False
    ordered: bool = False
    applies: tuple[str, ...] = ()
    text_only: bool = False


#: The types each output scalar has in Polars and in PostgreSQL (a "JSON" output, a list,
#: has its field's type: see :func:`fraiseql_nb.compute.columns.output_schema`).
OUTPUT_DTYPES = {"Int": pl.Int64, "Float": pl.Float64, "String": pl.String, "Boolean": pl.Boolean}
OUTPUT_PG_TYPES = {
    "Int": "bigint",
    "Float": "float8",
    "String": "text",
    "Boolean": "boolean",
    "JSON": "jsonb",  # in the row's JSON: the list as it is (never tested nor sorted)
}
#: The delimiter of string_agg (FraiseQL's).
DELIMITER = ", "


def shifted(exact: pl.Expr) -> pl.Expr:
    """The values less their least, as float64: the same spread, without the cancellation
    of large values with a small spread (1e12 + 0.1 is not a float64; 0.1 nearly is).
    Decimals subtract exactly; floats near each other do too (Sterbenz). PostgreSQL's
    numeric spread is exact and its float8 one compensated: this keeps up with both."""
    return (exact - exact.min()).cast(pl.Float64)


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


def _sql_function(function: str) -> SqlAggregate:
    def render(value: sql.Composable | None, order: sql.Composable) -> sql.Composable:
        assert value is not None
        return sql.SQL("{}({})").format(sql.SQL(function), value)

    return render


def _percentile(name: str, fraction: float) -> AggregateFunction:
    def render(value: sql.Composable | None, order: sql.Composable) -> sql.Composable:
        assert value is not None
        return sql.SQL("percentile_cont({}) WITHIN GROUP (ORDER BY {})").format(
            sql.Literal(fraction), value
        )

    return AggregateFunction(
        name,
        "measure",
        "Float",
        render,
        lambda col, num, exact: num.quantile(fraction, interpolation="linear"),
        percentile=fraction,
    )


def _count_distinct(value: sql.Composable | None, order: sql.Composable) -> sql.Composable:
    assert value is not None
    return sql.SQL("count(DISTINCT {})").format(value)


def _listed(function: str) -> AggregateFunction:
    """array_agg, json_agg, jsonb_agg: every value, NULLs too (as SQL's), in id order."""

    def render(value: sql.Composable | None, order: sql.Composable) -> sql.Composable:
        assert value is not None
        return sql.SQL("{}({} {})").format(sql.SQL(function), value, order)

    return AggregateFunction(
        function,
        "column",
        "JSON",
        render,
        lambda col, num, exact: pl.when(col.len() > 0).then(col.implode()),
        ordered=True,
    )


def _string_agg(value: sql.Composable | None, order: sql.Composable) -> sql.Composable:
    assert value is not None
    return sql.SQL("string_agg(({})::text, {} {})").format(value, sql.Literal(DELIMITER), order)


def _truth(function: str, polars: Callable[[pl.Expr], pl.Expr]) -> AggregateFunction:
    """bool_and, bool_or over a boolean field: NULLs skipped, NULL when no value."""
    return AggregateFunction(
        function,
        "column",
        "Boolean",
        lambda value, order: sql.SQL("{}({})").format(sql.SQL(function), value),
        lambda col, num, exact: pl.when(col.count() > 0).then(polars(col.drop_nulls())),
        applies=("Boolean",),
    )


#: Every aggregate function, by name (see :class:`AggregateFunction`).
AGGREGATES: dict[str, AggregateFunction] = {
    f.name: f
    for f in (
        AggregateFunction(
            "count",
            "rows",
            "Int",
            lambda _value, _order: sql.SQL("count(*)"),
            lambda col, num, exact: pl.len(),
            merge="parts",
        ),
        AggregateFunction(
            "count_distinct",
            "column",
            "Int",
            _count_distinct,
            lambda col, num, exact: col.drop_nulls().n_unique(),
        ),
        AggregateFunction(
            "sum",
            "measure",
            "Float",
            _sql_function("sum"),
            # SQL: the sum of no value is NULL, where Polars says 0.
            lambda col, num, exact: pl.when(col.count() > 0).then(exact.sum()),
            merge="parts",
            accumulated=True,
        ),
        AggregateFunction(
            "avg", "measure", "Float", _sql_function("avg"), _avg, merge="parts", accumulated=True
        ),
        AggregateFunction(
            "min",
            "measure",
            "Float",
            _sql_function("min"),
            lambda col, num, exact: exact.min(),
            merge="parts",
        ),
        AggregateFunction(
            "max",
            "measure",
            "Float",
            _sql_function("max"),
            lambda col, num, exact: exact.max(),
            merge="parts",
        ),
        AggregateFunction(  # the sample standard deviation, as stddev_samp
            "stddev",
            "measure",
            "Float",
            _sql_function("stddev_samp"),
            lambda col, num, exact: pl.when(col.count() > 1).then(shifted(exact).std(ddof=1)),
            merge="parts",
            accumulated=True,
        ),
        AggregateFunction(  # the sample variance, as var_samp
            "variance",
            "measure",
            "Float",
            _sql_function("var_samp"),
            lambda col, num, exact: pl.when(col.count() > 1).then(shifted(exact).var(ddof=1)),
            merge="parts",
            accumulated=True,
        ),
        _percentile("median", 0.5),
        _percentile("p25", 0.25),
        _percentile("p75", 0.75),
        _percentile("p90", 0.9),
        _percentile("p95", 0.95),
        _percentile("p99", 0.99),
        AggregateFunction(
            "string_agg",
            "column",
            "String",
            _string_agg,
            lambda col, num, exact: pl.when(col.count() > 0).then(
                col.drop_nulls().cast(pl.String).str.join(DELIMITER)
            ),
            ordered=True,
            text_only=True,
        ),
        _listed("array_agg"),
        _listed("json_agg"),
        _listed("jsonb_agg"),
        _truth("bool_and", lambda col: col.all()),
        _truth("bool_or", lambda col: col.any()),
    )
}


def measure_aggregates() -> list[AggregateFunction]:
    """The functions selected as ``<measure>_<function>``, read at call time (a row added
    at run time is one of them)."""
    return [f for f in AGGREGATES.values() if f.over == "measure"]


def percentiles() -> dict[str, float]:
    """Each percentile function's fraction."""
    return {f.name: f.percentile for f in AGGREGATES.values() if f.percentile is not None}
