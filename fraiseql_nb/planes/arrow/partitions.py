"""Partitions of a fact table by ranges of its pages, and the SQL that reads and checks
them. Pure.

A table answered from disk (beyond ``[arrow_backend] memory_mb``) is loaded as
partitions: ranges of its heap pages, read by TID range scans (``ctid >= '(a,0)'
AND ctid < '(b,0)'``, PostgreSQL 14+: the scan reads those pages only). Pages,
not key ranges: every heap table has them, with or without a key or an index;
they split the table into disjoint parts of even size whatever its values; and
appended rows land on new pages at the end, so they become a new partition (or
a new segment of one), leaving the others as they were. The last partition has
no end: pages added later belong to it.

Freshness is decided per partition by :func:`check_statement`: one statement,
one scan of the row headers, gives for each partition its rows now, the row
versions the load's snapshot did not see, and where the first of them is. A
partition whose rows, less the new ones, are exactly those loaded had appends
only (its new rows are loaded as one more segment); any other partition is
reloaded; the rest is kept (see :mod:`.freshness` for the rule and its limits).
"""

from __future__ import annotations

import math

from psycopg import sql

from fraiseql_nb.planes.arrow.freshness import Snapshot, new_rows

__all__ = ["PART_BYTES", "check_statement", "page_range", "plan"]

#: Heap bytes per partition (before there are more partitions than workers).
PART_BYTES = 64 * 2**20
_MAX_PARTS = 4096
_PAGE = sql.SQL("((ctid::text::point)[0])::bigint")


def plan(pages: int, page_bytes: int, workers: int) -> list[int]:
    """The first page of each partition: at least two per worker (so a slow one does not
    hold the load back), each at most :data:`PART_BYTES` of heap, at least one page."""
    if pages <= 1:
        return [0]
    wanted = max(2 * workers, math.ceil(pages * page_bytes / PART_BYTES))
    parts = max(1, min(wanted, pages, _MAX_PARTS))
    return sorted({(pages * i) // parts for i in range(parts)})


def page_range(starts: list[int], i: int) -> sql.Composable:
    """The rows of partition ``i``: a TID range (the last one open at the end)."""
    low = sql.SQL("ctid >= {}::tid").format(sql.Literal(f"({starts[i]},0)"))
    if i + 1 == len(starts):
        return low
    high = sql.SQL("ctid < {}::tid").format(sql.Literal(f"({starts[i + 1]},0)"))
    return sql.SQL("{} AND {}").format(low, high)


def check_statement(
    relation: sql.Composable, starts: list[int], loaded: Snapshot, now: Snapshot
) -> sql.Composed:
    """Per partition (``p``: its index): rows now, rows ``loaded`` did not see, and the
    least position of those — in one statement, one scan of the row headers."""
    bounds = "{" + ",".join(str(s) for s in starts[1:]) + "}"
    part = (
        sql.SQL("width_bucket({page}, {b}::bigint[])").format(page=_PAGE, b=sql.Literal(bounds))
        if len(starts) > 1
        else sql.SQL("0")
    )
    new = new_rows(loaded, now)
    return sql.SQL(
        "SELECT {part} AS p, count(*)::bigint AS total,"
        " count(*) FILTER (WHERE {new})::bigint AS added,"
        " (min(ctid) FILTER (WHERE {new}))::text AS first"
        " FROM {rel} GROUP BY 1 ORDER BY 1"
    ).format(part=part, new=new, rel=relation)
