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
    GraphQLString,
)

from fraiseql_nb.language.operators import (
    SPELLINGS,
    Operator,
    list_operators,
    scalar_operators,
)
from fraiseql_nb.schema.model import FieldType
from fraiseql_nb.schema.scalars import SCALAR_TYPES, operand_type

__all__ = ["DIRECTIONS", "Inputs", "combinators", "named_order", "operator_fields"]

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
        ops = scalar_operators(scalar)
        return self._filter(
            f"{scalar}Filter", scalar, ops, f"a {scalar} field; all given must hold"
        )

    def list_filter(self, item: FieldType) -> GraphQLInputObjectType:
        scalar = item.scalar if item.kind == "scalar" and item.scalar else "JSON"
        ops = list_operators(scalar)
        return self._filter(f"{scalar}ListFilter", scalar, ops, f"a list of {scalar}")

    def _filter(
        self, name: str, scalar: str, ops: tuple[Operator, ...], on: str
    ) -> GraphQLInputObjectType:
        """The filter input ``name`` over ``ops``, built once per schema."""
        if name not in self.filters:
            fields = operator_fields(ops, SCALAR_TYPES[scalar])
            self.filters[name] = GraphQLInputObjectType(
                name, fields, description=f"Conditions on {on}"
            )
        return self.filters[name]


def named_order(direction: GraphQLEnumType, taken: set[str]) -> dict[str, GraphQLInputField]:
    """FraiseQL's ``{field: "x", direction: DESC}`` as an orderBy item's two fields (each
    left out where the type has a field of that name)."""
    fields = {
        "field": GraphQLInputField(
            GraphQLString, description="the field to sort by (with direction; FraiseQL's form)"
        ),
        "direction": GraphQLInputField(direction, description="ASC when left out"),
    }
    return {name: f for name, f in fields.items() if name not in taken}


def operator_fields(operators: tuple[Operator, ...], gql: Any) -> dict[str, GraphQLInputField]:
    """One field per operator and per negation it has (``nlike``), then every other
    spelling of them (``ne``, ``_eq``, ``isNull``…) marked deprecated: they validate, and
    GraphiQL and completion show one name per meaning."""
    fields: dict[str, GraphQLInputField] = {}
    offered = {op.name: op for op in operators}
    for op in operators:
        kind = operand_type(op.operand, gql)
        fields[op.name] = GraphQLInputField(kind, description=op.doc)
        for negation in op.negations[:1]:
            fields[negation] = GraphQLInputField(kind, description=f"not {op.name}: {op.doc}")
    for spelling, (name, negated) in SPELLINGS.items():
        op = offered.get(name)
        if op is None or spelling in fields:
            continue
        shown = op.negations[0] if negated else op.name
        fields[spelling] = GraphQLInputField(
            operand_type(op.operand, gql),
            description=f"{shown}, as FraiseQL (or Hasura) spells it",
            deprecation_reason=f"another spelling of {shown}",
        )
    return fields
