"""Aggregate and window IR -> SQL over a fact table. Pure.

Two kinds of statement:

- **pushdown**: the whole query as one SELECT (GROUP BY, ``date_trunc``,
  ``percentile_cont``, HAVING, window functions with ROWS frames) returning
  one JSON document per output row, for the ``postgres`` plane;
- **load**: the columns a query needs, for the ``arrow`` plane (ADBC), with
  values written as literals (a load with bound parameters makes ADBC skip
  COPY), numerics cast so they arrive as numbers and dimension paths
  extracted from JSONB in SQL.

Both planes must return the same rows, so the conventions are shared:
aggregates of measures are float8 (counts bigint); text sorts with
``COLLATE "C"`` (code-point order, as Polars sorts); NULLs sort last unless
asked; group output is ordered by the query's orderBy, then by every group
key; row-order window functions and window output break ties on the fact's
id column.
"""

from __future__ import annotations

from dataclasses import replace

from psycopg import sql

from fraiseql_nb.language.aggregates import AGGREGATES, OUTPUT_PG_TYPES
from fraiseql_nb.language.vocabulary import (
    CLOCK_BUCKETS,
    FIELD_TYPED_FUNCTIONS,
    INTEGER_FUNCTIONS,
    ROW_ORDER_FUNCTIONS,
)
from fraiseql_nb.query.ir import (
    Aggregate,
    AggregateQuery,
    Calc,
    Compare,
    GroupKey,
    GroupWindow,
    OrderItem,
    WindowColumn,
    WindowFunction,
    WindowQuery,
)
from fraiseql_nb.query.values import base_type
from fraiseql_nb.schema.model import FactTable
from fraiseql_nb.sql.exprs import FieldSQL, column_field, document_field
from fraiseql_nb.sql.groups import after_groups
from fraiseql_nb.sql.params import Params
from fraiseql_nb.sql.where import compile_where
from fraiseql_nb.sql.windows import frame, framed, window_call

__all__ = [
    "LOAD_CASTS",
    "compile_aggregate",
    "compile_load",
    "compile_window",
    "field_sql",
    "load_expression",
    "load_refusal",
    "loadable_columns",
    "output_key",
    "output_names",
    "output_pg_type",
    "where_field",
]

# Text types: sorted and compared by code point (COLLATE "C"), as Polars does.
_TEXT_TYPES = ("text", "character varying", "character", "name")
#: Column types the analytics plane loads, and the cast a load applies (None:
#: as they are). ADBC would hand uuids over as 16-byte extension values: they
#: are loaded as their canonical text. A query touching a column of any other
#: type (inet, money, arrays, enums…) is declined and runs on PostgreSQL.
LOAD_CASTS: dict[str, str | None] = {
    "smallint": None,
    "integer": None,
    "bigint": None,
    "double precision": None,
    "boolean": None,
    "date": None,
    "timestamp without time zone": None,
    "timestamp with time zone": None,
    "text": None,
    "character varying": None,
    "uuid": "text",
}


# ------------------------------------------------------------------ fields


def field_sql(fact: FactTable, name: str, *, exact: bool = False) -> FieldSQL:
    """How to read column, dimension or measure ``name`` of the fact table."""
    col = fact.column(name)
    if col is not None:
        return column_field(col.name, col.pg_type)
    dim = fact.dimension(name)
    if dim is None:
        raise KeyError(name)
    return document_field(sql.Identifier(dim.column), dim.path, dim.scalar)


def where_field(fact: FactTable, compare: Compare) -> FieldSQL:
    """How a condition reads ``compare``'s field: text compares by code point."""
    return _collated(field_sql(fact, compare.path[0]))


def _collated(f: FieldSQL) -> FieldSQL:
    if not _is_text(f.pg_type):
        return f
    return replace(f, value=sql.SQL('({} COLLATE "C")').format(f.value))


def _is_text(pg_type: str) -> bool:
    return base_type(pg_type) in _TEXT_TYPES


def load_refusal(fact: FactTable, name: str) -> str | None:
    """Why the analytics plane cannot load ``name`` exactly, or None when it can."""
    col = fact.column(name)
    if col is None:
        return None  # dimensions are extracted from JSON in SQL
    if base_type(col.pg_type) == "numeric" and fact.column(name) in fact.measures:
        return None  # measures arrive as float8 (or exact decimals)
    if base_type(col.pg_type) not in LOAD_CASTS:
        return f"column {name} (type {col.pg_type})"
    return None


def _bucket(fact: FactTable, key: GroupKey, timezone: str) -> sql.Composable:
    assert key.column is not None
    assert key.unit is not None
    column = fact.column(key.column)
    assert column is not None
    # Always from the time column (not from a calendar column such as date_info, which
    # may have been computed in another time zone): both planes bucket the same way,
    # and date_trunc is no slower than reading the calendar's JSON.
    ident = sql.Identifier(key.column)
    unit = sql.Literal(key.unit)
    if key.unit in CLOCK_BUCKETS:  # a time: the bucket's first instant, in the time zone
        if column.pg_type.startswith("timestamp with"):
            return sql.SQL("date_trunc({}, {}, {})").format(unit, ident, sql.Literal(timezone))
        return sql.SQL("date_trunc({}, {})").format(unit, ident)
    if column.scalar == "Date":
        local: sql.Composable = sql.SQL("{}::timestamp").format(ident)
    elif column.pg_type.startswith("timestamp with"):
        local = sql.SQL("({} AT TIME ZONE {})").format(ident, sql.Literal(timezone))
    else:
        local = ident
    return sql.SQL("date_trunc({}, {})::date").format(unit, local)


def _key_expr(fact: FactTable, key: GroupKey, timezone: str) -> sql.Composable:
    if key.source == "bucket":
        return _bucket(fact, key, timezone)
    return field_sql(fact, key.name).value


def output_pg_type(
    fact: FactTable,
    name: str,
    aggregates: dict[str, Aggregate],
    posts: dict[str, Calc | GroupWindow] | None = None,
) -> str:
    """The SQL type of an aggregate query's output column ``name``."""
    post = (posts or {}).get(name)
    if post is not None:
        if isinstance(post, GroupWindow) and post.function in FIELD_TYPED_FUNCTIONS and post.field:
            return output_pg_type(fact, post.field, aggregates, posts)
        counted = isinstance(post, GroupWindow) and post.function in INTEGER_FUNCTIONS
        return "bigint" if counted else "float8"
    agg = aggregates.get(name)
    if agg is not None:
        return OUTPUT_PG_TYPES[AGGREGATES[agg.function].output]
    bucket = fact.buckets.get(name)
    if bucket is not None:
        if bucket[1] in CLOCK_BUCKETS:
            return field_sql(fact, bucket[0]).pg_type
        return "date"
    return field_sql(fact, name).pg_type


def _order_by(
    items: list[tuple[sql.Composable, str, OrderItem | None]],
) -> sql.Composable:
    """ORDER BY for (expression, SQL type, item) — item None means ascending, NULLs last."""
    parts = []
    for expr, pg_type, item in items:
        if _is_text(pg_type):
            expr = sql.SQL('{} COLLATE "C"').format(expr)
        desc = item is not None and item.descending
        first = item is not None and item.nulls_first
        parts.append(
            sql.SQL("{} {} NULLS {}").format(
                expr, sql.SQL("DESC" if desc else "ASC"), sql.SQL("FIRST" if first else "LAST")
            )
        )
    return sql.SQL(", ").join(parts)


# --------------------------------------------------------------- aggregate


def _aggregate_expr(fact: FactTable, agg: Aggregate, params: Params) -> sql.Composable:
    """The aggregate's own SQL rendering (its row of the table) over its field's value,
    over the rows its filter passes, cast to its output's type."""
    fn = AGGREGATES[agg.function]
    order: sql.Composable = sql.SQL("")
    if agg.order is not None:  # the values in the order of the fact's id (or their own)
        f = field_sql(fact, agg.order)
        order = sql.SQL("ORDER BY {}").format(_order_by([(f.value, f.pg_type, None)]))
    call = fn.sql(field_sql(fact, agg.field).value if agg.field is not None else None, order)
    if agg.filter is not None:
        condition = compile_where(agg.filter, lambda c: where_field(fact, c), params)
        call = sql.SQL("{} FILTER (WHERE {})").format(call, condition)
    if fn.output == "JSON":  # a list: an array or json, which the row's JSON spells alike
        return call
    return sql.SQL("({})::{}").format(call, sql.SQL(OUTPUT_PG_TYPES[fn.output]))


def output_key(position: int) -> str:
    """The SQL name of the output at ``position``: the statement never names a column
    after a user's alias, which could collide with its own names (``__fq_row``) or pass
    PostgreSQL's 63-byte limit on names (and come back cut short, hence as NULL); the
    plane names the columns after the query's outputs."""
    return f"fq:c{position}"  # a ":" no GraphQL name, hence no column of a fact, holds


def output_names(query: AggregateQuery | WindowQuery) -> list[str]:
    """The outputs' names, in the order of :func:`output_key`."""
    if isinstance(query, AggregateQuery):
        return [out for out, _ in query.columns]
    return [o.name for o in query.outputs]


def compile_aggregate(
    query: AggregateQuery, fact: FactTable, params: Params, *, timezone: str = "UTC"
) -> sql.Composed:
    """One SELECT returning a JSON text document per output row."""
    relation = sql.Identifier(fact.schema, fact.relation)
    aggregates = {a.name: a for a in query.aggregates}
    inner_cols = [
        sql.SQL("{} AS {}").format(_key_expr(fact, k, timezone), sql.Identifier(k.name))
        for k in query.group_keys
    ] + [
        sql.SQL("{} AS {}").format(_aggregate_expr(fact, a, params), sql.Identifier(a.name))
        for a in query.aggregates
    ]
    inner = sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(inner_cols), relation)
    if query.where is not None:
        inner = sql.SQL("{} WHERE {}").format(
            inner, compile_where(query.where, lambda c: where_field(fact, c), params)
        )
    if query.group_keys:
        inner = sql.SQL("{} GROUP BY {}").format(
            inner, sql.SQL(", ").join(sql.SQL(str(i + 1)) for i in range(len(query.group_keys)))
        )

    posts = {p.name: p for level in query.post for p in level}

    def pg_type(name: str) -> str:
        return output_pg_type(fact, name, aggregates, posts)

    def q_field(c: Compare) -> FieldSQL:
        name = c.path[0]
        return _collated(column_field(name, pg_type(name)))

    outer = sql.SQL("SELECT * FROM ({}) AS __fq_q").format(inner)
    if query.having is not None:
        outer = sql.SQL("{} WHERE {}").format(outer, compile_where(query.having, q_field, params))
    if query.post or query.per_group is not None:  # calcs, windows over the groups
        after = after_groups(
            outer,
            query,
            params,
            pg_type,
            _order_by,
            lambda where: compile_where(where, q_field, params),
        )
        outer = sql.SQL("SELECT * FROM ({}) AS __fq_q").format(after)
    order: list[tuple[sql.Composable, str, OrderItem | None]] = [
        (sql.Identifier(o.path[0]), pg_type(o.path[0]), o) for o in query.order
    ]
    order += [(sql.Identifier(k.name), pg_type(k.name), None) for k in query.group_keys]
    if order:
        outer = sql.SQL("{} ORDER BY {}").format(outer, _order_by(order))
    outer = _paging(outer, query.limit, query.offset, params)
    columns = sql.SQL(", ").join(
        sql.SQL("__fq_q.{} AS {}").format(sql.Identifier(source), sql.Identifier(output_key(i)))
        for i, (_, source) in enumerate(query.columns)
    )
    return sql.SQL(
        "SELECT row_to_json(__fq_row)::text FROM (SELECT {} FROM ({}) AS __fq_q) AS __fq_row"
    ).format(columns, outer)


def _paging(
    stmt: sql.Composable, limit: int | None, offset: int | None, params: Params
) -> sql.Composed:
    out = sql.Composed([stmt])
    if limit is not None:
        out = sql.SQL("{} LIMIT {}").format(out, params.add(limit, "bigint"))
    if offset:
        out = sql.SQL("{} OFFSET {}").format(out, params.add(offset, "bigint"))
    return out


# ------------------------------------------------------------------ window


def _id_type(fact: FactTable) -> str:
    column = fact.column(fact.id_column or "")
    return column.pg_type if column is not None else "bigint"


def _window_value(fact: FactTable, name: str) -> sql.Composable:
    value = field_sql(fact, name).value
    return sql.SQL("({})::float8").format(value) if _is_numeric_measure(fact, name) else value


def _is_numeric_measure(fact: FactTable, name: str) -> bool:
    measure = next((m for m in fact.measures if m.name == name), None)
    return measure is not None and measure.scalar == "Float"


def _over(fact: FactTable, fn: WindowFunction) -> sql.Composable:
    parts: list[sql.Composable] = []
    if fn.partition_by:
        parts.append(
            sql.SQL("PARTITION BY {}").format(
                sql.SQL(", ").join(field_sql(fact, p).value for p in fn.partition_by)
            )
        )
    if fn.order:
        items: list[tuple[sql.Composable, str, OrderItem | None]] = [
            (field_sql(fact, o.path[0]).value, field_sql(fact, o.path[0]).pg_type, o)
            for o in fn.order
        ]
        if fn.function in ROW_ORDER_FUNCTIONS and fact.id_column:
            items.append((sql.Identifier(fact.id_column), _id_type(fact), None))
        parts.append(sql.SQL("ORDER BY {}").format(_order_by(items)))
        if framed(fn):
            parts.append(frame(fn))
    return sql.SQL("OVER ({})").format(sql.SQL(" ").join(parts))


def _window_expr(fact: FactTable, fn: WindowFunction, params: Params) -> sql.Composable:
    field = fn.field
    default = None
    if fn.default is not None and field is not None:
        pg_type = "float8" if _is_numeric_measure(fact, field) else field_sql(fact, field).pg_type
        default = params.add(fn.default, pg_type)
    return window_call(
        fn,
        _over(fact, fn),
        value=_window_value(fact, field) if field else None,
        running=field_sql(fact, field).value if field else None,
        default=default,
    )


def compile_window(query: WindowQuery, fact: FactTable, params: Params) -> sql.Composed:
    """One SELECT returning a JSON text document per output row."""
    relation = sql.Identifier(fact.schema, fact.relation)
    columns: list[sql.Composable] = []
    for i, out in enumerate(query.outputs):
        if isinstance(out, WindowColumn):
            expr = _window_value(fact, out.column)
        else:
            expr = _window_expr(fact, out, params)
        columns.append(sql.SQL("{} AS {}").format(expr, sql.Identifier(output_key(i))))
    stmt = sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(columns), relation)
    if query.where is not None:
        stmt = sql.SQL("{} WHERE {}").format(
            stmt, compile_where(query.where, lambda c: where_field(fact, c), params)
        )
    order: list[tuple[sql.Composable, str, OrderItem | None]] = [
        (field_sql(fact, o.path[0]).value, field_sql(fact, o.path[0]).pg_type, o)
        for o in query.order
    ]
    if fact.id_column:
        order.append((sql.Identifier(fact.id_column), _id_type(fact), None))
    if order:
        stmt = sql.SQL("{} ORDER BY {}").format(stmt, _order_by(order))
    stmt = _paging(stmt, query.limit, query.offset, params)
    return sql.SQL("SELECT row_to_json(__fq_row)::text FROM ({}) AS __fq_row").format(stmt)


# -------------------------------------------------------------------- load


def load_expression(fact: FactTable, name: str, *, exact_decimals: bool = False) -> sql.Composable:
    """How a load reads column, dimension or measure ``name``: as a type Arrow holds exactly."""
    f = field_sql(fact, name)
    expr = f.value
    measure = next((m for m in fact.measures if m.name == name), None)
    column = fact.column(name)
    cast = LOAD_CASTS.get(base_type(column.pg_type)) if column is not None else None
    if measure is not None and measure.scalar == "Float":
        # Only numeric is exact in PostgreSQL: float8 and real are summed as floats there.
        numeric = base_type(measure.pg_type) == "numeric"
        cast = "text" if exact_decimals and numeric else "float8"
    elif column is None and f.pg_type == "numeric":
        # A number read from the dimension document: float64 where it holds the number
        # (15 significant digits), else NaN, which the engine declines — 2^53 + 1 must
        # not group with 2^53, as it does not in PostgreSQL.
        return sql.SQL(
            "(CASE WHEN ({v})::float8::numeric <> {v} THEN 'NaN'::float8 ELSE ({v})::float8 END)"
        ).format(v=expr)
    if cast is not None:
        expr = sql.SQL("({})::{}").format(expr, sql.SQL(cast))
    return expr


def loadable_columns(fact: FactTable) -> list[str]:
    """Every column, dimension and measure the analytics plane can load."""
    return [name for name in fact.row_columns if load_refusal(fact, name) is None]


def compile_load(
    fact: FactTable,
    names: list[str],
    *,
    where: sql.Composable | None = None,
    exact_decimals: bool = False,
    source: sql.Composable | None = None,
) -> sql.Composed:
    """SELECT the named columns for an ADBC load; ``where`` must hold literals only.
    ``source`` reads other rows of the table's shape (changed rows, as values) instead."""
    columns = [
        sql.SQL("{} AS {}").format(
            load_expression(fact, name, exact_decimals=exact_decimals), sql.Identifier(name)
        )
        for name in names
    ]
    stmt = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(columns), source or sql.Identifier(fact.schema, fact.relation)
    )
    if where is not None:
        stmt = sql.SQL("{} WHERE {}").format(stmt, where)
    return stmt
