"""GraphQL text -> typed query IR (pure, no I/O)."""

from fraiseql_nb.query.ir import (
    Aggregate,
    AggregateQuery,
    And,
    AnyItem,
    Compare,
    Document,
    GroupKey,
    Not,
    Or,
    OrderItem,
    Query,
    RowQuery,
    Selection,
    Where,
    WindowColumn,
    WindowFunction,
    WindowQuery,
)
from fraiseql_nb.query.parse import parse_query

__all__ = [
    "Aggregate",
    "AggregateQuery",
    "And",
    "AnyItem",
    "Compare",
    "Document",
    "GroupKey",
    "Not",
    "Or",
    "OrderItem",
    "Query",
    "RowQuery",
    "Selection",
    "Where",
    "WindowColumn",
    "WindowFunction",
    "WindowQuery",
    "parse_query",
]
