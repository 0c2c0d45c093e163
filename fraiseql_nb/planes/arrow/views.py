"""A view's freshness, decided by the tables it reads. Pure: the loader runs the SQL.

A view has no row versions of its own, so before this every commit anywhere
on the server (another database included) made a loaded view stale. A view's
rows change only when what it reads changes, though: the load also records,
in its own transaction, which tables the view reads (through its rewrite
rules in ``pg_depend``, through views of views, at any depth), a digest of
those rules, and each table's row count (and its snapshot window, see
:mod:`.freshness`). Later, one statement proves every one of them unchanged:
no row version the load's snapshot did not see, the same count of rows, the
same window. A view is then answered from what was loaded, whatever else
committed meanwhile.

Only views whose answer depends on nothing but those rows qualify: no
volatile function, no user-defined function that is not immutable (it may
read other tables), no clock (``now()``, ``CURRENT_DATE``, ``age(…)``), no
table under row-level security, no foreign table, and SELECT on every base
table for this role. Anything else keeps the old rule (any commit reloads).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from psycopg import sql

from fraiseql_nb.planes.arrow.freshness import Snapshot, new_rows, window_statement

__all__ = [
    "Bases",
    "carried",
    "closure_statement",
    "defined_as",
    "read_closure",
    "recorded",
    "state_statement",
]

# Stable built-in functions whose answer moves with time or the transaction: a view
# using one may change with no row changing.
_MOVING = (
    "now",
    "transaction_timestamp",
    "statement_timestamp",
    "age",
    "timenow",
    "timeofday",
    "clock_timestamp",
)
_HEAP = ("r", "p", "m")

# The view and every relation its rules read, recursing into views (not into
# materialized views: their rows are their own), the digest of those rules, the
# functions they call that could make an answer move without a row changing.
_CLOSURE = sql.SQL(
    r"""
WITH RECURSIVE rel(oid, kind) AS (
    SELECT c.oid, c.relkind::text FROM pg_class AS c WHERE c.oid = {rel}::regclass
    UNION
    SELECT c.oid, c.relkind::text
    FROM rel
    JOIN pg_rewrite AS r ON r.ev_class = rel.oid AND rel.kind = 'v'
    JOIN pg_depend AS d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                       AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> rel.oid
    JOIN pg_class AS c ON c.oid = d.refobjid
), rules AS (
    SELECT r.ev_action::text AS tree FROM rel JOIN pg_rewrite AS r ON r.ev_class = rel.oid
    WHERE rel.kind = 'v'
), calls AS (
    SELECT DISTINCT m[2]::oid AS oid
    FROM rules, regexp_matches(rules.tree, ':(funcid|opfuncid|aggfnoid|winfnoid) (\d+)', 'g') AS m
)
SELECT
    (SELECT md5(string_agg(tree, '|' ORDER BY tree)) FROM rules) AS definition,
    (SELECT bool_or(tree LIKE '%{{SQLVALUEFUNCTION%' OR tree LIKE '%{{NEXTVALEXPR%')
     FROM rules) AS clock,
    (SELECT string_agg(p.proname::text, ',' ORDER BY p.proname)
     FROM calls JOIN pg_proc AS p ON p.oid = calls.oid
     WHERE p.provolatile = 'v'
        OR (p.provolatile = 's' AND (p.oid >= 16384 OR p.proname = ANY({moving}::text[])
                                     OR p.proname LIKE 'pg\_%' OR p.proname LIKE 'txid%'))
    ) AS moving,
    (SELECT json_agg(json_build_array(n.nspname, c.relname, c.relkind::text,
                                      c.relrowsecurity, has_table_privilege(c.oid, 'SELECT'))
                     ORDER BY c.oid)
     FROM rel JOIN pg_class AS c ON c.oid = rel.oid
     JOIN pg_namespace AS n ON n.oid = c.relnamespace
     WHERE rel.kind <> 'v') AS bases
"""
)


@dataclass(frozen=True)
class Bases:
    """The tables a view reads, as they were at a snapshot.

    Attributes:
        definition: a digest of the rewrite rules of the view and the views it reads.
        tables: (schema, name) of each table.
        counts: each table's rows at the snapshot.
        windows: each table's "rows:hash" in the snapshot's window ("" without one).
    """

    definition: str
    tables: tuple[tuple[str, str], ...]
    counts: tuple[int, ...]
    windows: tuple[str, ...]


def closure_statement(view: sql.Composable) -> sql.Composed:
    """What the view reads: its rules' digest, whether they use a clock, the functions
    that could move its answer, its tables (one row)."""
    return _CLOSURE.format(rel=sql.Literal(view.as_string(None)), moving=sql.Literal(list(_MOVING)))


def read_closure(row: dict[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    """The rules' digest and the tables, or None when the view's rows may change without
    one of those tables changing (see the module's docstring)."""
    if row["clock"] or row["moving"] or not row["bases"] or row["definition"] is None:
        return None
    bases = row["bases"] if isinstance(row["bases"], list) else json.loads(row["bases"])
    tables = []
    for schema, name, kind, rls, readable in bases:
        if kind not in _HEAP or rls or not readable:
            return None
        tables.append((str(schema), str(name)))
    return str(row["definition"]), tuple(tables)


def recorded(found: tuple[str, tuple[tuple[str, str], ...]], row: dict[str, Any]) -> Bases:
    """The tables as the load saw them, from the row of ``state_statement(…, now=None)``."""
    definition, tables = found
    return Bases(
        definition=definition,
        tables=tables,
        counts=tuple(int(row[f"t{i}"]) for i in range(len(tables))),
        windows=tuple(str(row.get(f"w{i}") or "") for i in range(len(tables))),
    )


def defined_as(bases: Bases, found: tuple[str, tuple[tuple[str, str], ...]] | None) -> bool:
    """Whether the view (``read_closure`` now) is defined as it was and reads the same tables."""
    return found == (bases.definition, bases.tables)


def carried(bases: Bases, row: dict[str, Any]) -> Bases | None:
    """``bases`` carried to the check's snapshot when no table the view reads changed
    (from the row of ``state_statement(…, now)``); else None."""
    for i, count in enumerate(bases.counts):
        if int(row[f"a{i}"]) or int(row[f"t{i}"]) != count:
            return None
        if str(row.get(f"w{i}") or "") != bases.windows[i]:
            return None
    return replace(
        bases, windows=tuple(str(row.get(f"n{i}") or "") for i in range(len(bases.tables)))
    )


def state_statement(
    tables: tuple[tuple[str, str], ...], s: Snapshot, now: Snapshot | None
) -> sql.Composed:
    """One statement over every table: its rows (``t``), its rows in ``s``'s window
    (``w``); with ``now``, also the rows ``s`` did not see (``a``) and the rows in
    ``now``'s window (``n``)."""
    columns: list[sql.Composable] = []
    for i, (schema, name) in enumerate(tables):
        rel = sql.Identifier(schema, name)
        columns.append(
            sql.SQL("(SELECT count(*) FROM {})::bigint AS {}").format(rel, sql.Identifier(f"t{i}"))
        )
        if s.has_window:
            columns.append(_window(rel, s, f"w{i}"))
        if now is not None:
            columns.append(
                sql.SQL("(SELECT count(*) FROM {} WHERE {})::bigint AS {}").format(
                    rel, new_rows(s, now), sql.Identifier(f"a{i}")
                )
            )
            if now.has_window:
                columns.append(_window(rel, now, f"n{i}"))
    return sql.SQL("SELECT ") + sql.SQL(", ").join(columns)


def _window(rel: sql.Composable, s: Snapshot, alias: str) -> sql.Composed:
    return sql.SQL("(SELECT n::text || ':' || h FROM ({}) AS w) AS {}").format(
        window_statement(rel, s), sql.Identifier(alias)
    )
