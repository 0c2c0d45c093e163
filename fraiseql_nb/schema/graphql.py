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

from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLField,
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

from fraiseql_nb.language.operators import OPERATORS, list_operators, scalar_operators
from fraiseql_nb.schema.factquery import fact_fields
from fraiseql_nb.schema.inputs import DIRECTIONS, Inputs, combinators, named_order
from fraiseql_nb.schema.model import SCALARS, Entity, FieldType, Schema
from fraiseql_nb.schema.scalars import JSON, SCALAR_TYPES, VectorOrder

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


class _Builder(Inputs):
    """Builds each shared type once; one builder per Schema."""

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
                    for key, combined in combinators(wheres[name]).items():
                        out.setdefault(key, combined)
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

        def order_type(ftype: FieldType, *, root: bool = False) -> GraphQLInputObjectType:
            name = f"{ftype.type_name}OrderByInput"
            if name not in orders:
                taken = {f.name for f in ftype.fields}
                orders[name] = GraphQLInputObjectType(
                    name,
                    lambda: {
                        **{
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
                        **(named_order(self.direction, taken) if root else {}),
                    },
                    description=f"Sort keys of {ftype.type_name}, in the order written",
                )
            return orders[name]

        root = entity.type
        return object_type(root), where_type(root), order_type(root, root=True)


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
        query_fields.update(fact_fields(builder, fact, stem))
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
