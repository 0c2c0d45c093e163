"""Change capture: loaded columns kept exact by the table's committed changes (logical
decoding), on the embedded server (``wal_level = logical``); the scan where capture
cannot be had, with the reason. Each answer is compared with PostgreSQL's own, with
the writer stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

import fraiseql_nb as fq
from fraiseql_nb.planes.arrow import disktables
from tests.planes.corpus import assert_same

QUERIES = [
    "{ sales_aggregate(groupBy: {region: true}, orderBy: [{region: ASC}])"
    " { region count revenue_sum quantity_sum discount_avg } }",
    "{ sales_window(partitionBy: [channel], orderBy: [{id: ASC}], limit: 40)"
    " { id channel revenue running_sum(field: revenue) } }",
]

# One row's columns: id, then the demo's tf_sales columns from a template row.
COPY_ROW = (
    "INSERT INTO tf_sales SELECT {id}, customer_id, product_id, occurred_at, revenue,"
    " quantity, cost, discount, dimensions, date_info FROM tf_sales WHERE id = {src}"
)

CHANGES = [
    ("insert", COPY_ROW.format(id="900001", src="1")),
    ("insert many", "INSERT INTO tf_sales SELECT id + 800000, customer_id, product_id,"
     " occurred_at, revenue + 1, quantity, cost, discount, dimensions, date_info"
     " FROM tf_sales WHERE id <= 300"),
    ("update a measure", "UPDATE tf_sales SET revenue = revenue * 2 WHERE id % 97 = 0"),
    ("update a dimension", "UPDATE tf_sales SET dimensions = dimensions ||"
     " '{\"region\": \"EU\", \"channel\": null}' WHERE id BETWEEN 10 AND 60"),
    ("update the key", "UPDATE tf_sales SET id = id + 700000 WHERE id BETWEEN 61 AND 70"),
    ("delete", "DELETE FROM tf_sales WHERE id % 89 = 0"),
    ("delete and insert one key", "DELETE FROM tf_sales WHERE id = 5;"
     + COPY_ROW.format(id="5", src="6")),
    ("update then delete", "UPDATE tf_sales SET quantity = 99 WHERE id = 7;"
     " DELETE FROM tf_sales WHERE id = 7"),
]  # fmt: skip


def agree(s: fq.Session) -> list[fq.Result]:
    out = []
    for query in QUERIES:
        arrow = s.execute(query, backend="arrow")
        postgres = s.execute(query, backend="postgres")
        assert isinstance(arrow, fq.Result) and isinstance(postgres, fq.Result)
        assert arrow.backend == "arrow"
        assert_same(arrow.df, postgres.df, query)
        out.append(arrow)
    return out


def freshness(s: fq.Session) -> str:
    return str(s.health()["backends"]["arrow"]["freshness"].get("public.tf_sales"))


def captured(result: fq.Result) -> bool:
    """Brought up to date by the stream: the changed rows' values went to PostgreSQL as
    values (``json_array_elements``), or nothing was read at all; never a scan or a
    reload of the table."""
    values = "json_array_elements(" in result.sql
    return result.sql == "" or (values and 'FROM "public"' not in result.sql)


def test_every_change_kind_is_applied_exactly(tiny: str) -> None:
    with fq.connect(tiny) as s, psycopg.connect(tiny, autocommit=True) as w:
        agree(s)
        assert freshness(s) == "capture"
        assert "estimate freshness: capture" in str(s.explain(QUERIES[0]))
        for name, statement in CHANGES:
            with w.transaction():
                for part in statement.split(";"):
                    w.execute(part)  # type: ignore[call-overload]
            first = agree(s)[0]
            assert captured(first), (name, first.sql[:200])
        # A transaction of several kinds, with a savepoint rolled back: its rows never were.
        with w.transaction():
            w.execute(COPY_ROW.format(id="910000", src="8"))
            w.execute("UPDATE tf_sales SET cost = cost + 1 WHERE id BETWEEN 100 AND 120")
            try:
                with w.transaction():
                    w.execute("DELETE FROM tf_sales WHERE id < 1000")
                    raise RuntimeError("roll the savepoint back")
            except RuntimeError:
                pass
            w.execute("DELETE FROM tf_sales WHERE id = 130")
        assert captured(agree(s)[0])
        # A transaction rolled back whole: nothing happened.
        with pytest.raises(RuntimeError), w.transaction():
            w.execute("DELETE FROM tf_sales")
            raise RuntimeError("roll back")
        assert agree(s)[0].sql == ""
        assert freshness(s) == "capture"


DISK = {"arrow_backend": {"memory_mb": 0}}  # every table answered from its partitions on disk
DISK_QUERIES = [
    QUERIES[0],
    "{ sales_aggregate(groupBy: {channel: true, occurred_at_month: true},"
    " where: {revenue: {gt: 100}}, orderBy: [{channel: ASC}, {occurred_at_month: ASC}])"
    " { channel occurred_at_month count cost_sum revenue_max } }",
]


def agree_on_disk(s: fq.Session) -> fq.Result:
    first = None
    for query in DISK_QUERIES:
        arrow = s.execute(query, backend="arrow")
        postgres = s.execute(query, backend="postgres")
        assert isinstance(arrow, fq.Result) and isinstance(postgres, fq.Result)
        assert arrow.backend == "arrow" and "partitions on disk" in arrow.engine_plan()
        assert_same(arrow.df, postgres.df, query)
        first = first or arrow
    assert first is not None
    return first


def test_every_change_kind_is_applied_to_a_table_on_disk(tiny: str, store: Path) -> None:
    """Beyond memory_mb the partitions stay as loaded; the stream's changes are kept in
    memory beside them and every answer is exact. A new process over the same store
    starts from the partitions (exact at their own snapshot) and syncs them."""
    with fq.connect(tiny, config=DISK) as s, psycopg.connect(tiny, autocommit=True) as w:
        agree_on_disk(s)
        assert freshness(s) == "capture"
        for name, statement in CHANGES:
            with w.transaction():
                for part in statement.split(";"):
                    w.execute(part)  # type: ignore[call-overload]
            first = agree_on_disk(s)
            assert captured(first), (name, first.sql[:200])
            assert "changed rows in memory" in first.engine_plan()
        assert agree_on_disk(s).sql == ""  # nothing changed since: nothing read
        # A bulk insert, then the TRUNCATE that empties the partitions: synced again.
        w.execute(
            "INSERT INTO tf_sales SELECT id + 600000, customer_id, product_id, occurred_at,"
            " revenue, quantity, cost, discount, dimensions, date_info FROM tf_sales"
        )
        assert captured(agree_on_disk(s)) is False  # read by key: 'FROM "public"'
        with w.transaction():  # emptied, and refilled in the same transaction
            w.execute("CREATE TEMPORARY TABLE kept AS SELECT * FROM tf_sales WHERE id <= 500")
            w.execute("TRUNCATE tf_sales")
            w.execute("INSERT INTO tf_sales SELECT * FROM kept")
        agree_on_disk(s)
        assert freshness(s) == "capture"
        w.execute("UPDATE tf_sales SET revenue = 1")
        last = agree_on_disk(s)
        assert captured(last), last.sql[:300]
    with fq.connect(tiny, config=DISK) as other:
        assert not captured(agree_on_disk(other))  # the partitions were synced


def test_changes_past_the_budget_are_merged_into_the_partitions(
    tiny: str, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The changed rows kept in memory are bounded: past half memory_mb (here 2 KB) the
    partitions are synced instead, and the stream carries on from there."""
    monkeypatch.setattr(disktables, "_MIN_DELTA_BYTES", 2_000)
    with fq.connect(tiny, config=DISK) as s, psycopg.connect(tiny, autocommit=True) as w:
        agree_on_disk(s)
        w.execute("UPDATE tf_sales SET quantity = quantity + 1 WHERE id <= 3")
        assert captured(agree_on_disk(s))
        w.execute("UPDATE tf_sales SET quantity = quantity + 1 WHERE id <= 400")
        merged = agree_on_disk(s)
        assert not captured(merged) and "ctid" in merged.sql  # the partitions synced
        w.execute("UPDATE tf_sales SET quantity = quantity + 1 WHERE id <= 3")
        assert captured(agree_on_disk(s))
        assert freshness(s) == "capture"


def test_a_segment_removed_under_a_followed_table_is_loaded_again(tiny: str, store: Path) -> None:
    """The first change after a sync reads the partitions' schema: a segment removed in
    between (a cache clear in another process, the store's LRU) is loaded again, with a
    warning, and the answer is exact — never a raw file error."""
    with fq.connect(tiny, config=DISK) as s, psycopg.connect(tiny, autocommit=True) as w:
        agree_on_disk(s)
        for segment in store.rglob("p0000-*.arrow"):
            segment.unlink()
        w.execute("UPDATE tf_sales SET quantity = quantity + 1 WHERE id <= 3")
        with pytest.warns(RuntimeWarning, match="partition 0 of public.tf_sales"):
            agree_on_disk(s)
        w.execute("UPDATE tf_sales SET quantity = quantity + 1 WHERE id <= 3")
        assert captured(agree_on_disk(s))


def test_truncate_and_alter_table_read_the_table_again(tiny: str) -> None:
    with fq.connect(tiny) as s, psycopg.connect(tiny, autocommit=True) as w:
        agree(s)
        w.execute("ALTER TABLE tf_sales ADD COLUMN note text")
        again = agree(s)[0]
        assert 'FROM "public"."tf_sales"' in again.sql  # loaded again, whole
        w.execute(
            COPY_ROW.format(id="920000", src="3").replace("date_info FROM", "date_info, 'x' FROM")
        )
        assert captured(agree(s)[0])
        with w.transaction():
            w.execute("CREATE TEMP TABLE keep AS SELECT * FROM tf_sales WHERE id <= 500")
            w.execute("TRUNCATE tf_sales")
            w.execute("INSERT INTO tf_sales SELECT * FROM keep")
        agree(s)
        assert freshness(s) == "capture"
        w.execute("DELETE FROM tf_sales WHERE id = 2")
        assert captured(agree(s)[0])


def test_writes_racing_the_first_load_are_neither_lost_nor_doubled(tiny: str) -> None:
    stop = threading.Event()
    wrote = [0]

    def writer() -> None:
        with psycopg.connect(tiny, autocommit=True) as w:
            i = 0
            while not stop.is_set():
                i += 1
                w.execute(COPY_ROW.format(id=str(950000 + i), src=str(1 + i % 50)))
                w.execute(f"UPDATE tf_sales SET revenue = revenue + 1 WHERE id = {1 + i % 300}")
                w.execute(f"DELETE FROM tf_sales WHERE id = {2000 + i}")
                wrote[0] = i

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        with fq.connect(tiny) as s:
            for _ in range(5):
                s.execute(QUERIES[0], backend="arrow")  # loads while the writer writes
            stop.set()
            thread.join(timeout=30)
            assert wrote[0] > 10
            agree(s)
            assert freshness(s) == "capture"
    finally:
        stop.set()
        thread.join(timeout=30)


def test_a_second_table_published_after_the_slot_is_followed_too(tiny: str) -> None:
    """The second fact table's publication is made after the session's slot: the slot
    never decodes WAL from before it with it (PostgreSQL would fail the read: the
    publication did not exist yet), and both tables stay captured and exact."""
    with psycopg.connect(tiny, autocommit=True) as w:
        w.execute("CREATE TABLE tf_returns (LIKE tf_sales INCLUDING ALL)")
        w.execute("INSERT INTO tf_returns SELECT * FROM tf_sales WHERE id % 3 = 0")
    other = QUERIES[0].replace("sales_aggregate", "returns_aggregate")
    with fq.connect(tiny) as s, psycopg.connect(tiny, autocommit=True) as w:
        agree(s)  # the slot is made for tf_sales
        w.execute("UPDATE tf_sales SET quantity = quantity + 1 WHERE id % 5 = 0")
        w.execute("UPDATE tf_returns SET quantity = quantity + 1 WHERE id % 5 = 0")
        for i in range(2):
            arrow, postgres = (s.execute(other, backend=b) for b in ("arrow", "postgres"))
            assert_same(arrow.df, postgres.df, other)
            assert captured(agree(s)[0])
            w.execute("DELETE FROM tf_returns WHERE id % 7 = 0")
            w.execute(COPY_ROW.format(id=str(990001 + i), src="2"))
        methods = s.health()["backends"]["arrow"]["freshness"]
        assert methods == {"public.tf_sales": "capture", "public.tf_returns": "capture"}
        last = s.execute(other, backend="arrow")
        assert captured(last)
        assert_same(last.df, s.execute(other, backend="postgres").df, other)


def test_two_sessions_each_have_their_slot_and_stay_exact(tiny: str) -> None:
    with fq.connect(tiny) as a, fq.connect(tiny) as b, psycopg.connect(tiny, autocommit=True) as w:
        agree(a)
        agree(b)
        assert len(slots(tiny)) == 2
        w.execute("UPDATE tf_sales SET quantity = quantity + 1 WHERE id % 10 = 0")
        assert captured(agree(a)[0]) and captured(agree(b)[0])
    assert until_no_slots(tiny)


def slots(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT slot_name, temporary FROM pg_replication_slots"
            " WHERE slot_name LIKE 'fraiseql_nb_%' AND database = current_database()"
        ).fetchall()


def until_no_slots(dsn: str, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while slots(dsn):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_killed_session_leaves_no_slot(tiny: str) -> None:
    script = (
        "import sys, fraiseql_nb as fq\n"
        "s = fq.connect(sys.argv[1])\n"
        f"s.execute({QUERIES[0]!r}, backend='arrow')\n"
        "print('ready', flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, tiny],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        assert [temporary for _, temporary in slots(tiny)] == [True]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert until_no_slots(tiny), slots(tiny)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.fixture
def plain_role(tiny: str) -> Iterator[str]:
    """A login that may read the tables but has no REPLICATION attribute."""
    name = "fq_no_replication"
    with psycopg.connect(tiny, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {name}")
        conn.execute(f"CREATE ROLE {name} LOGIN")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {name}")
    params = conninfo_to_dict(tiny)
    params["user"] = name
    try:
        yield make_conninfo(**params)
    finally:
        with psycopg.connect(tiny, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {name}")
            conn.execute(f"DROP ROLE {name}")


def test_without_replication_the_scan_keeps_answers_exact_and_says_why(
    plain_role: str, tiny: str
) -> None:
    with fq.connect(plain_role) as s, psycopg.connect(tiny, autocommit=True) as w:
        agree(s)
        assert freshness(s) == "scan (this role has no REPLICATION attribute)"
        plan = str(s.explain(QUERIES[0]))
        assert "estimate freshness: scan (this role has no REPLICATION attribute)" in plan
        w.execute("UPDATE tf_sales SET revenue = revenue + 3 WHERE id % 50 = 0")
        agree(s)
    assert not slots(tiny)


def test_a_table_without_a_primary_key_is_scanned(tiny: str) -> None:
    with psycopg.connect(tiny, autocommit=True) as w:
        w.execute("ALTER TABLE tf_sales DROP CONSTRAINT tf_sales_pkey")
    with fq.connect(tiny) as s, psycopg.connect(tiny, autocommit=True) as w:
        agree(s)
        assert freshness(s) == "scan (the table has no primary key to find changed rows by)"
        w.execute(COPY_ROW.format(id="930000", src="4"))
        agree(s)
        # Nothing was published: UPDATE and DELETE keep working on a table without a key.
        w.execute("DELETE FROM tf_sales WHERE id = 930000")


def test_capture_off_is_the_scan(tiny: str) -> None:
    config = {"arrow_backend": {"change_capture": False}}
    with fq.connect(tiny, config=config) as s, psycopg.connect(tiny, autocommit=True) as w:
        agree(s)
        w.execute(COPY_ROW.format(id="940000", src="4"))
        first = agree(s)[0]
        assert (
            "json_array_elements(" not in first.sql and "ctid >=" in first.sql
        )  # the appended rows
        assert freshness(s) == "None"
    assert not slots(tiny)


def test_a_publication_that_leaves_changes_out_is_not_trusted(tiny: str) -> None:
    with psycopg.connect(tiny, autocommit=True) as w:
        w.execute(
            "CREATE PUBLICATION fraiseql_nb_public_tf_sales FOR TABLE tf_sales"
            " WITH (publish = 'insert')"
        )
    with fq.connect(tiny) as s, psycopg.connect(tiny, autocommit=True) as w:
        agree(s)
        assert freshness(s).startswith("scan (")  # deletes would be lost: the scan instead
        w.execute("DELETE FROM tf_sales WHERE id % 7 = 0")
        agree(s)


def test_an_asynchronous_commit_is_seen_by_the_next_query(tiny: str) -> None:
    """Visible before it is flushed, it is read from the stream once flushed."""
    with fq.connect(tiny) as s, psycopg.connect(tiny, autocommit=True) as w:
        agree(s)
        w.execute("SET synchronous_commit = off")
        for i in range(5):
            w.execute(f"UPDATE tf_sales SET quantity = quantity + 1 WHERE id = {100 + i}")
            w.execute(COPY_ROW.format(id=str(960000 + i), src="9"))
            first = agree(s)[0]
            assert captured(first)


def test_a_bulk_insert_is_read_by_key_and_stays_exact(tiny: str) -> None:
    """Past BULK_ROWS messages, inserted rows are read from the table by key (not decoded
    value by value); changes committed meanwhile apply over them."""
    with fq.connect(tiny) as s, psycopg.connect(tiny, autocommit=True) as w:
        agree(s)
        with w.transaction():
            w.execute(
                "INSERT INTO tf_sales SELECT id + 600000, customer_id, product_id, occurred_at,"
                " revenue + 2, quantity, cost, discount, dimensions, date_info FROM tf_sales"
                " WHERE id <= 2500"
            )
            w.execute("UPDATE tf_sales SET quantity = 1 WHERE id = 600010")
            w.execute("DELETE FROM tf_sales WHERE id = 600020")
        first = agree(s)[0]
        # The inserted keys run 600001..602500 but for the one updated afterwards (its
        # values came in the stream) and the one deleted: three ranges, not 2,498 keys.
        assert (
            '"id" BETWEEN 600001 AND 600009 OR "id" BETWEEN 600011 AND 600019'
            ' OR "id" BETWEEN 600021 AND 602500' in first.sql
        )
        assert freshness(s) == "capture"
        w.execute("UPDATE tf_sales SET revenue = 0 WHERE id BETWEEN 600100 AND 600110")
        assert captured(agree(s)[0])
