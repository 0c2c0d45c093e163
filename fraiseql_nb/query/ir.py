"""The query IR: what a validated GraphQL query asks for, as frozen data.

Built by :mod:`fraiseql_nb.query.parse`; compiled to SQL by
:mod:`fraiseql_nb.sql` or run by a data plane. It never writes SQL nor
touches a connection. Names in it come from the schema; values are the
user's, already coerced to Python types by graphql-core.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fraiseql_nb.language.vocabulary import SAME_UNIT_FUNCTIONS

__all__ = [
    "Aggregate",
    "AggregateQuery",
    "And",
    "AnyItem",
    "Binary",
    "Calc",
    "Call",
    "Compare",
    "Document",
    "Expr",
    "GroupKey",
    "GroupWindow",
    "IntrospectionQuery",
    "Not",
    "Num",
    "Or",
    "OrderItem",
    "PerGroup",
    "Post",
    "Query",
    "Ref",
    "RowQuery",
    "Selection",
    "Unary",
    "Where",
    "WindowColumn",
    "WindowFunction",
    "WindowQuery",
    "filtered_name",
    "post_name",
    "post_reads",
    "references",
]


# ------------------------------------------------------------------ where


@dataclass(frozen=True, kw_only=True)
class Compare:
    """One condition: ``field op value``.

    ``path`` is the JSON key path inside an entity document, or the single
    column / dimension / aggregate name of a fact-table query. ``scalar`` is
    the schema type that picks the SQL cast; ``is_list`` marks list fields.
    """

    path: tuple[str, ...]
    op: str
    value: Any
    scalar: str
    json: str | None = None
    is_list: bool = False
    column: str | None = None  # a column of the entity's relation, not a document path


@dataclass(frozen=True, kw_only=True)
class And:
    items: tuple[Where, ...]


@dataclass(frozen=True, kw_only=True)
class Or:
    items: tuple[Where, ...]


@dataclass(frozen=True, kw_only=True)
class Not:
    item: Where


@dataclass(frozen=True, kw_only=True)
class AnyItem:
    """A list of objects at ``path`` holds at least one element matching ``item``,
    whose paths are relative to the element."""

    path: tuple[str, ...]
    item: Where


Where = Compare | And | Or | Not | AnyItem


# ------------------------------------------------------------------ shared


@dataclass(frozen=True, kw_only=True)
class OrderItem:
    """A sort key: a JSON path (entities) or a column/output name (facts)."""

    path: tuple[str, ...]
    scalar: str
    json: str | None = None
    descending: bool = False
    nulls_first: bool = False
    column: str | None = None  # a column of the entity's relation, not a document path
    # Nearest first: the pgvector distance (l2_distance, cosine_distance, inner_product)
    # of a list of numbers from ``vector``.
    distance: str | None = None
    vector: tuple[float, ...] = ()


# -------------------------------------------------------------------- rows


@dataclass(frozen=True, kw_only=True)
class Selection:
    """A selected document field: output name (alias or field), JSON key, sub-selection."""

    name: str
    key: str
    kind: str  # "scalar" | "object" | "list" | "typename"
    scalar: str | None = None
    json: str | None = None
    children: tuple[Selection, ...] = ()
    column: str | None = None  # a column of the entity's relation, not a document key


@dataclass(frozen=True, kw_only=True)
class RowQuery:
    """Documents of an entity view: ``users(where, orderBy, limit, offset) { … }``."""

    key: str  # result key: alias or field name
    entity: str  # GraphQL type name of the entity
    selection: tuple[Selection, ...]
    where: Where | None = None
    order: tuple[OrderItem, ...] = ()
    limit: int | None = None
    offset: int | None = None
    collation: str | None = None
    after: Any = None  # keyset paging: rows after the row with this id
    by_id: Any = None  # set for the single query, ``user(id: …)``

    kind = "rows"


# --------------------------------------------------------------- aggregates


@dataclass(frozen=True, kw_only=True)
class GroupKey:
    """A group key: a filter column, a dimension, or a time bucket of a column."""

    name: str
    source: str  # "column" | "dimension" | "bucket"
    column: str | None = None  # the time column of a bucket
    unit: str | None = None  # day | week | month | quarter | year


@dataclass(frozen=True, kw_only=True)
class Aggregate:
    """``count``, ``<measure>_<fn>`` or ``<field>_count_distinct`` — over the rows that
    pass ``filter`` when it has one (SQL's ``FILTER (WHERE …)``)."""

    name: str  # the field name (revenue_sum); filtered: "<alias>:filtered" (see below)
    function: str  # count | sum | avg | … | median | p90 | count_distinct
    field: str | None = None
    percentile: float | None = None
    filter: Where | None = None
    order: str | None = None  # an ordered aggregate's: the column its values follow


@dataclass(frozen=True, kw_only=True)
class Num:
    """A number in a calc's expression."""

    value: int | float


@dataclass(frozen=True, kw_only=True)
class Ref:
    """A column of the grouped rows in a calc's expression (its internal name)."""

    name: str


@dataclass(frozen=True, kw_only=True)
class Unary:
    op: str  # "-" | "+"
    operand: Expr


@dataclass(frozen=True, kw_only=True)
class Binary:
    op: str  # + - * /  (a division by zero is NULL)
    left: Expr
    right: Expr


@dataclass(frozen=True, kw_only=True)
class Call:
    function: str  # abs round coalesce nullif least greatest
    args: tuple[Expr, ...]


Expr = Num | Ref | Unary | Binary | Call


@dataclass(frozen=True, kw_only=True)
class Calc:
    """``alias: calc(expr: "…")``: arithmetic over the grouped row's other columns."""

    name: str  # internal: see post_name
    expr: Expr


@dataclass(frozen=True, kw_only=True)
class PerGroup:
    """``limitPerGroup``: the first ``limit`` grouped rows of each partition, by
    ``order`` then the group keys."""

    partition_by: tuple[str, ...]
    order: tuple[OrderItem, ...]
    limit: int


def references(expr: Expr) -> set[str]:
    """The columns a calc's expression reads."""
    if isinstance(expr, Ref):
        return {expr.name}
    if isinstance(expr, Unary):
        return references(expr.operand)
    if isinstance(expr, Binary):
        return references(expr.left) | references(expr.right)
    if isinstance(expr, Call):
        return set().union(*(references(a) for a in expr.args))
    return set()


def post_reads(post: Post) -> set[str]:
    """The columns of the grouped rows a calc or window over them reads."""
    if isinstance(post, Calc):
        return references(post.expr)
    found = {*post.partition_by, *(o.path[0] for o in post.order)}
    return found | ({post.field} if post.field else set())


def post_name(alias: str) -> str:
    """The column of a calc or window over groups selected as ``alias`` (a ":" no GraphQL
    name holds: it names no other column)."""
    return f"{alias}:post"


def filtered_name(alias: str) -> str:
    """The column of a conditional aggregate selected as ``alias``: one query may hold
    ``revenue_sum`` and ``paypal: revenue_sum(filter: …)``, and no GraphQL name holds a
    ":", so this names no other column."""
    return f"{alias}:filtered"


@dataclass(frozen=True, kw_only=True)
class AggregateQuery:
    """``<fact>_aggregate``: group keys, aggregates, having, order, paging."""

    key: str
    fact: str
    columns: tuple[tuple[str, str], ...]  # (output name, key or aggregate name), selection order
    group_keys: tuple[GroupKey, ...]
    aggregates: tuple[Aggregate, ...]
    where: Where | None = None
    having: Where | None = None
    order: tuple[OrderItem, ...] = ()
    limit: int | None = None
    offset: int | None = None
    # ``__typename`` fields: (position among the outputs, output name, type name), added
    # as constant columns to what a plane answers.
    typenames: tuple[tuple[int, str, str], ...] = ()
    # After the groups: calcs and windows over them in dependency order (each level reads
    # only columns of earlier ones), the part of having that tests them (SQL's QUALIFY),
    # and limitPerGroup. ``having`` holds the part over groups only (SQL's HAVING).
    post: tuple[tuple[Post, ...], ...] = ()
    qualify: Where | None = None
    per_group: PerGroup | None = None

    kind = "aggregate"

    def conditions(self) -> tuple[Where, ...]:
        """Every condition the query reads rows with: its where, its aggregates' filters."""
        filters = tuple(a.filter for a in self.aggregates if a.filter is not None)
        return ((self.where,) if self.where is not None else ()) + filters


# ------------------------------------------------------------------ windows


@dataclass(frozen=True, kw_only=True)
class WindowColumn:
    """A plain column of a window query's rows."""

    name: str  # output name
    column: str


@dataclass(frozen=True, kw_only=True)
class WindowFunction:
    """A window function field: ``alias: fn(field, offset, …, partitionBy, orderBy)``."""

    name: str
    function: str
    field: str | None = None
    offset: int | None = None
    default: Any = None
    buckets: int | None = None
    partition_by: tuple[str, ...] = ()
    order: tuple[OrderItem, ...] = ()
    preceding: int | None = None
    following: int | None = None


@dataclass(frozen=True, kw_only=True)
class GroupWindow(WindowFunction):
    """A window function over the grouped rows (as SQL's window functions after GROUP
    BY), or ``share``: the value over its partition's total. ``field``, ``partition_by``
    and ``order`` name columns of the grouped rows (internal names: see post_name).
    The fields of a :class:`WindowFunction`, over other rows."""


Post = Calc | GroupWindow


@dataclass(frozen=True, kw_only=True)
class WindowQuery:
    """``<fact>_window``: rows with window functions over partitions."""

    key: str
    fact: str
    outputs: tuple[WindowColumn | WindowFunction, ...]  # selection order
    where: Where | None = None
    partition_by: tuple[str, ...] = ()
    order: tuple[OrderItem, ...] = ()
    limit: int | None = None
    offset: int | None = None
    typenames: tuple[tuple[int, str, str], ...] = ()  # as in AggregateQuery

    kind = "window"

    def units(self) -> dict[str, str]:
        """Outputs in the unit of another output (a lag or running sum of revenue is in
        revenue's), by name: shown with its decimals."""
        selected = {o.column: o.name for o in self.outputs if isinstance(o, WindowColumn)}
        return {
            o.name: selected[o.field]
            for o in self.outputs
            if isinstance(o, WindowFunction)
            and o.field in selected
            and o.function in SAME_UNIT_FUNCTIONS
        }


Query = RowQuery | AggregateQuery | WindowQuery


@dataclass(frozen=True, kw_only=True)
class IntrospectionQuery:
    """A root field about the schema itself (``__schema``, ``__type``, ``__typename``).

    graphql-core answers it from the generated GraphQL schema while parsing
    (pure: no plane, no SQL), so GraphiQL, Altair and code generators work.
    """

    key: str
    value: Any

    kind = "introspection"


@dataclass(frozen=True, kw_only=True)
class Document:
    """A parsed document: one query per root field, keyed by alias or name, in order."""

    queries: tuple[Query | IntrospectionQuery, ...]

    def __getitem__(self, key: str) -> Query | IntrospectionQuery:
        for q in self.queries:
            if q.key == key:
                return q
        raise KeyError(key)

    def keys(self) -> list[str]:
        return [q.key for q in self.queries]
