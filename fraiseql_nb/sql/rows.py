"""RowQuery -> one SELECT over an entity view. Pure.

The statement returns one column, ``data``: a JSON document with exactly the
selected fields under their output names (aliases included), in selection
order, built in SQL so that only what was asked for crosses the wire.
Ordering is on typed values, NULLs last unless asked otherwise. A query
that orders or pages ends its ORDER BY with the view's ``id``, so pages
never overlap; one that does neither has no ORDER BY at all, so its first
rows stream at once instead of after a sort of the whole view.

Keyset paging (``after: <id>``) continues after the row with that id in the
query's own ordering: a condition on the sort keys instead of an OFFSET, so
a deep page costs what the first one costs.

"That id" is the entity's identity (``Entity.identity``): the view's ``id``
column, or the documents' own ``id`` where it differs from the column. The
single query, ``after:``, the tie-break of every ordering and the page
cursor all read the same expression, so the id a result shows finds its row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from psycopg import sql

from fraiseql_nb.language.operators import distance_order
from fraiseql_nb.query.ir import Compare, OrderItem, RowQuery, Selection
from fraiseql_nb.schema.model import Entity, Field
from fraiseql_nb.sql.exprs import FieldSQL, column_field, document_field, fixed_width
from fraiseql_nb.sql.objects import build_object, kinds_check
from fraiseql_nb.sql.params import Params
from fraiseql_nb.sql.where import compile_where

__all__ = [
    "CURSOR_KEY",
    "DATA",
    "KINDS_KEY",
    "RowStatement",
    "compile_row_query",
    "compile_rows",
    "selects_whole_document",
]

# The view is read as "v". A view that builds its documents is read once per row
# as "d"."data": a lateral subquery that the planner cannot flatten. Referring to
# v.data directly would make PostgreSQL inline the view's document expression at
# every reference (a view building its JSON would build it once per selected
# field: 4x slower for five fields), while filters on v.id still reach the view's
# indexes. Stored documents (a tv_ table, a view passing a column through) are
# read as v.data: the expressions then are those of an expert's SQL, and an index
# on (data->>'field') or ((data->>'field')::numeric) serves them.
DATA = sql.Identifier("d", "data")
STORED = sql.Identifier("v", "data")
_ONCE = " AS v CROSS JOIN LATERAL (SELECT v.data OFFSET 0) AS d"
#: Hidden key carrying each row's id, for Result.next_page(). Hidden keys hold a ":",
#: which no GraphQL name (a field's or an alias, even one starting with "__") can.
CURSOR_KEY = "fq:id"
#: Hidden key of a statement reading integers as int8 (``fixed``): false on a returned
#: row where one of them is a JSON string, which int8 would have read as a number
#: where the checked form reads NULL. A filter or sort can only differ from the checked
#: form by returning such a row (a NULL never makes a condition true that a number
#: makes false; NULLs sort last), so a page without one is the checked form's answer.
KINDS_KEY = "fq:kinds"
_ANCHOR = sql.Identifier("anchor")


@dataclass(frozen=True)
class RowStatement:
    """A row query's statement, and whether its rows carry :data:`KINDS_KEY` (the check
    that no string holding a number was read as one): said by the compiler, never read
    back from the SQL text."""

    statement: sql.Composed
    kinds: bool


def compile_row_query(
    query: RowQuery,
    entity: Entity,
    params: Params,
    *,
    as_text: bool = False,
    with_cursor: bool = False,
    guard: bool = True,
    fixed: bool = False,
) -> sql.Composed:
    """The SELECT for ``query`` on ``entity``'s view; values go to ``params`` (see
    :func:`compile_rows`)."""
    return compile_rows(
        query, entity, params, as_text=as_text, with_cursor=with_cursor, guard=guard, fixed=fixed
    ).statement


def compile_rows(
    query: RowQuery,
    entity: Entity,
    params: Params,
    *,
    as_text: bool = False,
    with_cursor: bool = False,
    guard: bool = True,
    fixed: bool = False,
) -> RowStatement:
    """The SELECT for ``query`` on ``entity``'s view; values go to ``params``.

    A sorted query picks its rows first and builds the documents of those rows
    only (a subquery with the sort keys, re-sorted outside: a top-20 of 300K
    rows builds 20 documents, not every candidate).

    Args:
        as_text: return the document as ``text`` (for fast client-side parsing).
        with_cursor: add the row's id under :data:`CURSOR_KEY`.
        guard: read numbers and booleans through a type check (values of another
            JSON kind read as NULL); False casts them directly, which PostgreSQL
            refuses with an error should a document hold another kind (see
            :func:`fraiseql_nb.sql.exprs.document_field`).
        fixed: with ``guard=False``, read integer fields as int8 where a check of the
            returned rows can tell that no string holding a number was read as one
            (:data:`KINDS_KEY`); the statement then carries that check.
    """
    relation = sql.Identifier(entity.schema, entity.relation)
    ident = identity(entity, "v").value
    whole = selects_whole_document(query.selection, entity.fields)
    filtered = query.where is not None or bool(query.order) or query.after is not None
    data = document_of(entity)
    base = data if filtered or not whole else STORED
    deferred = bool(query.order) and not whole
    # Rows skipped (offset, keyset) or sorted first as NULL would escape the check.
    routed: list[tuple[str, ...]] | None = (
        []
        if fixed
        and not guard
        and not whole
        and query.after is None
        and not query.offset
        and not any(item.nulls_first for item in query.order)
        else None
    )
    source: sql.Composable = sql.Composed([relation, sql.SQL(_ONCE if base is DATA else " AS v")])
    where: list[sql.Composable] = []
    id_type = identity(entity, "v").pg_type
    if query.by_id is not None:
        where.append(sql.SQL("{} = {}").format(ident, params.add(query.by_id, id_type)))
    if query.where is not None:
        where.append(compile_where(query.where, _resolver(entity, guard, routed), params))
    if query.after is not None:
        anchor_id = params.add(query.after, id_type)
        if query.order:
            source, condition = _keyset(query, entity, source, relation, anchor_id, guard)
            where.append(condition)
        else:
            where.append(sql.SQL("{} > {}").format(ident, anchor_id))
    keys = _order_keys(query, entity, data, guard, routed)
    kinds = False
    if whole:
        # Every field, unrenamed: the stored document is the answer (its key order
        # aside), and sending it costs PostgreSQL nothing more.
        document: sql.Composable = base
    else:
        selection = query.selection
        if with_cursor:
            selection = (*selection, Selection(name=CURSOR_KEY, key="", kind="id"))
        outer = STORED if deferred else base
        kinds = bool(routed)
        extra = [(KINDS_KEY, kinds_check(outer, routed))] if routed else []
        document = build_object(selection, outer, ident, extra)
    if as_text:
        document = sql.SQL("({})::text").format(document)
    if deferred:
        # The rows first (id, document, sort keys), the documents built outside.
        passed = dict.fromkeys(
            sel.column for sel in query.selection if sel.column not in (None, "id")
        )  # columns a field is read from (a vector) go out with the row
        columns = (
            [sql.SQL("v.id, {} AS data").format(data)]
            + [
                sql.SQL("{} AS {}").format(sql.Identifier("v", c), sql.Identifier(c))
                for c in passed
            ]
            + [
                sql.SQL("{} AS {}").format(expr, sql.Identifier(f"k{i}"))
                for i, (expr, _, _) in enumerate(keys)
            ]
        )
        select = sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(columns), source)
    else:
        select = sql.SQL("SELECT {} AS data FROM {}").format(document, source)
    parts: list[sql.Composable] = [select]
    if where:
        parts.append(sql.SQL("WHERE {}").format(sql.SQL(" AND ").join(where)))
    paging = query.limit is not None or bool(query.offset) or query.after is not None
    if query.order or paging:
        parts.append(_order_clause(keys, ident, query.order))
    if query.limit is not None:
        parts.append(sql.SQL("LIMIT {}").format(params.add(query.limit, "bigint")))
    if query.offset:
        parts.append(sql.SQL("OFFSET {}").format(params.add(query.offset, "bigint")))
    inner = sql.SQL(" ").join(parts)
    if not deferred:
        return RowStatement(inner, kinds)
    outer_keys = [
        (_collate(sql.Identifier("v", f"k{i}"), field, query.collation), item, field)
        for i, (_, item, field) in enumerate(keys)
    ]
    statement = sql.SQL("SELECT {} AS data FROM ({}) AS v {}").format(
        document, inner, _order_clause(outer_keys, ident, query.order)
    )
    return RowStatement(statement, kinds)


def selects_whole_document(selection: tuple[Selection, ...], fields: tuple[Field, ...]) -> bool:
    """True when the selection is every field of the document, each once and unrenamed."""
    if len(selection) != len(fields):
        return False
    by_key = {f.key: f for f in fields}
    seen: set[str] = set()
    for sel in selection:
        f = by_key.get(sel.key)
        if f is None or sel.kind == "typename" or sel.name != f.key or sel.key in seen:
            return False
        if f.column is not None:
            return False  # read from a column: not in the stored document
        seen.add(sel.key)
        if sel.children:
            target = f.type.item if f.type.kind == "list" else f.type
            if target is None or not selects_whole_document(sel.children, target.fields):
                return False
    return True


def document_of(entity: Entity) -> sql.Identifier:
    """How the statement reads each row's document (see :data:`DATA`)."""
    return STORED if entity.stored else DATA


def column_type(entity: Entity, column: str) -> str:
    """The SQL type of a column a field is read from: the id's, or the field's own."""
    if column == "id":
        return entity.id_type
    return next((f.pg_type for f in entity.fields if f.column == column and f.pg_type), "text")


def identity(entity: Entity, table: str) -> FieldSQL:
    """The entity's id as the row aliased ``table`` holds it (see ``Entity.identity``)."""
    if entity.identity == "document":
        id_field = entity.field("id")
        json = id_field.type.json if id_field is not None else "string"
        return document_field(sql.Identifier(table, "data"), ("id",), "ID", json)
    return column_field("id", entity.id_type, table=table)


def _sort_key(
    item: OrderItem,
    base: sql.Composable,
    id_type: str,
    table: str = "v",
    *,
    guard: bool = True,
    fixed: bool = False,
) -> FieldSQL:
    if item.distance is not None:
        listed = (
            column_field(item.column, "vector", table=table)  # served by a pgvector index
            if item.column is not None
            else document_field(base, item.path, "JSON", None)
        )
        near = distance_order(listed, item.distance, item.vector)
        return FieldSQL(value=near, text=near, jsonb=near, pg_type="float8")
    if item.column is not None:
        # The id: a plain, indexable sort key.
        return column_field(item.column, id_type, table=table)
    return document_field(base, item.path, item.scalar, item.json, guard=guard, fixed=fixed)


def _collate(expr: sql.Composable, field: FieldSQL, collation: str | None) -> sql.Composable:
    if collation is not None and field.pg_type == "text":
        return sql.SQL("{} COLLATE {}").format(expr, sql.Identifier(collation))
    return expr


_Key = tuple[sql.Composable, OrderItem, FieldSQL]


def _order_keys(
    query: RowQuery,
    entity: Entity,
    data: sql.Composable,
    guard: bool,
    routed: list[tuple[str, ...]] | None = None,
) -> list[_Key]:
    """Each ``orderBy`` item's typed sort expression (collated), with the item and field."""
    keys = []
    for item in query.order:
        fixed = routed is not None and item.column is None and fixed_width(item.scalar, item.json)
        if fixed:
            assert routed is not None
            routed.append(item.path)
        field = _sort_key(item, data, entity.id_type, guard=guard, fixed=fixed)
        keys.append((_collate(field.value, field, query.collation), item, field))
    return keys


def _order_clause(
    keys: list[_Key],
    ident: sql.Composable,
    order: tuple[OrderItem, ...],
) -> sql.Composable:
    parts = [
        sql.SQL("{} {} NULLS {}").format(
            expr,
            sql.SQL("DESC" if item.descending else "ASC"),
            sql.SQL("FIRST" if item.nulls_first else "LAST"),
        )
        for expr, item, _ in keys
    ]
    if not any(item.column == "id" for item in order):
        parts.append(sql.SQL("{} ASC").format(ident))  # ties broken on the id, unique
    return sql.SQL("ORDER BY {}").format(sql.SQL(", ").join(parts))


def _keyset(
    query: RowQuery,
    entity: Entity,
    source: sql.Composable,
    relation: sql.Composable,
    anchor_id: sql.Composable,
    guard: bool,
) -> tuple[sql.Composable, sql.Composable]:
    """FROM clause joining the anchor row's sort keys, and "comes after the anchor"."""
    anchor_data = sql.Identifier("anchor", "data")
    values = [
        sql.SQL("{} AS {}").format(
            _sort_key(item, anchor_data, entity.id_type, "anchor", guard=guard).value,
            sql.Identifier(f"k{i}"),
        )
        for i, item in enumerate(query.order)
    ]
    anchor_ident = identity(entity, "anchor").value
    joined = sql.SQL(
        "{src} CROSS JOIN LATERAL (SELECT {values}, {aid} AS k_id FROM {rel} AS anchor"
        " WHERE {aid} = {id}) AS {a}"
    ).format(
        src=source,
        rel=relation,
        values=sql.SQL(", ").join(values),
        aid=anchor_ident,
        id=anchor_id,
        a=_ANCHOR,
    )

    ident = identity(entity, "v").value
    condition: sql.Composable = sql.SQL("{} > {}").format(ident, sql.Identifier("anchor", "k_id"))
    for i in reversed(range(len(query.order))):
        item = query.order[i]
        field = _sort_key(item, document_of(entity), entity.id_type, guard=guard)
        key = _collate(field.value, field, query.collation)
        anchor = sql.Identifier("anchor", f"k{i}")
        beyond = sql.SQL("<" if item.descending else ">")
        if item.nulls_first:
            after = sql.SQL("(({a} IS NULL AND {k} IS NOT NULL) OR {k} {op} {a})")
        else:
            after = sql.SQL("({a} IS NOT NULL AND ({k} {op} {a} OR {k} IS NULL))")
        condition = sql.SQL("({after} OR ({k} IS NOT DISTINCT FROM {a} AND {rest}))").format(
            after=after.format(a=anchor, k=key, op=beyond), k=key, a=anchor, rest=condition
        )
    return joined, condition


def _resolver(
    entity: Entity, guard: bool = True, routed: list[tuple[str, ...]] | None = None
) -> Callable[[Compare], FieldSQL]:
    def resolve(compare: Compare) -> FieldSQL:
        if compare.column is not None:
            # The id (values were checked against its type), or a vector column.
            return column_field(compare.column, column_type(entity, compare.column), table="v")
        fixed = (
            routed is not None
            and fixed_width(compare.scalar, compare.json)
            and (compare.op == "isnull" or _fits_int8(compare.value))
        )
        if fixed:
            assert routed is not None
            routed.append(compare.path)
        return document_field(
            data, compare.path, compare.scalar, compare.json, guard=guard, fixed=fixed
        )

    data = document_of(entity)
    return resolve


_INT8 = range(-(2**63), 2**63)


def _fits_int8(value: object) -> bool:
    """A compared value int8 holds exactly (a list: each of its values)."""
    values = value if isinstance(value, (list, tuple)) else [value]
    return all(isinstance(v, int) and not isinstance(v, bool) and v in _INT8 for v in values)
