"""The GraphQL input types every query shares: a scalar's and a list's filter (one field
per operator of the operator table), the sort direction, and the ``_and``/``_or``/``_not``
every where and having input combines its conditions with."""

from __future__ import annotations

from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLEnumValue,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
)

from fraiseql_nb.language.operators import OPERATORS, list_operators, scalar_operators
from fraiseql_nb.schema.model import FieldType
from fraiseql_nb.schema.scalars import SCALAR_TYPES, operand_type

__all__ = ["DIRECTIONS", "Inputs", "combinators"]

#: orderBy directions: (descending, nulls first). NULLs sort last unless asked.
DIRECTIONS: dict[str, tuple[bool, bool]] = {
    "ASC": (False, False),
    "DESC": (True, False),
    "ASC_NULLS_FIRST": (False, True),
    "ASC_NULLS_LAST": (False, False),
    "DESC_NULLS_FIRST": (True, True),
    "DESC_NULLS_LAST": (True, False),
}


def combinators(me: GraphQLInputObjectType) -> dict[str, GraphQLInputField]:
    """``_and``, ``_or`` and ``_not`` of an input type, over itself."""
    return {
        "_and": GraphQLInputField(GraphQLList(GraphQLNonNull(me)), description="all of these"),
        "_or": GraphQLInputField(
            GraphQLList(GraphQLNonNull(me)), description="at least one of these"
        ),
        "_not": GraphQLInputField(me, description="not this"),
    }


class Inputs:
    """Builds each shared input type once (one per Schema): scalar and list filters, the
    sort direction."""

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
