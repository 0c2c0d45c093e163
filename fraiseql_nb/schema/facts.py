"""A fact table (``tf_*``) read from the catalogue: its measures (numeric columns other
than ids), its filter columns, its dimensions (the leaves of its ``dimensions`` or
``data`` JSONB, sampled, up to three levels deep) and its calendars (``*_info`` JSONB
holding time buckets)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from fraiseql_nb.language.vocabulary import BUCKETS
from fraiseql_nb.pg.documents import loads
from fraiseql_nb.schema.infer import infer_fields
from fraiseql_nb.schema.model import Calendar, Column, Dimension, FactTable, Field, Problem
from fraiseql_nb.schema.naming import graphql_name, pascal
from fraiseql_nb.schema.sampling import PG_SCALARS, current_user, within_timeout

__all__ = ["read_fact"]

_DIMENSION_COLUMNS = ("dimensions", "data")
_MAX_DIMENSION_DEPTH = 3
# Numeric types whose sums and averages mean something (money, oid… are not measures).
_MEASURE_TYPES = ("int2", "int4", "int8", "numeric", "float4", "float8")


def read_fact(
    conn: psycopg.Connection[Any],
    nsp: str,
    rel: str,
    cols: list[tuple[str, str, str, str]],
    sample_size: int,
    problems: list[Problem],
    taken_queries: set[str],
) -> FactTable | None:
    name = rel[3:]
    queries = (f"{name}_aggregate", f"{name}_window")
    where = f"{nsp}.{rel}"

    def problem(message: str) -> None:
        problems.append(Problem(relation=where, queries=queries, message=message))

    if graphql_name(name) != name:
        problem(f"fact table {where}: {name!r} cannot be a GraphQL name")
        return None
    if set(queries) & taken_queries:
        problem(f"fact table {where} is skipped: {', '.join(queries)} are taken")
        return None
    measures: list[Column] = []
    filters: list[Column] = []
    jsonb: list[str] = []
    for col, pretty, typname, _category in cols:
        if typname == "jsonb":
            jsonb.append(col)
            continue
        if graphql_name(col) != col:
            continue  # not addressable by name in GraphQL
        if typname in _MEASURE_TYPES and col != "id" and not col.endswith("_id"):
            measures.append(
                Column(name=col, pg_type=pretty, scalar=PG_SCALARS.get(typname, "Float"))
            )
        else:
            filters.append(
                Column(name=col, pg_type=pretty, scalar=PG_SCALARS.get(typname, "String"))
            )
    if not measures:
        problem(
            f"fact table {where} has no measures: it needs a numeric column other than id and *_id"
        )
        return None
    dimension_columns = [c for c in _DIMENSION_COLUMNS if c in jsonb]
    if len(dimension_columns) > 1:
        problem(
            f"fact table {where} has two candidate dimension columns"
            f" ({' and '.join(dimension_columns)}); keep one"
        )
        return None
    taken_queries.update(queries)
    taken_names = {c.name for c in (*measures, *filters)}
    dimensions: list[Dimension] = []
    if dimension_columns:
        column = dimension_columns[0]
        docs = _sample_json(conn, nsp, rel, column, sample_size)
        if not docs:
            problems.append(
                Problem(
                    relation=where,
                    queries=(),
                    message=f"{where} returned no {column} documents to {current_user(conn)}"
                    " (empty, or hidden by row-level security): it has no dimensions until"
                    " reconnected once it has rows",
                )
            )
        fields, _ = infer_fields(docs, f"{pascal(name)}Dimensions")
        for dim in _flatten(fields, column):
            if dim.name in taken_names:
                message = (
                    f"fact table {where}: dimension {'.'.join(dim.path)} flattens to"
                    f" {dim.name}, which is already a column; it is left out"
                )
                problems.append(Problem(relation=where, queries=(), message=message))
                continue
            taken_names.add(dim.name)
            dimensions.append(dim)
    time_columns = [c.name for c in filters if c.scalar in ("DateTime", "Date")]
    calendars: list[Calendar] = []
    for column in (c for c in jsonb if c.endswith("_info")):
        keys = set()
        for doc in _sample_json(conn, nsp, rel, column, min(sample_size, 100)):
            if isinstance(doc, dict):
                keys.update(doc)
        held = tuple(k for k in BUCKETS.values() if k in keys)
        serves = time_columns[0] if len(time_columns) == 1 else None
        if held:
            calendars.append(Calendar(column=column, keys=held, serves=serves))
    return FactTable(
        name=name,
        schema=nsp,
        relation=rel,
        id_column="id" if any(c.name == "id" for c in filters) else None,
        measures=tuple(measures),
        filters=tuple(filters),
        dimensions=tuple(dimensions),
        calendars=tuple(calendars),
    )


def _sample_json(
    conn: psycopg.Connection[Any], nsp: str, rel: str, column: str, limit: int
) -> list[Any]:
    rows = within_timeout(
        conn,
        lambda n: sql.SQL("SELECT {col}::text FROM {rel} WHERE {col} IS NOT NULL LIMIT {n}").format(
            col=sql.Identifier(column), rel=sql.Identifier(nsp, rel), n=sql.Literal(n)
        ),
        limit,
    )
    return [loads(r[0]) for r in rows or ()]


def _flatten(
    fields: tuple[Field, ...], column: str, keys: tuple[str, ...] = (), names: tuple[str, ...] = ()
) -> list[Dimension]:
    """Dimension leaves up to three levels deep; ``product.brand`` becomes ``product_brand``."""
    out: list[Dimension] = []
    for f in fields:
        path, name = (*keys, f.key), (*names, f.name)
        if f.type.kind == "object" and len(path) < _MAX_DIMENSION_DEPTH:
            out += _flatten(f.type.fields, column, path, name)
        elif f.type.kind == "scalar" and f.type.scalar != "JSON":
            scalar = f.type.scalar or "String"
            if scalar == "ID":  # *_id inside dimensions: keep its JSON kind
                scalar = "BigInt" if f.type.json == "number" else "String"
            out.append(Dimension(name="_".join(name), column=column, path=path, scalar=scalar))
    return out
