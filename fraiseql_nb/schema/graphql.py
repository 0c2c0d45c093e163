"""The graphql-core schema that every query is validated against.

It is generated from a :class:`~fraiseql_nb.schema.model.Schema` and only
describes the query language (nothing is ever resolved through graphql-core):
entity types with ``<Entity>WhereInput``/``<Entity>OrderByInput``, the list
and single queries, and for each fact table ``<name>_aggregate`` and
``<name>_window`` with their arguments and output fields. Validating against
it gives every query graphql-core's own error messages, with locations and
"did you mean" suggestions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLEnumValue,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLString,
    print_schema,
)

from fraiseql_nb.language.aggregates import AGGREGATES
from fraiseql_nb.language.operators import OPERATORS, list_operators, scalar_operators
from fraiseql_nb.language.vocabulary import RANKING_FUNCTIONS, RUNNING_FUNCTIONS
from fraiseql_nb.schema.model import SCALARS, Entity, FactTable, FieldType, Schema
from fraiseql_nb.schema.scalars import JSON, SCALAR_TYPES, VectorOrder, operand_type

__all__ = [
    "DIRECTIONS",
    "LIST_OPERATORS",
    "SCALAR_OPERATORS",
    "build_graphql_schema",
    "graphql_schema",
    "to_sdl",
]

# ----------------------------------------------------------------- language

#: Operators each scalar's filter accepts (from the operator table).
SCALAR_OPERATORS: dict[str, tuple[str, ...]] = {
    scalar: tuple(op.name for op in scalar_operators(scalar)) for scalar in SCALARS
}
#: Operators of a list field's filter.
LIST_OPERATORS = tuple(op.name for op in list_operators())
#: orderBy directions: (descending, nulls first). NULLs sort last unless asked.
DIRECTIONS: dict[str, tuple[bool, bool]] = {
    "ASC": (False, False),
    "DESC": (True, False),
    "ASC_NULLS_FIRST": (False, True),
    "ASC_NULLS_LAST": (False, False),
    "DESC_NULLS_FIRST": (True, True),
    "DESC_NULLS_LAST": (True, False),
}

_ANY_DOC = "at least one element matches these conditions"


def _numbers(ftype: FieldType) -> bool:
    """A list of numbers: a vector, which orderBy can sort by distance."""
    item = ftype.item
    return (
        ftype.kind == "list"
        and item is not None
        and item.kind == "scalar"
        and item.scalar in ("Int", "BigInt", "Float")
    )


# ------------------------------------------------------------------ builder


class _Builder:
    """Builds each shared type once; one builder per Schema."""

    def __init__(self) -> None:
        self.filters: dict[str, GraphQLInputObjectType] = {}
        self.direction = GraphQLEnumType(
            "OrderDirection",
            {name: GraphQLEnumValue(name) for name in DIRECTIONS},
            description="Sort direction; NULLs sort last unless a NULLS_FIRST direction says so",
        )

    def scalar_filter(self, scalar: str) -> GraphQLInputObjectType:
        name = f"{scalar}Filter"
        if name not in self.filters:
            gql = SCALAR_TYPES[scalar]

            def field_type(op: str) -> Any:
                return operand_type(OPERATORS[op].operand, gql)

            self.filters[name] = GraphQLInputObjectType(
                name,
                {
                    op: GraphQLInputField(field_type(op), description=OPERATORS[op].doc)
                    for op in (o.name for o in scalar_operators(scalar))
                },
                description=f"Conditions on a {scalar} field; all given must hold",
            )
        return self.filters[name]

    def list_filter(self, item: FieldType) -> GraphQLInputObjectType:
        scalar = item.scalar if item.kind == "scalar" and item.scalar else "JSON"
        name = f"{scalar}ListFilter"
        if name not in self.filters:
            gql = SCALAR_TYPES[scalar]
            self.filters[name] = GraphQLInputObjectType(
                name,
                {
                    op: GraphQLInputField(
                        operand_type(OPERATORS[op].operand, gql), description=OPERATORS[op].doc
                    )
                    for op in (o.name for o in list_operators(scalar))
                },
                description=f"Conditions on a list of {scalar}",
            )
        return self.filters[name]

    # ------------------------------------------------------------ entities

    def entity_types(self, entity: Entity) -> tuple[GraphQLObjectType, Any, Any]:
        objects: dict[str, GraphQLObjectType] = {}
        wheres: dict[str, GraphQLInputObjectType] = {}
        orders: dict[str, GraphQLInputObjectType] = {}

        def output(ftype: FieldType) -> Any:
            if ftype.kind == "object":
                return object_type(ftype)
            if ftype.kind == "list":
                return GraphQLList(output(ftype.item or FieldType(kind="scalar", scalar="JSON")))
            return SCALAR_TYPES[ftype.scalar or "JSON"]

        def object_type(ftype: FieldType) -> GraphQLObjectType:
            name = ftype.type_name or "Object"
            if name not in objects:
                objects[name] = GraphQLObjectType(
                    name,
                    lambda: {
                        f.name: GraphQLField(
                            output(f.type) if f.nullable else GraphQLNonNull(output(f.type))
                        )
                        for f in ftype.fields
                    },
                )
            return objects[name]

        def where_type(ftype: FieldType, *, nested: bool = False) -> GraphQLInputObjectType:
            name = f"{ftype.type_name}WhereInput"
            if name not in wheres:

                def thunk() -> dict[str, GraphQLInputField]:
                    out: dict[str, GraphQLInputField] = {}
                    for f in ftype.fields:
                        if f.type.kind == "object":
                            out[f.name] = GraphQLInputField(where_type(f.type, nested=True))
                        elif f.type.kind == "list":
                            item = f.type.item or FieldType(kind="scalar", scalar="JSON")
                            out[f.name] = GraphQLInputField(
                                objects_filter(item)
                                if item.kind == "object"
                                else self.list_filter(item)
                            )
                        else:
                            out[f.name] = GraphQLInputField(
                                self.scalar_filter(f.type.scalar or "JSON")
                            )
                    me = wheres[name]
                    out.setdefault(
                        "_and",
                        GraphQLInputField(
                            GraphQLList(GraphQLNonNull(me)), description="all of these"
                        ),
                    )
                    out.setdefault(
                        "_or",
                        GraphQLInputField(
                            GraphQLList(GraphQLNonNull(me)), description="at least one of these"
                        ),
                    )
                    out.setdefault("_not", GraphQLInputField(me, description="not this"))
                    out.setdefault(
                        "strictly_contains",
                        GraphQLInputField(JSON, description=OPERATORS["strictly_contains"].doc),
                    )
                    if nested:
                        out.setdefault(
                            "isnull",
                            GraphQLInputField(GraphQLBoolean, description=OPERATORS["isnull"].doc),
                        )
                    return out

                wheres[name] = GraphQLInputObjectType(
                    name, thunk, description=f"Conditions on {ftype.type_name}; all given must hold"
                )
            return wheres[name]

        def objects_filter(item: FieldType) -> GraphQLInputObjectType:
            """Conditions on a list of objects: ``any`` element matching, lengths, null."""
            name = f"{item.type_name}ListFilter"
            if name not in wheres:
                wheres[name] = GraphQLInputObjectType(
                    name,
                    lambda: {
                        "any": GraphQLInputField(where_type(item), description=_ANY_DOC),
                        **{
                            op: GraphQLInputField(
                                GraphQLInt if op.startswith("len_") else GraphQLBoolean,
                                description=OPERATORS[op].doc,
                            )
                            for op in ("len_eq", "len_gt", "len_lt", "isnull")
                        },
                        "strictly_contains": GraphQLInputField(
                            JSON, description=OPERATORS["strictly_contains"].doc
                        ),
                    },
                    description=f"Conditions on a list of {item.type_name}",
                )
            return wheres[name]

        def order_type(ftype: FieldType) -> GraphQLInputObjectType:
            name = f"{ftype.type_name}OrderByInput"
            if name not in orders:
                orders[name] = GraphQLInputObjectType(
                    name,
                    lambda: {
                        f.name: GraphQLInputField(
                            order_type(f.type)
                            if f.type.kind == "object"
                            else VectorOrder
                            if f.type.kind == "list"
                            else self.direction
                        )
                        for f in ftype.fields
                        if f.type.kind in ("object", "scalar") or _numbers(f.type)
                    },
                    description=f"Sort keys of {ftype.type_name}, in the order written",
                )
            return orders[name]

        root = entity.type
        return object_type(root), where_type(root), order_type(root)

    # -------------------------------------------------------------- facts

    def fact_fields(self, fact: FactTable, stem: str) -> dict[str, GraphQLField]:
        """The aggregate and window queries of ``fact``; their types are named ``stem…``."""
        column_scalars = {c.name: c.scalar for c in (*fact.filters, *fact.measures)}
        column_scalars.update({d.name: d.scalar for d in fact.dimensions})

        def and_or_not(
            name: str, fields: Callable[[], dict[str, GraphQLInputField]]
        ) -> GraphQLInputObjectType:
            holder: dict[str, GraphQLInputObjectType] = {}

            def thunk() -> dict[str, GraphQLInputField]:
                me = holder["type"]
                return {
                    **fields(),
                    "_and": GraphQLInputField(
                        GraphQLList(GraphQLNonNull(me)), description="all of these"
                    ),
                    "_or": GraphQLInputField(
                        GraphQLList(GraphQLNonNull(me)), description="at least one of these"
                    ),
                    "_not": GraphQLInputField(me, description="not this"),
                }

            holder["type"] = GraphQLInputObjectType(name, thunk)
            return holder["type"]

        where = and_or_not(
            f"{stem}WhereInput",
            lambda: {
                n: GraphQLInputField(self.scalar_filter(s)) for n, s in column_scalars.items()
            },
        )

        # aggregate
        keys = {c.name: c.scalar for c in fact.key_columns}
        keys.update({d.name: d.scalar for d in fact.dimensions})
        keys.update({b: "Date" for b in fact.buckets})
        aggregates: dict[str, str] = {}
        for fn in AGGREGATES.values():  # one row each: its output field(s), its type
            if fn.over == "rows":
                aggregates[fn.name] = fn.output
            elif fn.over == "measure":
                aggregates.update({f"{m.name}_{fn.name}": fn.output for m in fact.measures})
        for fn in AGGREGATES.values():
            if fn.over == "column":
                aggregates.update({f"{n}_{fn.name}": fn.output for n in column_scalars})
        group_by = GraphQLInputObjectType(
            f"{stem}GroupByInput",
            {k: GraphQLInputField(GraphQLBoolean) for k in keys},
            description="Group keys: dimension paths, filter columns and time buckets",
        )
        having = and_or_not(
            f"{stem}HavingInput",
            lambda: {
                n: GraphQLInputField(self.scalar_filter(s))
                for n, s in {**keys, **aggregates}.items()
            },
        )
        agg_order = GraphQLInputObjectType(
            f"{stem}AggregateOrderByInput",
            {n: GraphQLInputField(self.direction) for n in {**keys, **aggregates}},
            description="Sort by group keys and selected aggregates",
        )
        agg_row = GraphQLObjectType(
            f"{stem}Aggregate",
            {n: GraphQLField(SCALAR_TYPES[s]) for n, s in {**keys, **aggregates}.items()},
        )

        # window
        row_columns = fact.row_columns
        column_enum = GraphQLEnumType(
            f"{stem}Column", {n: GraphQLEnumValue(n) for n in row_columns}
        )
        measure_enum = GraphQLEnumType(
            f"{stem}Measure", {m.name: GraphQLEnumValue(m.name) for m in fact.measures}
        )
        win_order = GraphQLInputObjectType(
            f"{stem}WindowOrderByInput",
            {n: GraphQLInputField(self.direction) for n in row_columns},
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


def graphql_schema(schema: Schema) -> GraphQLSchema:
    """The graphql-core schema that validates every query against ``schema``, built once
    per Schema (kept with it, as ``functools.cached_property`` keeps a value: the Schema
    is immutable, and a changed one is a new object)."""
    built = schema.__dict__.get(_BUILT)
    if built is None:
        built = schema.__dict__[_BUILT] = build_graphql_schema(schema)
    return built


def to_sdl(schema: Schema) -> str:
    """The GraphQL schema in SDL, as a GraphQL server would publish it."""
    return print_schema(graphql_schema(schema))


_BUILT = "_graphql_schema"


def build_graphql_schema(schema: Schema) -> GraphQLSchema:
    """The graphql-core schema of everything ``schema`` offers."""
    builder = _Builder()
    query_fields: dict[str, GraphQLField] = {}
    for entity in schema.entities:
        obj, where, order = builder.entity_types(entity)
        query_fields[entity.list_query] = GraphQLField(
            GraphQLNonNull(GraphQLList(GraphQLNonNull(obj))),
            {
                "where": GraphQLArgument(where),
                "orderBy": GraphQLArgument(GraphQLList(GraphQLNonNull(order))),
                "limit": GraphQLArgument(GraphQLInt),
                "offset": GraphQLArgument(GraphQLInt),
                "collation": GraphQLArgument(
                    GraphQLString, description="collation for text sort keys"
                ),
                "after": GraphQLArgument(
                    GraphQLID,
                    description="keyset paging: the rows that follow the row with this id"
                    " in this ordering (pass the last id of the previous page)",
                ),
            },
            description=f"Documents of {entity.schema}.{entity.relation}",
        )
        query_fields[entity.single_query] = GraphQLField(
            obj,
            {"id": GraphQLArgument(GraphQLNonNull(GraphQLID))},
            description=f"One document of {entity.schema}.{entity.relation} by id",
        )
    taken = _object_type_names(schema)
    for fact in schema.facts:
        # v_slow and tf_slow would both name a SlowWhereInput: the fact's types yield.
        stem = fact.type_stem
        while stem in taken:
            stem += "Fact"
        taken.add(stem)
        query_fields.update(builder.fact_fields(fact, stem))
    if not query_fields:
        query_fields["_empty"] = GraphQLField(
            GraphQLBoolean, description="the database has no entity views or fact tables"
        )
    return GraphQLSchema(GraphQLObjectType("Query", query_fields))


def _object_type_names(schema: Schema) -> set[str]:
    """The GraphQL object type names of the entities and their nested objects."""
    names: set[str] = set()
    stack = [e.type for e in schema.entities]
    while stack:
        ftype = stack.pop()
        if ftype.kind == "object" and ftype.type_name:
            names.add(ftype.type_name)
            stack.extend(f.type for f in ftype.fields or ())
        elif ftype.kind == "list" and ftype.item is not None:
            stack.append(ftype.item)
    return names
