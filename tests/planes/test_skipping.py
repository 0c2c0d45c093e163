"""A table on disk skips the partitions (and appended segments) its filter rules out by
their statistics, and says so: the plane's counters, ``Result.partitions``, the engine's
account of how it computed the answer."""

from __future__ import annotations

from pathlib import Path

import psycopg

import fraiseql_nb as fq
from tests.conftest import plane_of
from tests.planes.conftest import append_sales
from tests.planes.corpus import assert_same

CONFIG = {"arrow_backend": {"memory_mb": 0, "load_connections": 2, "change_capture": False}}


def both(s: fq.Session, query: str) -> fq.Result:
    r = s.execute(query, backend="arrow")
    assert isinstance(r, fq.Result) and (r.backend, r.storage) == ("arrow", "disk")
    assert_same(s.execute(query, backend="postgres").df, r.df, query)
    return r


def test_a_filter_that_rules_out_all_partitions_but_one_reads_one(tiny: str, store: Path) -> None:
    with fq.connect(tiny, config=CONFIG) as s:
        plane = plane_of(s, "arrow")
        whole = both(s, "{ sales_aggregate { count revenue_sum } }")
        total, filled = whole.partitions["total"], whole.partitions["read"]
        # Without a filter every partition holding rows is read (an empty one never is).
        assert total >= 4 and filled >= total - 1
        assert whole.partitions == {"read": filled, "skipped": total - filled, "total": total}
        read, skipped = plane.partitions_read, plane.partitions_skipped
        # The demo's rows are written in id order: the first ids are in the first pages.
        r = both(s, "{ sales_aggregate(where: {id: {lte: 20}}) { count revenue_sum } }")
        assert r.df["count"][0] == 20
        assert r.partitions == {"read": 1, "skipped": total - 1, "total": total}
        assert (plane.partitions_read - read, plane.partitions_skipped - skipped) == (1, total - 1)
        assert f"over 1 of {total} partitions on disk" in r.engine_plan()
        assert f"{total - 1} skipped by their statistics" in r.engine_plan()
        # Ruled out everywhere: nothing is read, the answer is still PostgreSQL's.
        none = both(s, '{ sales_aggregate(where: {occurred_at: {gte: "2100-01-01"}}) { count } }')
        assert none.partitions == {"read": 0, "skipped": total, "total": total}
        # Conditions the statistics cannot judge read everything.
        text = both(
            s, '{ sales_aggregate(where: {category: {icontains: "zzz"}, id: {gte: 1}}) { count } }'
        )
        assert text.partitions["read"] == filled
        # Appended rows are a segment of their own: a filter on them reads that segment only.
        with psycopg.connect(tiny, autocommit=True) as conn:
            conn.execute(append_sales(25))
        new = both(s, "{ sales_aggregate(where: {id: {gt: 1000000}}) { count revenue_sum } }")
        assert new.df["count"][0] == 25
        assert new.partitions["read"] == 1
        assert "(1 files read;" in new.engine_plan()
