"""What a database offers to query: model, introspection, GraphQL schema."""

from fraiseql_nb.schema.graphql import graphql_schema, to_sdl
from fraiseql_nb.schema.introspect import DEFAULT_SAMPLE_SIZE, introspect
from fraiseql_nb.schema.model import (
    Calendar,
    Column,
    Dimension,
    Entity,
    FactTable,
    Field,
    FieldType,
    Problem,
    Schema,
)

__all__ = [
    "DEFAULT_SAMPLE_SIZE",
    "Calendar",
    "Column",
    "Dimension",
    "Entity",
    "FactTable",
    "Field",
    "FieldType",
    "Problem",
    "Schema",
    "graphql_schema",
    "introspect",
    "to_sdl",
]
