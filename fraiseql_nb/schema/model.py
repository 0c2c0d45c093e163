"""What a database offers to query: entities and fact tables, as plain frozen data.

A :class:`Schema` is built by introspection (:mod:`.introspect`) or read
from a JSON file, which a person may edit (a field's type, a query's
name): :meth:`Schema.save` and :meth:`Schema.load` round-trip it exactly.
The GraphQL schema that validates queries is derived from it (:mod:`.graphql`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from fraiseql_nb.errors import SchemaError
from fraiseql_nb.language.vocabulary import BUCKETS, CLOCK_BUCKETS

__all__ = [
    "BUCKETS",
    "SCALARS",
    "Calendar",
    "Column",
    "Dimension",
    "Entity",
    "FactTable",
    "Field",
    "FieldType",
    "Problem",
    "Schema",
]

FORMAT_VERSION = 1
# Scalars a field or column can have; BigInt holds 64-bit integers (GraphQL Int is 32-bit).
SCALARS = ("Int", "BigInt", "Float", "String", "Boolean", "DateTime", "Date", "ID", "JSON")


@dataclass(frozen=True, kw_only=True)
class FieldType:
    """A document field's type: a scalar, an object with fields, or a list of a type.

    ``json`` is the JSON kind of the stored values ("number", "string",
    "boolean"); it picks the SQL cast where the scalar alone does not (ID, JSON).
    """

    kind: str  # "scalar" | "object" | "list"
    scalar: str | None = None
    json: str | None = None
    type_name: str | None = None  # GraphQL type name of an object
    fields: tuple[Field, ...] = ()
    item: FieldType | None = None

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)


@dataclass(frozen=True, kw_only=True)
class Field:
    """One field of an entity document: its GraphQL name, its JSON key and its type."""

    name: str
    key: str
    type: FieldType
    nullable: bool = True
    # Set when the value is read from this column of the relation instead of the
    # document: the ``id`` field of a view whose documents carry no ``id`` key, or a
    # pgvector column the view has beside its documents (an index can serve it).
    column: str | None = None
    pg_type: str | None = None  # the column's type, as format_type() prints it


@dataclass(frozen=True, kw_only=True)
class Entity:
    """An entity view (``v_*``/``tv_*``) exposing ``id`` and ``data jsonb``.

    ``identity`` says what the ``id`` a result shows is, and so what
    ``<single>(id:)``, ``where: {id: …}`` and ``after:`` compare: ``"column"``
    (the view's ``id`` column; the documents carry the same id, or none) or
    ``"document"`` (the documents' own ``id`` key, which differs from the
    column, e.g. a slug over a uuid key).
    """

    name: str  # GraphQL type name, e.g. "User"
    schema: str  # PostgreSQL schema of the relation
    relation: str  # e.g. "v_user"
    list_query: str  # e.g. "users"
    single_query: str  # e.g. "user"
    id_type: str  # PostgreSQL type of the id column, e.g. "bigint"
    fields: tuple[Field, ...]
    sampled: int = 0  # documents the field types were inferred from
    identity: str = "column"  # "column" | "document"
    # The documents are stored (a table's column, or a view passing one through), not
    # built per row: SQL may read ``data`` as often as it likes, and indexes on
    # expressions of it apply.
    stored: bool = False

    @property
    def type(self) -> FieldType:
        return FieldType(kind="object", type_name=self.name, fields=self.fields)

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)


@dataclass(frozen=True, kw_only=True)
class Column:
    """A plain column of a fact table (a measure or a filter column)."""

    name: str
    pg_type: str  # as format_type() prints it
    scalar: str


@dataclass(frozen=True, kw_only=True)
class Dimension:
    """A dimension path inside the fact table's JSONB dimension column."""

    name: str  # flattened: product.brand -> product_brand
    column: str  # e.g. "dimensions"
    path: tuple[str, ...]
    scalar: str


@dataclass(frozen=True, kw_only=True)
class Calendar:
    """A JSONB calendar column (``*_info``) holding the bucket dates of a time column."""

    column: str  # e.g. "date_info"
    keys: tuple[str, ...]  # which of date/week/month/quarter/year it holds
    serves: str | None  # the time filter column it describes


@dataclass(frozen=True, kw_only=True)
class FactTable:
    """A ``tf_*`` fact table: measures, filter columns, dimensions, calendars."""

    name: str  # e.g. "sales" (queries: sales_aggregate, sales_window)
    schema: str
    relation: str  # e.g. "tf_sales"
    id_column: str | None
    measures: tuple[Column, ...]
    filters: tuple[Column, ...]
    dimensions: tuple[Dimension, ...]
    calendars: tuple[Calendar, ...] = ()

    @property
    def aggregate_query(self) -> str:
        return f"{self.name}_aggregate"

    @property
    def window_query(self) -> str:
        return f"{self.name}_window"

    @property
    def type_stem(self) -> str:
        from fraiseql_nb.schema.naming import pascal

        return pascal(self.name)

    def column(self, name: str) -> Column | None:
        """The measure or filter column called ``name`` (``id`` counts as a filter)."""
        return next((c for c in (*self.measures, *self.filters) if c.name == name), None)

    def dimension(self, name: str) -> Dimension | None:
        return next((d for d in self.dimensions if d.name == name), None)

    @property
    def key_columns(self) -> tuple[Column, ...]:
        """Plain columns that can be group keys: filter columns but the id, and
        integer measures (integer-coded categories such as ``status_code``)."""
        return (
            *(c for c in self.filters if c.name != self.id_column),
            *(m for m in self.measures if m.scalar in ("Int", "BigInt")),
        )

    @property
    def time_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.filters if c.scalar in ("DateTime", "Date"))

    @property
    def buckets(self) -> dict[str, tuple[str, str]]:
        """Group keys that bucket time: ``occurred_at_month`` -> ("occurred_at", "month");
        a column with a time of day has hours, minutes and seconds too."""
        out = {}
        for c in self.time_columns:
            units = (*CLOCK_BUCKETS, *BUCKETS) if c.scalar == "DateTime" else tuple(BUCKETS)
            out.update({f"{c.name}_{unit}": (c.name, unit) for unit in units})
        return out

    def calendar_for(self, column: str, unit: str) -> Calendar | None:
        """The calendar column that holds ``unit`` buckets of ``column``, if any."""
        key = BUCKETS[unit]
        return next(
            (cal for cal in self.calendars if cal.serves == column and key in cal.keys), None
        )

    @property
    def row_columns(self) -> tuple[str, ...]:
        """Every column a window query can select, partition or order by."""
        ids = (self.id_column,) if self.id_column else ()
        return (
            *ids,
            *(c.name for c in self.filters if c.name != self.id_column),
            *(d.name for d in self.dimensions),
            *(m.name for m in self.measures),
        )

    def scalar_of(self, name: str) -> str | None:
        """The scalar of a column, dimension or bucket called ``name``."""
        col = self.column(name)
        if col is not None:
            return col.scalar
        dim = self.dimension(name)
        if dim is not None:
            return dim.scalar
        bucket = self.buckets.get(name)
        if bucket is None:
            return None
        return "DateTime" if bucket[1] in CLOCK_BUCKETS else "Date"


@dataclass(frozen=True, kw_only=True)
class Problem:
    """A relation that looks like an entity or fact table but cannot be one."""

    relation: str
    queries: tuple[str, ...]  # root fields it would have provided
    message: str


@dataclass(frozen=True, kw_only=True, repr=False)
class Schema:
    """Everything a database offers to query. Immutable; build new ones with ``replace``.

    A data model only: its GraphQL schema is :func:`fraiseql_nb.schema.graphql.graphql_schema`,
    its SDL :func:`fraiseql_nb.to_sdl`, and IPython and Jupyter show it as a readable
    summary (:mod:`fraiseql_nb.schema.summary`): every query, type, field, fact table
    and problem.
    """

    entities: tuple[Entity, ...] = ()
    facts: tuple[FactTable, ...] = ()
    collations: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = field(default=())

    # ----------------------------------------------------------- lookups

    def entity(self, name: str) -> Entity | None:
        """The entity whose GraphQL type, list query, single query or relation is ``name``."""
        return next(
            (
                e
                for e in self.entities
                if name in (e.name, e.list_query, e.single_query, e.relation)
            ),
            None,
        )

    def fact(self, name: str) -> FactTable | None:
        """The fact table called ``name`` (or whose query or relation is ``name``)."""
        return next(
            (
                f
                for f in self.facts
                if name in (f.name, f.relation, f.aggregate_query, f.window_query)
            ),
            None,
        )

    def root_fields(self) -> list[str]:
        """Every root query field, entities first."""
        out: list[str] = []
        for e in self.entities:
            out += [e.list_query, e.single_query]
        for f in self.facts:
            out += [f.aggregate_query, f.window_query]
        return out

    def problem_for(self, root_field: str) -> Problem | None:
        return next((p for p in self.problems if root_field in p.queries), None)

    # ------------------------------------------------------------ display

    def __repr__(self) -> str:
        # Short: the full summary (schema/summary.py) is what IPython and Jupyter show,
        # through the formatters the notebook layer registers (notebook/display.py).
        counts = [
            (len(self.entities), "entity", "entities"),
            (len(self.facts), "fact table", "fact tables"),
            (len(self.problems), "problem", "problems"),
        ]
        return (
            "<Schema: "
            + ", ".join(f"{n} {one if n == 1 else many}" for n, one, many in counts)
            + ">"
        )

    # ---------------------------------------------------------- file form

    def to_dict(self) -> dict[str, Any]:
        return {"version": FORMAT_VERSION, **_encode(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "schema") -> Schema:
        if not isinstance(data, dict):
            raise SchemaError(f"{source}: expected a JSON object")
        version = data.get("version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise SchemaError(f"{source}: schema format version {version!r} is not supported")
        try:
            return _decode(cls, {k: v for k, v in data.items() if k != "version"})
        except (KeyError, TypeError, ValueError) as exc:
            raise SchemaError(f"{source}: not a valid schema file ({exc})") from None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the schema as JSON, ready to be edited and :meth:`load`-ed."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Schema:
        """Read a schema written by :meth:`save` (and perhaps edited by hand)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise SchemaError(f"cannot read schema file {path}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise SchemaError(f"{path}: not valid JSON: {exc}") from None
        schema = cls.from_dict(data, source=str(path))
        return schema

    def with_query_names(self, renames: dict[str, str]) -> Schema:
        """Rename root query fields, e.g. ``{"users": "people"}``."""
        entities = tuple(
            replace(
                e,
                list_query=renames.get(e.list_query, e.list_query),
                single_query=renames.get(e.single_query, e.single_query),
            )
            for e in self.entities
        )
        facts = tuple(replace(f, name=renames.get(f.name, f.name)) for f in self.facts)
        return replace(self, entities=entities, facts=facts)


# ---------------------------------------------------------------- codec

_TYPES: dict[str, type] = {
    "entities": Entity,
    "facts": FactTable,
    "problems": Problem,
    "fields": Field,
    "measures": Column,
    "filters": Column,
    "dimensions": Dimension,
    "calendars": Calendar,
}


def _encode(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        out = {}
        for f in fields(obj):
            value = getattr(obj, f.name)
            if f.name in ("fields", "item") and isinstance(obj, FieldType) and not value:
                continue  # keep scalar types short in the file
            if value is None and isinstance(obj, (FieldType, Field)):
                continue
            out[f.name] = _encode(value)
        return out
    if isinstance(obj, tuple):
        return [_encode(v) for v in obj]
    return obj


def _decode(cls: type, data: dict[str, Any]) -> Any:
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name == "type" and cls is Field:
            kwargs[f.name] = _decode_type(value)
        elif f.name in _TYPES and isinstance(value, list):
            kwargs[f.name] = tuple(_decode(_TYPES[f.name], v) for v in value)
        elif isinstance(value, list):
            kwargs[f.name] = tuple(value)
        else:
            kwargs[f.name] = value
    unknown = set(data) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown key(s) {sorted(unknown)} in {cls.__name__}")
    return cls(**kwargs)


def _decode_type(data: dict[str, Any]) -> FieldType:
    kind = data["kind"]
    if kind not in ("scalar", "object", "list"):
        raise ValueError(f"unknown field kind {kind!r}")
    scalar = data.get("scalar")
    if kind == "scalar" and scalar not in SCALARS:
        raise ValueError(f"unknown scalar {scalar!r} (one of {', '.join(SCALARS)})")
    return FieldType(
        kind=kind,
        scalar=scalar,
        json=data.get("json"),
        type_name=data.get("type_name"),
        fields=tuple(_decode(Field, f) for f in data.get("fields", ())),
        item=_decode_type(data["item"]) if data.get("item") else None,
    )
