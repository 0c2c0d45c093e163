"""Build a :class:`Schema` by reading a database's catalogue and sampling its documents.

Zero configuration: entity views are the relations named ``v_*``/``tv_*``
with ``id`` and ``data jsonb``; fact tables are the relations named
``tf_*``. Field types come from the first ``sample_size`` documents of each
view (``LIMIT``, so the cost is that of reading those rows, not the view).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql

from fraiseql_nb.pg.documents import loads
from fraiseql_nb.schema.facts import read_fact
from fraiseql_nb.schema.infer import infer_fields
from fraiseql_nb.schema.model import (
    Entity,
    FactTable,
    Field,
    FieldType,
    Problem,
    Schema,
)
from fraiseql_nb.schema.naming import entity_names, graphql_name, pascal
from fraiseql_nb.schema.sampling import current_user, within_timeout

__all__ = ["DEFAULT_SAMPLE_SIZE", "introspect"]

DEFAULT_SAMPLE_SIZE = 1000
# A plan output that is a column reference: [table.]column, either part quoted or not.
_NAME = r'(?:\w+|"(?:[^"]|"")+")'
_PLAIN_COLUMN = re.compile(rf"(?:{_NAME}\.)?{_NAME}")

# Privileges are read from the catalogue, not found by a refused sample: a least-privilege
# role sees what it may read, and every relation it may not is reported, not fatal.
_RELATIONS = """
SELECT c.oid, n.nspname, c.relname, has_any_column_privilege(c.oid, 'SELECT')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
  AND (c.relname LIKE 'v\\_%%' OR c.relname LIKE 'tv\\_%%' OR c.relname LIKE 'tf\\_%%')
ORDER BY array_position(%(schemas)s, n.nspname::text), c.relname
"""
_COLUMNS = """
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), t.typname, t.typcategory,
       has_column_privilege(a.attrelid, a.attnum, 'SELECT')
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""
_COLLATIONS = """
SELECT collname FROM pg_collation
WHERE collencoding IN (-1, (SELECT encoding FROM pg_database WHERE datname = current_database()))
ORDER BY collname
"""


def introspect(
    conn: psycopg.Connection[Any],
    *,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    schemas: Iterable[str] | None = None,
) -> Schema:
    """Read the entity views and fact tables of the database behind ``conn``.

    Args:
        conn: an open connection; only read.
        sample_size: documents (and dimension values) sampled per relation.
        schemas: PostgreSQL schemas to look in; default: the search path.
    """
    if schemas is None:
        row = conn.execute("SELECT current_schemas(false)").fetchone()
        schema_list = list(row[0]) if row else ["public"]
    else:
        schema_list = list(schemas)
    relations = conn.execute(_RELATIONS, {"schemas": schema_list}).fetchall()
    columns: dict[int, list[tuple[str, str, str, str]]] = {}
    hidden: dict[int, list[str]] = {}
    for oid, name, pretty, typname, category, readable in conn.execute(
        _COLUMNS, ([r[0] for r in relations],)
    ):
        if readable:
            columns.setdefault(oid, []).append((name, pretty, typname, category))
        else:
            hidden.setdefault(oid, []).append(name)

    entities: list[Entity] = []
    facts: list[FactTable] = []
    problems: list[Problem] = []
    taken_types: set[str] = set()
    taken_queries: set[str] = set()
    twins: dict[str, list[tuple[str, str, list[tuple[str, str, str, str]]]]] = {}
    role = current_user(conn)
    for oid, nsp, rel, readable in relations:
        cols = columns.get(oid, [])
        if not readable:
            problems.append(_unreadable(role, nsp, rel))
            continue
        if oid in hidden:
            problems.append(_hidden_columns(role, nsp, rel, hidden[oid]))
            if problems[-1].queries:
                continue
        if rel.startswith("tf_"):
            fact = read_fact(conn, nsp, rel, cols, sample_size, problems, taken_queries)
            if fact is not None:
                facts.append(fact)
        else:
            # v_user, v_users and tv_user are one entity: group them by the singular.
            base = rel.split("_", 1)[1]
            twins.setdefault(entity_names(base)[0], []).append((nsp, rel, cols))
    for stem in sorted(twins):
        # A tv_ projection table serves reads better than its v_ view: look at it first.
        candidates = sorted(twins[stem], key=lambda c: not c[1].startswith("tv_"))
        base = candidates[0][1].split("_", 1)[1]
        entity = _entity(conn, base, candidates, sample_size, problems, taken_types, taken_queries)
        if entity is not None:
            entities.append(entity)
    collations = tuple(r[0] for r in conn.execute(_COLLATIONS))
    return Schema(
        entities=tuple(sorted(entities, key=lambda e: e.list_query)),
        facts=tuple(facts),
        collations=collations,
        problems=tuple(problems),
    )


def _queries_of(rel: str) -> tuple[str, ...]:
    """The root fields ``rel`` would provide, so that asking for them says why they are not."""
    base = rel.split("_", 1)[1]
    if rel.startswith("tf_"):
        return (f"{base}_aggregate", f"{base}_window")
    if graphql_name(base) != base:
        return ()
    return entity_names(base)[1:]


def _unreadable(role: str, nsp: str, rel: str) -> Problem:
    return Problem(
        relation=f"{nsp}.{rel}",
        queries=_queries_of(rel),
        message=f"no SELECT privilege for {role} on {nsp}.{rel}: it is left out; ask for"
        f" GRANT SELECT ON {nsp}.{rel}, then reconnect",
    )


def _hidden_columns(role: str, nsp: str, rel: str, names: list[str]) -> Problem:
    """Columns a role may not read (column privileges) are left out, said once per relation.
    An entity without ``id`` or ``data`` cannot be one: then its queries say so."""
    where = f"{nsp}.{rel}"
    essential = not rel.startswith("tf_") and bool({"id", "data"} & set(names))
    plural = "s" if len(names) > 1 else ""
    return Problem(
        relation=where,
        queries=_queries_of(rel) if essential else (),
        message=f"{role} may not read column{plural} {', '.join(names)} of {where}: "
        + ("it cannot be an entity view" if essential else "they are left out"),
    )


def _entity(
    conn: psycopg.Connection[Any],
    base: str,
    candidates: list[tuple[str, str, list[tuple[str, str, str, str]]]],
    sample_size: int,
    problems: list[Problem],
    taken_types: set[str],
    taken_queries: set[str],
) -> Entity | None:
    """The entity named ``base``, served by the first of its relations (``tv_`` before
    ``v_``) that has documents; every relation left aside is reported, with why."""
    if graphql_name(base) != base or not graphql_name(pascal(base)):
        for nsp, rel, _ in candidates:
            problems.append(
                Problem(
                    relation=f"{nsp}.{rel}",
                    queries=(),
                    message=f"{nsp}.{rel} is skipped: {base!r} cannot be a GraphQL name"
                    " (letters, digits and _, not starting with a digit); rename the view",
                )
            )
        return None
    type_name, list_query, single_query = entity_names(base)
    queries = (list_query, single_query)
    usable: list[tuple[str, str, list[tuple[str, str, str, str]]]] = []
    for nsp, rel, cols in candidates:
        kinds = {c[0]: c[2] for c in cols}
        if "id" not in kinds or kinds.get("data") != "jsonb":
            have = ", ".join(f"{c[0]} {c[1]}" for c in cols) or "no columns"
            problems.append(
                Problem(
                    relation=f"{nsp}.{rel}",
                    queries=queries,
                    message=f"{nsp}.{rel} is not an entity view: it needs columns id and data"
                    f" jsonb (it has {have})",
                )
            )
        else:
            usable.append((nsp, rel, cols))
    if not usable:
        return None
    if set(queries) & taken_queries:
        for nsp, rel, _ in usable:
            problems.append(
                Problem(
                    relation=f"{nsp}.{rel}",
                    queries=(),
                    message=f"{nsp}.{rel} is skipped: its queries {', '.join(queries)} are taken"
                    " by another relation",
                )
            )
        return None
    samples = []
    too_slow: set[str] = set()
    for nsp, rel, cols in usable:
        got = _sample_documents(conn, nsp, rel, sample_size)
        if got is None:
            too_slow.add(f"{nsp}.{rel}")
        samples.append((nsp, rel, cols, got or []))
        if samples[-1][3]:
            break  # the first relation with documents serves
    served = next((s for s in samples if s[3]), samples[0])
    nsp, rel, cols, rows = served
    where = f"{nsp}.{rel}"
    for other_nsp, other_rel, _ in usable:
        other = f"{other_nsp}.{other_rel}"
        if other == where:
            continue
        if rows and any(s[1] == other_rel and s[0] == other_nsp for s in samples):
            message = (
                f"{other} has no documents yet, so {' and '.join(queries)} read {where}"
                f" instead; reconnect once {other} is filled to read it"
            )
        else:
            message = (
                f"{other} is not used: {where} serves {' and '.join(queries)}"
                " (a tv_ projection table is read in preference to its v_ view)"
            )
        problems.append(Problem(relation=other, queries=(), message=message))
    taken_queries.update(queries)
    id_type = next(c[1] for c in cols if c[0] == "id")
    docs = [doc for _, doc in rows]
    fields, sampled = infer_fields(docs, type_name, taken_types)
    fields = _vector_columns(fields, cols)
    identity, id_everywhere = _identity(rows, id_type)
    if identity == "mixed":
        problems.append(
            Problem(
                relation=where,
                queries=(),
                message=f"{where}: some documents carry an id that differs from the id column"
                " and some carry none, so the id column is the id of every row",
            )
        )
        identity = "column"
    if identity == "column" and not id_everywhere:
        # Documents without their id: the view's id column is the id.
        numeric = dict((c[0], c[2]) for c in cols)["id"] in ("int2", "int4", "int8", "numeric")
        id_field = Field(
            name="id",
            key="id",
            type=FieldType(kind="scalar", scalar="ID", json="number" if numeric else "string"),
            nullable=False,
            column="id",
        )
        fields = (id_field, *(f for f in fields if f.name != "id"))
    if not rows and where in too_slow:
        problems.append(
            Problem(
                relation=where,
                queries=(),
                message=f"{where} returned no documents within the statement timeout, even"
                " when asked for one: only its id can be queried; make the view faster or"
                " raise statement_timeout_ms, then reconnect",
            )
        )
    elif not rows:
        problems.append(
            Problem(
                relation=where,
                queries=(),
                message=f"{where} returned no documents to {current_user(conn)} (empty, or"
                " hidden by row-level security): only its id can be queried; reconnect once"
                " it has documents to query their fields",
            )
        )
    return Entity(
        name=type_name,
        schema=nsp,
        relation=rel,
        list_query=list_query,
        single_query=single_query,
        id_type=id_type,
        fields=fields,
        sampled=sampled,
        identity=identity,
        stored=_stored_documents(conn, nsp, rel),
    )


def _vector_columns(
    fields: tuple[Field, ...], cols: list[tuple[str, str, str, str]]
) -> tuple[Field, ...]:
    """pgvector columns of an entity view, beside ``data``, as fields read from the column
    (a document key of the same name gives way: the column is what an index serves)."""
    vectors = [
        Field(
            name=col,
            key=col,
            type=FieldType(kind="list", item=FieldType(kind="scalar", scalar="Float")),
            column=col,
            pg_type=pretty,
        )
        for col, pretty, typname, _ in cols
        if typname == "vector" and graphql_name(col) == col and col not in ("id", "data")
    ]
    taken = {v.name for v in vectors}
    return (*(f for f in fields if f.name not in taken), *vectors)


def _sample_documents(
    conn: psycopg.Connection[Any], nsp: str, rel: str, limit: int
) -> list[tuple[str, Any]] | None:
    """(id as text, document) of the first ``limit`` rows with a document; None when
    even one row takes longer than the statement timeout."""
    rows = within_timeout(
        conn,
        lambda n: sql.SQL(
            "SELECT id::text, data::text FROM {} WHERE data IS NOT NULL LIMIT {}"
        ).format(sql.Identifier(nsp, rel), sql.Literal(n)),
        limit,
    )
    return None if rows is None else [(r[0], loads(r[1])) for r in rows]


def _stored_documents(conn: psycopg.Connection[Any], nsp: str, rel: str) -> bool:
    """True when the relation's ``data`` is a plain column of a table (a ``tv_`` table, or
    a view selecting it unchanged), false when it is computed (``jsonb_build_object``…)
    or the plan cannot be read: the plan's output says which."""
    statement = sql.SQL("EXPLAIN (VERBOSE, FORMAT JSON) SELECT data FROM {}").format(
        sql.Identifier(nsp, rel)
    )
    try:
        with conn.transaction():
            row = conn.execute(statement).fetchone()
    except psycopg.Error:
        return False
    plan = row[0] if row else None
    if isinstance(plan, str):
        plan = loads(plan)
    try:
        output = plan[0]["Plan"]["Output"]
    except (TypeError, KeyError, IndexError):
        return False
    return len(output) == 1 and _PLAIN_COLUMN.fullmatch(output[0]) is not None


def _identity(rows: list[tuple[str, Any]], id_type: str) -> tuple[str, bool]:
    """What the id is, and whether every sampled document carries an ``id``.

    "document" when documents carry ids that differ from their row's id column,
    "column" when they agree or carry none, "mixed" when some differ and some
    documents carry none (those rows could never be found by a document id).
    """
    everywhere = bool(rows)
    differ = False
    for column_id, doc in rows:
        value = doc.get("id") if isinstance(doc, dict) else None
        if value is None:
            everywhere = False
        elif not _same_id(column_id, value, id_type):
            differ = True
    if differ:
        # Rows without a document id could not be found by one: see the caller.
        return ("document" if everywhere else "mixed"), everywhere
    return "column", everywhere


def _same_id(column_id: str | None, value: Any, id_type: str) -> bool:
    if column_id is None or isinstance(value, bool):
        return False
    if isinstance(value, int):
        return str(value) == column_id
    if not isinstance(value, str):
        return False
    if id_type == "uuid":
        try:
            return uuid.UUID(value) == uuid.UUID(column_id)
        except ValueError:
            return False
    return value == column_id
