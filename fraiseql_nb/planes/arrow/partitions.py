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

Freshness is decided per partition. :func:`check_statement` — one statement,
one scan of the row headers — gives the table's rows now, the row versions the
load's snapshot did not see, and where the first of them is. When the rows less
the new ones are exactly those loaded, the change is appends only: the new rows
are loaded as one more segment of the partitions they fall in (the last one,
unless rows were written into free space of earlier pages: then
:func:`new_by_partition` says which, reading from the first new row on).
Otherwise :func:`counts_statement` counts the rows of each partition, and a
partition whose rows less its new ones are not those loaded is loaded again;
the rest is kept (see :mod:`.freshness` for the rule and its limits).
"""

from __future__ import annotations

import math

from psycopg import sql

from fraiseql_nb.planes.arrow.freshness import Snapshot, new_rows

__all__ = [
    "PART_BYTES",
    "check_statement",
    "counts_statement",
    "new_by_partition",
    "page_range",
    "partition_of",
    "partition_of_tid",
    "plan",
]

#: Heap bytes per partition (before there are more partitions than workers).
PART_BYTES = 64 * 2**20
_MAX_PARTS = 4096
_PAGE = sql.SQL("((ctid::text::point)[0])::bigint")
_CASE_MAX = 64


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


def partition_of(starts: list[int]) -> sql.Composable:
    """A row's partition index, from its position: TID comparisons (cheap) for up to
    :data:`_CASE_MAX` partitions, else a bucket of its page number."""
    if len(starts) == 1:
        return sql.SQL("0")
    if len(starts) <= _CASE_MAX:
        whens = sql.SQL(" ").join(
            sql.SQL("WHEN ctid < {}::tid THEN {}").format(
                sql.Literal(f"({start},0)"), sql.Literal(i)
            )
            for i, start in enumerate(starts[1:])
        )
        return sql.SQL("CASE {} ELSE {} END").format(whens, sql.Literal(len(starts) - 1))
    bounds = "{" + ",".join(str(s) for s in starts[1:]) + "}"
    return sql.SQL("width_bucket({page}, {b}::bigint[])").format(page=_PAGE, b=sql.Literal(bounds))


def check_statement(relation: sql.Composable, loaded: Snapshot, now: Snapshot) -> sql.Composed:
    """Rows now, the row versions ``loaded`` did not see, and the least position of those:
    one statement, one (parallel) scan of the row headers."""
    new = new_rows(loaded, now)
    return sql.SQL(
        "SELECT count(*)::bigint AS total, count(*) FILTER (WHERE {new})::bigint AS added,"
        " (min(ctid) FILTER (WHERE {new}))::text AS first FROM {rel}"
    ).format(rel=relation, new=new)


def new_by_partition(
    relation: sql.Composable, starts: list[int], loaded: Snapshot, now: Snapshot, first: str
) -> sql.Composed:
    """Per partition (``p``), the new rows and the first of them — read from ``first`` on
    (a TID range scan), only when they do not all fall in the last partition."""
    return sql.SQL(
        "SELECT {part} AS p, count(*)::bigint AS added, min(ctid)::text AS first FROM {rel}"
        " WHERE ctid >= {first}::tid AND {new} GROUP BY 1 ORDER BY 1"
    ).format(
        part=partition_of(starts),
        rel=relation,
        first=sql.Literal(first),
        new=new_rows(loaded, now),
    )


def partition_of_tid(starts: list[int], tid: str) -> int:
    """The partition a row position ``(page,item)`` falls in."""
    page = int(tid.strip("()").split(",")[0])
    return max(i for i, start in enumerate(starts) if start <= page) if page >= starts[0] else 0


def counts_statement(relation: sql.Composable, starts: list[int]) -> sql.Composed:
    """Rows now per partition — only when something beyond appends changed."""
    return sql.SQL(
        "SELECT {part} AS p, count(*)::bigint AS total FROM {rel} GROUP BY 1 ORDER BY 1"
    ).format(part=partition_of(starts), rel=relation)
