"""Partition planning and the freshness rules' pure parts, without a database: how a
table's pages are cut, which partition a row position falls in, and what a snapshot
says."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fraiseql_nb.planes.arrow.freshness import appends_only, new_rows, parse_snapshot
from fraiseql_nb.planes.arrow.partitions import (
    PART_BYTES,
    page_range,
    partition_of,
    partition_of_tid,
    plan,
)

PAGE = 8192


def test_a_small_table_is_one_partition_a_big_one_many_of_at_most_64_mb() -> None:
    assert plan(0, PAGE, 4) == [0] and plan(1, PAGE, 4) == [0]
    assert plan(100, PAGE, 2) == [0, 25, 50, 75]  # two per worker
    pages = 10 * PART_BYTES // PAGE  # 640 MB of heap
    starts = plan(pages, PAGE, 1)
    assert len(starts) == 10 and starts[0] == 0
    assert max(b - a for a, b in zip(starts, [*starts[1:], pages], strict=True)) * PAGE <= (
        PART_BYTES
    )


@given(st.integers(1, 200_000), st.integers(1, 16))
def test_partitions_cover_every_page_once(pages: int, workers: int) -> None:
    starts = plan(pages, PAGE, workers)
    assert starts[0] == 0 and starts == sorted(set(starts)) and starts[-1] < max(pages, 1)
    for page in {0, pages // 2, pages - 1}:
        i = partition_of_tid(starts, f"({page},7)")
        assert starts[i] <= page and (i + 1 == len(starts) or page < starts[i + 1])


def test_page_ranges_and_the_partition_of_a_row_as_sql() -> None:
    starts = [0, 10, 20]
    assert page_range(starts, 0).as_string(None) == "ctid >= '(0,0)'::tid AND ctid < '(10,0)'::tid"
    assert page_range(starts, 2).as_string(None) == "ctid >= '(20,0)'::tid"  # open at the end
    case = partition_of(starts).as_string(None)
    assert (
        case == "CASE WHEN ctid < '(10,0)'::tid THEN 0 WHEN ctid < '(20,0)'::tid THEN 1 ELSE 2 END"
    )
    many = partition_of(list(range(0, 1000, 10))).as_string(None)
    assert many.startswith("width_bucket(") and "::bigint[]" in many  # past 64: a bucket


def test_snapshots_parse_and_say_whether_transactions_were_in_progress() -> None:
    quiet = parse_snapshot("845:845:")
    busy = parse_snapshot("841:845:841,843")
    assert (busy.xmin, busy.xmax, busy.xip) == (841, 845, (841, 843))
    assert busy.text == "841:845:841,843" and quiet.text == "845:845:"
    assert busy.has_window and not quiet.has_window


def test_new_rows_lists_the_transactions_the_load_did_not_see() -> None:
    loaded = parse_snapshot("841:845:841,843")
    now = parse_snapshot("850:850:")
    listed = new_rows(loaded, now).as_string(None)
    # 845..849 started after the load, 841 and 843 were in progress during it.
    assert listed == "(xmin = ANY('{841,843,845,846,847,848,849}'::xid[]))"
    # Far apart: compared by age (wraparound-safe), in-progress ones still listed.
    far = new_rows(loaded, parse_snapshot("10000000:10000000:")).as_string(None)
    assert far == "(age(xmin) <= age('845'::xid) OR xmin = ANY('{841,843}'::xid[]))"


def test_appends_only_needs_every_loaded_row_and_an_unmoved_window() -> None:
    assert appends_only(100, (0, "0"), 100, (0, "0"))
    assert not appends_only(100, (0, "0"), 99, (0, "0"))  # a row updated or deleted
    assert not appends_only(100, (2, "ab"), 100, (3, "cd"))  # its window moved
