"""What a query reads and what it returns: its columns, their Polars dtypes, and
whether the engine can compute it exactly. Pure."""

from __future__ import annotations

from typing import Any

import polars as pl

from fraiseql_nb.language.aggregates import AGGREGATES, OUTPUT_DTYPES
from fraiseql_nb.language.operators import OPERATORS
from fraiseql_nb.language.vocabulary import FIELD_TYPED_FUNCTIONS, INTEGER_FUNCTIONS
from fraiseql_nb.query.ir import (
    AggregateQuery,
    And,
    Compare,
    GroupWindow,
    Not,
    Or,
    Where,
    WindowColumn,
    WindowQuery,
)
from fraiseql_nb.schema.model import FactTable
from fraiseql_nb.sql.facts import load_refusal

__all__ = [
    "SCALAR_DTYPES",
    "column_dtype",
    "declines",
    "group_dtype",
    "needed_columns",
    "output_schema",
]


#: The Polars dtype of each GraphQL scalar, shared by every plane's results.
SCALAR_DTYPES: dict[str, Any] = {
    "Int": pl.Int64,
    "BigInt": pl.Int64,
    "Float": pl.Float64,
    "String": pl.String,
    "Boolean": pl.Boolean,
    "DateTime": pl.Datetime("us", "UTC"),
    "Date": pl.Date,
    "ID": pl.String,
    "JSON": pl.String,
}


def output_schema(query: AggregateQuery | WindowQuery, fact: FactTable) -> dict[str, Any]:
    """Column names and Polars dtypes of a query's output (the same on both planes)."""
    if isinstance(query, AggregateQuery):
        return {name: group_dtype(query, fact, source) for name, source in query.columns}
    out = {}
    for o in query.outputs:
        if isinstance(o, WindowColumn):
            out[o.name] = column_dtype(fact, o.column)
        elif o.function in ("row_number", "rank", "dense_rank", "ntile", "running_count"):
            out[o.name] = pl.Int64
        elif o.function in ("lag", "lead", "first_value", "last_value"):
            out[o.name] = column_dtype(fact, o.field or "")
        else:
            out[o.name] = pl.Float64
    return out


def group_dtype(query: AggregateQuery, fact: FactTable, column: str) -> Any:
    """The dtype of a column of an aggregate query's grouped rows: a key, an aggregate, or
    a calc or window over the groups."""
    agg = next((a for a in query.aggregates if a.name == column), None)
    if agg is not None and AGGREGATES[agg.function].output == "JSON":
        return pl.List(column_dtype(fact, agg.field or ""))
    if agg is not None:
        return OUTPUT_DTYPES[AGGREGATES[agg.function].output]
    post = next((p for level in query.post for p in level if p.name == column), None)
    if post is None:
        return column_dtype(fact, column)
    if isinstance(post, GroupWindow) and post.function in INTEGER_FUNCTIONS:
        return pl.Int64
    if isinstance(post, GroupWindow) and post.function in FIELD_TYPED_FUNCTIONS:
        return group_dtype(query, fact, post.field or "")
    return pl.Float64


def column_dtype(fact: FactTable, name: str) -> Any:
    scalar = fact.scalar_of(name) or "String"
    return SCALAR_DTYPES.get(scalar, pl.String)


def declines(
    query: AggregateQuery | WindowQuery, fact: FactTable, columns: tuple[str, ...]
) -> str | None:
    """Why this engine will not answer ``query`` (reading ``columns``) exactly — a column
    type it does not load as such, an operator it does not compute — or None. The query
    then runs on PostgreSQL, and nothing is loaded for it."""
    for name in columns:
        reason = load_refusal(fact, name)
        if reason is not None:
            return reason
    if isinstance(query, AggregateQuery):
        for agg in query.aggregates:
            fn = AGGREGATES.get(agg.function)
            if fn is None or fn.polars is None:
                return f"the aggregate {agg.function}"
            if fn.text_only and fact.scalar_of(agg.field or "") != "String":
                return f"{agg.function} of {agg.field}, which is not text"
    conditions = (
        (*query.conditions(), query.having, query.qualify)
        if isinstance(query, AggregateQuery)
        else (query.where,)
    )
    for where in conditions:
        for op in _operators(where):
            if OPERATORS[op].polars is None:
                return f"the operator {op} ({OPERATORS[op].family})"
    return None


def _operators(where: Where | None) -> set[str]:
    if isinstance(where, Compare):
        return {where.op}
    if isinstance(where, (And, Or)):
        return set().union(*(_operators(w) for w in where.items)) if where.items else set()
    if isinstance(where, Not):
        return _operators(where.item)
    return set()


def needed_columns(query: AggregateQuery | WindowQuery, fact: FactTable) -> list[str]:
    """The fact columns (and dimensions) a query reads, id included when there is one."""
    names: list[str] = []

    def add(name: str | None) -> None:
        if name is not None and name not in names:
            names.append(name)

    def add_where(w: Where | None) -> None:
        if isinstance(w, Compare):
            add(w.path[0])
        elif isinstance(w, (And, Or)):
            for item in w.items:
                add_where(item)
        elif isinstance(w, Not):
            add_where(w.item)

    add_where(query.where)
    if isinstance(query, AggregateQuery):
        for k in query.group_keys:
            add(k.column if k.source == "bucket" else k.name)
        for a in query.aggregates:
            add(a.field)
            add(a.order)
            add_where(a.filter)
    else:
        for p in query.partition_by:
            add(p)
        for o in query.order:
            add(o.path[0])
        for out in query.outputs:
            if isinstance(out, WindowColumn):
                add(out.column)
            else:
                add(out.field)
                for p in out.partition_by:
                    add(p)
                for o in out.order:
                    add(o.path[0])
        add(fact.id_column)
    if not names:
        # count alone still needs the rows: load a narrow column.
        id_column = fact.column(fact.id_column or "")
        narrow = id_column is not None and id_column.scalar in ("Int", "BigInt")
        add(fact.id_column if narrow else fact.measures[0].name)
    return names
