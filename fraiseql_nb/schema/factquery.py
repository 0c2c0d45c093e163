"""A fact table's two queries in the GraphQL schema: ``<name>_aggregate`` (where, groupBy,
having, orderBy, paging; one output field per key and per aggregate of the aggregate
table) and ``<name>_window`` (partitionBy, orderBy; the window functions)."""

from __future__ import annotations

from collections.abc import Callable

from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLEnumValue,
    GraphQLField,
    GraphQLFloat,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLString,
)

from fraiseql_nb.language.aggregates import AGGREGATES
from fraiseql_nb.language.operators import (
    NAMED_OPERATORS,
    OPERATORS,
    SPELLINGS,
    flattened,
    has_named_form,
)
from fraiseql_nb.language.vocabulary import RANKING_FUNCTIONS, RUNNING_FUNCTIONS
from fraiseql_nb.schema.inputs import Inputs, combinators, named_order
from fraiseql_nb.schema.model import FactTable
from fraiseql_nb.schema.scalars import JSON, SCALAR_TYPES, OutputName, TimeGroup, operand_type

__all__ = [
    "aggregate_names",
    "bare_distinct",
    "fact_fields",
    "having_names",
    "key_names",
    "where_names",
]


def where_names(fact: FactTable) -> dict[str, str]:
    """What a fact query's ``where`` names: its filter columns, measures and dimensions,
    each with its scalar."""
    names = {c.name: c.scalar for c in (*fact.filters, *fact.measures)}
    names.update({d.name: d.scalar for d in fact.dimensions})
    return names


def key_names(fact: FactTable) -> dict[str, str]:
    """The group keys of a fact table (columns, dimensions, time buckets), with scalars."""
    keys = {c.name: c.scalar for c in fact.key_columns}
    keys.update({d.name: d.scalar for d in fact.dimensions})
    keys.update({b: fact.scalar_of(b) or "Date" for b in fact.buckets})
    return keys


def bare_distinct(fact: FactTable) -> str | None:
    """What ``count_distinct`` without a field counts, as FraiseQL does: the values of the
    first dimension, else of the id column (None: there is neither)."""
    if fact.dimensions:
        return fact.dimensions[0].name
    return fact.id_column


def aggregate_names(fact: FactTable) -> dict[str, str]:
    """Every aggregate of the aggregate table over ``fact``, with its output scalar."""
    aggregates: dict[str, str] = {}
    for fn in AGGREGATES.values():  # one row each: its output field(s), its type
        if fn.over == "rows":
            aggregates[fn.name] = fn.output
        elif fn.over == "measure":
            aggregates.update({f"{m.name}_{fn.name}": fn.output for m in fact.measures})
    if bare_distinct(fact) is not None:
        aggregates["count_distinct"] = AGGREGATES["count_distinct"].output
    for fn in AGGREGATES.values():
        if fn.over == "column":
            aggregates.update(
                {
                    f"{n}_{fn.name}": fn.output
                    for n, scalar in where_names(fact).items()
                    if not fn.applies or scalar in fn.applies
                }
            )
    return aggregates


def having_names(fact: FactTable) -> dict[str, str]:
    """What ``having`` (and an aggregate's ``orderBy``) names: the group keys and every
    aggregate but the lists, each with its scalar."""
    names = {**key_names(fact), **aggregate_names(fact)}
    return {n: s for n, s in names.items() if s != "JSON"}


def _flat_fields(inputs: Inputs, names: dict[str, str]) -> dict[str, GraphQLInputField]:
    """FraiseQL's flattened keys (``count_gte``) as deprecated fields: they validate, and
    completion offers the nested form."""
    out = {}
    for key, (name, spelled) in flattened(names, set(names)).items():
        op = OPERATORS[SPELLINGS[spelled][0]]
        out[key] = GraphQLInputField(
            operand_type(op.operand, SCALAR_TYPES[names[name]]),
            description=f"{name}: {{{spelled}: …}}",
            deprecation_reason=f"FraiseQL's flattened form of {name}: {{{spelled}: …}}",
        )
    return out


def _named_having(taken: set[str]) -> dict[str, GraphQLInputField]:
    """having's named form, ``{field: "paypal", gt: 100}``: it tests an output by alias (a
    conditional aggregate's); left out where the type has a field of one of its names."""
    fields = {
        "field": GraphQLInputField(
            GraphQLString, description="the output to test, by name or alias (with gt: …)"
        ),
        **{
            op: GraphQLInputField(
                GraphQLList(JSON) if op in ("in", "nin") else JSON,
                description=f"{op}, on the output named by field",
            )
            for op in NAMED_OPERATORS
        },
    }
    return fields if has_named_form(taken) else {}


def _described(fact: FactTable, name: str) -> str | None:
    if name == "count_distinct":
        return f"distinct values of {bare_distinct(fact)} (FraiseQL's count_distinct)"
    fn = next((f for f in AGGREGATES.values() if name.endswith(f"_{f.name}")), None)
    if fn is not None and fn.ordered:
        return f"every value ({fn.name}), in the order of the fact's id"
    return None


def _over_groups(
    key_enum: GraphQLEnumType | None, order: GraphQLInputObjectType
) -> dict[str, GraphQLField]:
    """What an aggregate selection computes from its grouped rows: ``calc``, the window
    functions over them and ``share``. ``field`` names another output (an alias, or an
    aggregate's or calc's name); ``partitionBy`` group keys."""
    over: dict[str, GraphQLArgument] = {
        "orderBy": GraphQLArgument(GraphQLList(GraphQLNonNull(order))),
    }
    if key_enum is not None:
        over["partitionBy"] = GraphQLArgument(GraphQLList(GraphQLNonNull(key_enum)))
    field = {"field": GraphQLArgument(GraphQLNonNull(OutputName))}
    frame = {"preceding": GraphQLArgument(GraphQLInt), "following": GraphQLArgument(GraphQLInt)}
    fields: dict[str, GraphQLField] = {
        "calc": GraphQLField(
            GraphQLFloat,
            {"expr": GraphQLArgument(GraphQLNonNull(GraphQLString))},
            description="arithmetic over the selection's other outputs: + - * /, abs, round,"
            " coalesce, nullif, least, greatest (x / 0 is null)",
        ),
        "share": GraphQLField(
            GraphQLFloat,
            {**field, **({"partitionBy": over["partitionBy"]} if "partitionBy" in over else {})},
            description="the value over its partition's total (null when the total is 0)",
        ),
    }
    for fn in RANKING_FUNCTIONS:
        args = dict(over)
        if fn == "ntile":
            args = {"buckets": GraphQLArgument(GraphQLNonNull(GraphQLInt)), **over}
        kind = GraphQLFloat if fn in ("percent_rank", "cume_dist") else GraphQLInt
        fields[fn] = GraphQLField(kind, args)
    for fn in ("lag", "lead"):
        fields[fn] = GraphQLField(
            JSON,
            {
                **field,
                "offset": GraphQLArgument(GraphQLInt, default_value=1),
                "default": GraphQLArgument(JSON),
                **over,
            },
        )
    for fn in ("first_value", "last_value"):
        fields[fn] = GraphQLField(JSON, {**field, **frame, **over})
    for fn in RUNNING_FUNCTIONS:
        arg = GraphQLArgument(OutputName) if fn == "running_count" else field["field"]
        kind = GraphQLInt if fn == "running_count" else GraphQLFloat
        fields[fn] = GraphQLField(kind, {"field": arg, **frame, **over})
    return fields


def fact_fields(inputs: Inputs, fact: FactTable, stem: str) -> dict[str, GraphQLField]:
    """The aggregate and window queries of ``fact``; their types are named ``stem…``."""
    column_scalars = where_names(fact)

    def and_or_not(
        name: str, fields: Callable[[], dict[str, GraphQLInputField]]
    ) -> GraphQLInputObjectType:
        holder: dict[str, GraphQLInputObjectType] = {}

        def thunk() -> dict[str, GraphQLInputField]:
            return {**fields(), **combinators(holder["type"])}

        holder["type"] = GraphQLInputObjectType(name, thunk)
        return holder["type"]

    where = and_or_not(
        f"{stem}WhereInput",
        lambda: {
            **{n: GraphQLInputField(inputs.scalar_filter(s)) for n, s in column_scalars.items()},
            **_flat_fields(inputs, column_scalars),
        },
    )

    # aggregate
    keys = key_names(fact)
    aggregates = aggregate_names(fact)
    times = {c.name for c in fact.time_columns}
    group_by = GraphQLInputObjectType(
        f"{stem}GroupByInput",
        {k: GraphQLInputField(TimeGroup if k in times else GraphQLBoolean) for k in keys},
        description="Group keys: dimension paths, filter columns and time buckets",
    )
    testable = having_names(fact)
    having = and_or_not(
        f"{stem}HavingInput",
        lambda: {
            **{n: GraphQLInputField(inputs.scalar_filter(s)) for n, s in testable.items()},
            **_flat_fields(inputs, testable),
            **_named_having(set(testable)),
        },
    )
    agg_order = GraphQLInputObjectType(
        f"{stem}AggregateOrderByInput",
        {
            **{n: GraphQLInputField(inputs.direction) for n in testable},
            **named_order(inputs.direction, set(testable)),
        },
        description="Sort by group keys and selected aggregates",
    )
    conditional = {
        "filter": GraphQLArgument(
            where, description="over the rows that pass this (SQL's FILTER (WHERE …))"
        )
    }
    key_enum = (
        GraphQLEnumType(f"{stem}GroupKey", {k: GraphQLEnumValue(k) for k in keys}) if keys else None
    )
    agg_fields: dict[str, GraphQLField] = {
        **{n: GraphQLField(SCALAR_TYPES[s]) for n, s in keys.items()},
        **{
            n: GraphQLField(SCALAR_TYPES[s], conditional, description=_described(fact, n))
            for n, s in aggregates.items()
        },
    }
    after = _over_groups(key_enum, agg_order)
    agg_fields.update({n: f for n, f in after.items() if n not in agg_fields})
    agg_row = GraphQLObjectType(f"{stem}Aggregate", agg_fields)
    per_group = (
        GraphQLInputObjectType(
            f"{stem}LimitPerGroupInput",
            {
                "partitionBy": GraphQLInputField(
                    GraphQLNonNull(GraphQLList(GraphQLNonNull(key_enum)))
                ),
                "orderBy": GraphQLInputField(
                    GraphQLNonNull(GraphQLList(GraphQLNonNull(agg_order)))
                ),
                "limit": GraphQLInputField(GraphQLNonNull(GraphQLInt)),
            },
            description="the first rows of each partition (top N per group)",
        )
        if key_enum is not None
        else None
    )

    # window
    row_columns = fact.row_columns
    column_enum = GraphQLEnumType(f"{stem}Column", {n: GraphQLEnumValue(n) for n in row_columns})
    measure_enum = GraphQLEnumType(
        f"{stem}Measure", {m.name: GraphQLEnumValue(m.name) for m in fact.measures}
    )
    win_order = GraphQLInputObjectType(
        f"{stem}WindowOrderByInput",
        {
            **{n: GraphQLInputField(inputs.direction) for n in row_columns},
            **named_order(inputs.direction, set(row_columns)),
        },
    )
    over = {
        "partitionBy": GraphQLArgument(
            GraphQLList(GraphQLNonNull(column_enum)),
            description="overrides the query's partitionBy",
        ),
        "orderBy": GraphQLArgument(
            GraphQLList(GraphQLNonNull(win_order)), description="overrides the query's orderBy"
        ),
    }
    frame = {
        "preceding": GraphQLArgument(
            GraphQLInt,
            description="frame starts this many rows before (default: partition start)",
        ),
        "following": GraphQLArgument(
            GraphQLInt, description="frame ends this many rows after (default: current row)"
        ),
    }
    win_fields: dict[str, GraphQLField] = {
        n: GraphQLField(SCALAR_TYPES[column_scalars.get(n, "BigInt")]) for n in row_columns
    }
    for fn in RANKING_FUNCTIONS:
        args = dict(over)
        if fn == "ntile":
            args = {"buckets": GraphQLArgument(GraphQLNonNull(GraphQLInt)), **over}
        kind = GraphQLFloat if fn in ("percent_rank", "cume_dist") else GraphQLInt
        win_fields[fn] = GraphQLField(kind, args)
    for fn in ("lag", "lead"):
        win_fields[fn] = GraphQLField(
            JSON,
            {
                "field": GraphQLArgument(GraphQLNonNull(column_enum)),
                "offset": GraphQLArgument(GraphQLInt, default_value=1),
                "default": GraphQLArgument(JSON),
                **over,
            },
        )
    for fn in ("first_value", "last_value"):
        win_fields[fn] = GraphQLField(
            JSON, {"field": GraphQLArgument(GraphQLNonNull(column_enum)), **frame, **over}
        )
    for fn in RUNNING_FUNCTIONS:
        field_arg = GraphQLArgument(
            measure_enum if fn == "running_count" else GraphQLNonNull(measure_enum)
        )
        kind = GraphQLInt if fn == "running_count" else GraphQLFloat
        win_fields[fn] = GraphQLField(kind, {"field": field_arg, **frame, **over})
    win_row = GraphQLObjectType(f"{stem}WindowRow", win_fields)

    paging = {
        "limit": GraphQLArgument(GraphQLInt),
        "offset": GraphQLArgument(GraphQLInt),
    }
    return {
        fact.aggregate_query: GraphQLField(
            GraphQLNonNull(GraphQLList(GraphQLNonNull(agg_row))),
            {
                "where": GraphQLArgument(where),
                # A table with nothing to group by has no groupBy (GraphQL input
                # objects need a field).
                **({"groupBy": GraphQLArgument(group_by)} if keys else {}),
                "having": GraphQLArgument(having),
                "orderBy": GraphQLArgument(GraphQLList(GraphQLNonNull(agg_order))),
                **paging,
                **({"limitPerGroup": GraphQLArgument(per_group)} if per_group else {}),
            },
            description=f"Aggregates of {fact.schema}.{fact.relation}",
        ),
        fact.window_query: GraphQLField(
            GraphQLNonNull(GraphQLList(GraphQLNonNull(win_row))),
            {
                "where": GraphQLArgument(where),
                "partitionBy": GraphQLArgument(GraphQLList(GraphQLNonNull(column_enum))),
                "orderBy": GraphQLArgument(GraphQLList(GraphQLNonNull(win_order))),
                **paging,
            },
            description=f"Rows of {fact.schema}.{fact.relation} with window functions",
        ),
    }
