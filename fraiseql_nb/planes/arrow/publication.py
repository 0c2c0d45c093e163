"""Whether change capture can follow a table, and its publication: the server (logical
decoding, the REPLICATION attribute), the table (a plain table with a primary key, no
row-level security, every column readable, none generated), and a publication that
publishes every change of every row and column — made here where this role owns the
table (the one write the arrow plane makes), else named by ``[arrow_backend]
publication``."""

from __future__ import annotations

import hashlib
from typing import Any

import psycopg
from psycopg import sql

from fraiseql_nb.planes.arrow.catalog import TableIdentity

__all__ = ["publication_name", "publish", "server_refusal"]

_SERVER = """
SELECT current_setting('wal_level') AS wal_level,
       (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user) AS may
"""

_TABLE = """
SELECT c.relkind::text AS kind, c.relrowsecurity AS rls, c.relreplident::text AS identity,
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS pkey,
       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
               AND NOT a.attisdropped AND a.attgenerated <> '') AS generated,
       has_table_privilege(c.oid, 'SELECT') AS readable,
       pg_has_role(c.relowner, 'USAGE') AS owned
FROM pg_class c WHERE c.oid = %s
"""

# A publication that covers the table whole: every kind of change, no row filter, every
# column (a DBA's publication may publish less, which would lose changes).
_PUBLISHED = """
SELECT EXISTS (
  SELECT 1 FROM pg_publication_tables t JOIN pg_publication p ON p.pubname = t.pubname
  WHERE t.pubname = %(name)s AND t.schemaname = %(schema)s AND t.tablename = %(table)s
    AND p.pubinsert AND p.pubupdate AND p.pubdelete AND p.pubtruncate
    AND t.rowfilter IS NULL
    AND cardinality(t.attnames) = (SELECT count(*) FROM pg_attribute a
          WHERE a.attrelid = %(oid)s AND a.attnum > 0 AND NOT a.attisdropped)) AS covers
"""

_KEY = """
SELECT a.attname AS name FROM pg_index i
JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = %s AND i.indisprimary ORDER BY k.n
"""


def publication_name(schema: str, relation: str) -> str:
    """``fraiseql_nb_<schema>_<table>``, within PostgreSQL's 63 bytes."""
    name = f"fraiseql_nb_{schema}_{relation}"
    if len(name.encode()) <= 63:
        return name
    digest = hashlib.sha256(f"{schema}.{relation}".encode()).hexdigest()[:12]
    return f"fraiseql_nb_{digest}"


def server_refusal(conn: psycopg.Connection[Any]) -> str | None:
    """Why the server cannot stream changes to this role (None: it can)."""
    row = conn.execute(_SERVER).fetchone()
    assert row is not None
    wal_level, may = row
    if wal_level != "logical":
        return f"no logical decoding: wal_level is {wal_level}"
    if not may:
        return "this role has no REPLICATION attribute"
    return None


def publish(
    conn: psycopg.Connection[Any], table: TableIdentity, named: str
) -> tuple[str, list[str]] | str:
    """The table's publication (made or extended when this role owns the table; ``named``:
    the one a DBA made) and its primary key columns; else why it cannot be followed."""
    schema, _, relation = table.relation.partition(".")
    row = conn.execute(_TABLE, (table.oid,)).fetchone()
    if row is None:
        return "the table is gone"
    kind, rls, identity, pkey, generated, readable, owned = row
    if kind != "r":
        return "not a plain table (a view or a partitioned table)"
    if rls:
        return "row-level security: the stream would carry rows this role cannot see"
    if not readable:
        return "this role may not read every column"
    if generated:
        return "generated columns are not in the stream"
    if identity != "d" or not pkey:
        return "the table has no primary key to find changed rows by"
    keys = [r[0] for r in conn.execute(_KEY, (table.oid,)).fetchall()]
    name = named or publication_name(schema, relation)
    found = conn.execute(
        _PUBLISHED, {"name": name, "schema": schema, "table": relation, "oid": table.oid}
    ).fetchone()
    if not (found and found[0]):
        if named:
            return (
                f"the publication {name} does not publish every change of every"
                " row and column of the table"
            )
        if not owned:
            return (
                "this role does not own the table, so it may not publish it: a DBA"
                f" can run CREATE PUBLICATION {publication_name(schema, relation)}"
                f" FOR TABLE {table.relation}"
            )
        _publish(conn, name, schema, relation)
    return name, keys


def _publish(conn: psycopg.Connection[Any], name: str, schema: str, relation: str) -> None:
    """Create (or extend) the table's publication: the one write this plane makes."""
    with conn.transaction():
        conn.execute("SET TRANSACTION READ WRITE")
        exists = conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (name,))
        verb = (
            "ALTER PUBLICATION {} ADD TABLE {}"
            if exists.fetchone()
            else ("CREATE PUBLICATION {} FOR TABLE {}")
        )
        conn.execute(sql.SQL(verb).format(sql.Identifier(name), sql.Identifier(schema, relation)))
