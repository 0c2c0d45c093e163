"""The analytics vocabulary: time-bucket and window-function names (the aggregates are
rows of :data:`fraiseql_nb.language.aggregates.AGGREGATES`).

The GraphQL schema (:mod:`fraiseql_nb.schema.graphql`), the IR builders
(:mod:`fraiseql_nb.query.facts`), the SQL compiler
(:mod:`fraiseql_nb.sql.facts`) and the Polars engine
(:mod:`fraiseql_nb.compute`) all read these names from here, so a
function added here is one the whole pipeline knows of (or fails loudly on).
"""

from __future__ import annotations

__all__ = [
    "BUCKETS",
    "CLOCK_BUCKETS",
    "FIELD_TYPED_FUNCTIONS",
    "INTEGER_FUNCTIONS",
    "ORDERED_FUNCTIONS",
    "POLARS_TRUNCATE",
    "RANKING_FUNCTIONS",
    "ROW_ORDER_FUNCTIONS",
    "RUNNING_FUNCTIONS",
    "SAME_UNIT_FUNCTIONS",
    "VALUE_FUNCTIONS",
    "WINDOW_FUNCTIONS",
]

# --------------------------------------------------------------------- buckets

#: Time buckets ``<column>_<unit>``, and the key of a calendar column (``date_info``)
#: that holds each one.
BUCKETS = {"day": "date", "week": "week", "month": "month", "quarter": "quarter", "year": "year"}
#: Buckets finer than a day, of columns with a time of day: their key is a time (the
#: bucket's first instant, in the session time zone), not a date.
CLOCK_BUCKETS = ("second", "minute", "hour")
#: How Polars truncates a time to each bucket (weeks start on Monday, as date_trunc's).
POLARS_TRUNCATE = {
    "second": "1s",
    "minute": "1m",
    "hour": "1h",
    "day": "1d",
    "week": "1w",
    "month": "1mo",
    "quarter": "1q",
    "year": "1y",
}

# ------------------------------------------------------------ window functions

RANKING_FUNCTIONS = ("row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile")
VALUE_FUNCTIONS = ("lag", "lead", "first_value", "last_value")
RUNNING_FUNCTIONS = ("running_sum", "running_avg", "running_count", "running_min", "running_max")
WINDOW_FUNCTIONS = (*RANKING_FUNCTIONS, *VALUE_FUNCTIONS, *RUNNING_FUNCTIONS)
#: Functions whose result depends on row order: they need an orderBy.
ORDERED_FUNCTIONS = (*RANKING_FUNCTIONS, *VALUE_FUNCTIONS)
#: Functions whose value depends on the order of rows among peers: they break
#: ties on the id column (ranks, by definition, do not).
ROW_ORDER_FUNCTIONS = ("row_number", "ntile", *VALUE_FUNCTIONS, *RUNNING_FUNCTIONS)
#: Window functions whose value is a whole number, and those of their field's type.
INTEGER_FUNCTIONS = ("row_number", "rank", "dense_rank", "ntile", "running_count")
FIELD_TYPED_FUNCTIONS = VALUE_FUNCTIONS
# Window functions whose value is in their field's unit (a lag of revenue is revenue).
SAME_UNIT_FUNCTIONS = (*VALUE_FUNCTIONS, "running_sum", "running_avg", "running_min", "running_max")
