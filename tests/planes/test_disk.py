"""The arrow plane from disk: tables beyond [arrow_backend] memory_mb are loaded by partition
to the store and answered by Polars' streaming engine — with PostgreSQL's answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings

import fraiseql_nb as fq
from tests.conftest import plane_of
from tests.planes.conftest import append_sales
from tests.planes.corpus import AGGREGATES, WINDOWS, assert_same
from tests.planes.fraiseql_corpus import AGGS, expected, same_rows
from tests.planes.groups_corpus import GROUPS
from tests.planes.test_agreement import aggregate_queries

TOTAL = "{ sales_aggregate { count revenue_sum } }"


def disk_config(**arrow: object) -> dict[str, object]:
    """memory_mb = 0: every table is answered from disk (the store: $FRAISEQL_ARROW_BACKEND_STORE_DIR)."""
    return {"arrow_backend": {"memory_mb": 0, **arrow}}


@pytest.fixture(scope="module")
def disk_session(demo_dsn: str) -> Iterator[fq.Session]:
    s = fq.connect(demo_dsn, config=disk_config())
    yield s
    s.close()


def on_disk(s: fq.Session, query: str) -> fq.Result:
    r = s.execute(query, backend="arrow")
    assert isinstance(r, fq.Result)
    assert (r.backend, r.storage) == ("arrow", "disk")
    return r


def totals(dsn: str) -> dict[str, object]:
    with psycopg.connect(dsn) as conn:
        n, total = conn.execute("SELECT count(*), sum(revenue)::float8 FROM tf_sales").fetchone()  # type: ignore[misc]
    return {"count": n, "revenue_sum": total}


def parts_of(s: fq.Session) -> object:
    return plane_of(s, "arrow")._disk.last


def agree(s: fq.Session, query: str) -> None:
    """The disk path's answer is PostgreSQL's (a percentile too, with or without group
    keys, over more values than memory_mb holds)."""
    pg = s.execute(query, backend="postgres")
    ar = s.execute(query, backend="arrow")
    assert (ar.backend, ar.storage) == ("arrow", "disk")
    assert_same(pg.df, ar.df, query)


@pytest.mark.parametrize("query", AGGREGATES)
def test_aggregates_from_disk_agree_with_postgresql(disk_session: fq.Session, query: str) -> None:
    agree(disk_session, query)


@pytest.mark.parametrize(
    "query",
    [
        "{ sales_aggregate(groupBy: {customer_id: true}, orderBy: {customer_id: ASC}) {"
        " customer_id count revenue_median revenue_p90 cost_p25 } }",
        "{ sales_aggregate { count revenue_median revenue_p99 quantity_p25 } }",
        "{ sales_aggregate(where: {quantity: {gte: 2}}, groupBy: {occurred_at_month: true},"
        " orderBy: {occurred_at_month: ASC}) { occurred_at_month revenue_median cost_p75 } }",
    ],
    ids=["grouped", "global", "where-by-month"],
)
def test_percentiles_from_disk_are_selected_by_ranges_of_value(
    disk_session: fq.Session, query: str
) -> None:
    """memory_mb = 0 (a 1 MB compute budget) holds fewer than the 100,000 values of the
    demo: histograms of value narrow each group's ranks down over several scans, then
    the values left are gathered — with group keys or without, PostgreSQL's answer."""
    plane = plane_of(disk_session, "arrow")._disk
    table = plane_of(disk_session, "arrow")._catalog.identity(disk_session.schema.fact("sales"))
    on_disk(disk_session, TOTAL)
    data = plane.ready(table, {})
    assert data is not None and data.rows >= 100_000
    agree(disk_session, query)
    assert plane.last_passes >= 3  # the first scan, a histogram at least, the values gathered
    how = disk_session.execute(query, backend="arrow").engine_plan()  # type: ignore[union-attr]
    assert f"in {plane.last_passes} scans" in how


def test_generated_aggregates_from_disk_agree(disk_session: fq.Session) -> None:
    @settings(
        max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(query=aggregate_queries())
    def check(query: str) -> None:
        agree(disk_session, query)

    check()


def test_the_badge_and_auto_say_from_disk(disk_session: fq.Session) -> None:
    from fraiseql_nb.notebook.display import badge

    on_disk(disk_session, TOTAL)  # loaded
    auto = disk_session.execute(TOTAL)
    assert (auto.backend, auto.storage, auto.reason) == ("arrow", "disk", "from disk")
    assert badge(auto).startswith("sales_aggregate: arrow (from disk) · ")
    plan = str(disk_session.explain(TOTAL))
    assert "→ arrow (from disk)" in plan and f"estimate rows: {auto.df['count'][0]:,}" in plan
    # How it was computed: the partitions and Polars' streaming plan.
    how = auto.engine_plan()
    assert how.startswith("Polars' streaming engine over ") and " partitions on disk (" in how
    assert f"{auto.df['count'][0]:,} rows)" in how and "in 1 scan" in how


def test_window_functions_on_disk_are_declined_and_auto_answers_on_postgresql(
    disk_session: fq.Session,
) -> None:
    query = WINDOWS[0]
    with pytest.raises(fq.QueryError, match="window functions on a table answered from disk"):
        disk_session.execute(query, backend="arrow")
    auto = disk_session.execute(query)
    assert auto.backend == "postgres"
    assert "window functions on a table answered from disk" in auto.reason
    assert_same(disk_session.execute(query, backend="postgres").df, auto.df, query)


def test_partitions_load_in_parallel_and_stay_on_disk(tiny: str, store: Path) -> None:
    with fq.connect(tiny, config=disk_config(load_connections=2)) as s:
        first = on_disk(s, TOTAL)
        assert first.df.to_dicts() == [totals(tiny)]
        synced = parts_of(s)
        assert len(synced.table.parts) >= 4  # two per connection at least
        assert sorted(synced.reloaded) == list(range(len(synced.table.parts)))
        assert synced.rows == totals(tiny)["count"]
        assert "partitions, as: SELECT" in first.sql and "ctid >= '(0,0)'::tid" in first.sql
        again = on_disk(s, TOTAL)
        assert again.metrics.cache_hit is True and again.metrics.bytes == 0
    folders = [p for p in store.iterdir() if p.name.endswith("-parts")]
    assert len(folders) == 1, list(store.iterdir())
    meta = json.loads((folders[0] / "meta.json").read_text())
    assert meta["rows"] == totals(tiny)["count"] and all(p is not None for p in meta["parts"])
    # A new process answers from the files, without loading.
    with fq.connect(tiny, config=disk_config()) as s:
        r = on_disk(s, TOTAL)
        assert r.metrics.bytes == 0 and r.df.to_dicts() == [totals(tiny)]


def pages_of(conn: psycopg.Connection[Any], where: str) -> list[int]:
    """The heap pages of the sales rows matching ``where``."""
    rows = conn.execute(f"SELECT (ctid::text::point)[0] FROM tf_sales WHERE {where}").fetchall()
    return [int(r[0]) for r in rows]


def partitions_of(starts: list[int], pages: list[int]) -> set[int]:
    """The partitions (by their first pages) holding these pages."""
    return {max(i for i, start in enumerate(starts) if start <= p) for p in pages}


def test_freshness_per_partition(tiny: str, store: Path) -> None:
    """Without change capture, the scan finds what changed, partition by partition."""
    with fq.connect(tiny, config=disk_config(change_capture=False)) as s:
        on_disk(s, TOTAL)
        parts = len(parts_of(s).table.parts)
        with psycopg.connect(tiny, autocommit=True) as conn:
            conn.execute(append_sales(30))
            appended = pages_of(conn, "id > 1000000")
        r = on_disk(s, TOTAL)
        synced = parts_of(s)
        assert r.df.to_dicts() == [totals(tiny)]
        # Appended rows land at the end of the table, or in free space an autovacuum found
        # in an earlier page: only the partitions they landed in get a segment.
        landed = partitions_of(synced.table.starts, appended)
        assert synced.reloaded == [] and synced.appended == sorted(landed)
        assert synced.rows == 30
        # An update of rows on the first pages reloads the first partition only.
        with psycopg.connect(tiny, autocommit=True) as conn:
            page0 = conn.execute(
                "SELECT count(*) FROM tf_sales WHERE ctid < '(1,0)'::tid"
            ).fetchone()[0]  # type: ignore[index]
            conn.execute("UPDATE tf_sales SET revenue = revenue + 1 WHERE ctid < '(1,0)'::tid")
        r = on_disk(s, TOTAL)
        synced = parts_of(s)
        assert r.df.to_dicts() == [totals(tiny)]
        assert 0 in synced.reloaded and parts - 1 not in synced.reloaded
        assert page0 <= synced.rows < totals(tiny)["count"] // 2
        # Rows written into free space of earlier pages (after a delete and VACUUM) are
        # appends to the partitions they land in, found from the first new row on.
        with psycopg.connect(tiny, autocommit=True) as conn:
            conn.execute("DELETE FROM tf_sales WHERE id % 2 = 0")
            conn.execute("VACUUM tf_sales")
        assert on_disk(s, TOTAL).df.to_dicts() == [totals(tiny)]
        with psycopg.connect(tiny, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO tf_sales SELECT id + 3000000, customer_id, product_id, occurred_at,"
                " revenue, quantity, cost, discount, dimensions, date_info FROM tf_sales"
                " ORDER BY id DESC LIMIT 200"
            )
            pages = pages_of(conn, "id > 3000000")
        assert on_disk(s, TOTAL).df.to_dicts() == [totals(tiny)]
        synced = parts_of(s)
        landed = partitions_of(synced.table.starts, pages)
        assert synced.reloaded == [] and set(synced.appended) == landed
        assert synced.rows == 200
        # A delete elsewhere, then a TRUNCATE (new files): still PostgreSQL's answer.
        with psycopg.connect(tiny, autocommit=True) as conn:
            conn.execute("DELETE FROM tf_sales WHERE id % 7 = 1")
        assert on_disk(s, TOTAL).df.to_dicts() == [totals(tiny)]
        with psycopg.connect(tiny, autocommit=True) as conn:
            conn.execute("TRUNCATE tf_sales")
        assert on_disk(s, TOTAL).df.to_dicts() == [{"count": 0, "revenue_sum": None}]


def test_a_table_beyond_the_store_budget_runs_on_postgresql(demo_dsn: str, store: Path) -> None:
    with fq.connect(demo_dsn, config=disk_config(store_size_mb=1)) as s:
        r = s.execute(TOTAL)
        assert r.backend == "postgres"
        assert "> the store's budget 1 MB" in r.reason
        assert r.df.to_dicts() == [totals(demo_dsn)]


def test_a_store_that_fills_during_a_load_keeps_answering_and_the_next_load_resumes(
    tiny: str, store: Path
) -> None:
    from fraiseql_nb.ops import progress

    cfg = {**disk_config(load_connections=1), "routing": {"background_loads": False}}
    with fq.connect(tiny, config=cfg) as s:  # the first query loads in the foreground
        column_store = plane_of(s, "arrow")._store

        def fill(what: str, done: int, total: int) -> None:
            if what == "partitions" and done == 1:
                column_store.budget = 1  # the disk is full from now on

        with (
            progress.listening(fill),
            pytest.warns(RuntimeWarning, match="loading public.tf_sales to disk stopped"),
        ):
            r = s.execute(TOTAL)
        assert (r.backend, r.df.to_dicts()) == ("postgres", [totals(tiny)])
        assert "store_size_mb" in r.reason
        kept = parts_of_disk(store)
        assert kept == 1
    with fq.connect(tiny, config=disk_config()) as s:
        r = on_disk(s, TOTAL)
        assert r.df.to_dicts() == [totals(tiny)]
        assert 0 not in parts_of(s).reloaded  # the complete partition was kept


def parts_of_disk(store: Path) -> int:
    folder = next(p for p in store.iterdir() if p.name.endswith("-parts"))
    meta = json.loads((folder / "meta.json").read_text())
    return sum(p is not None for p in meta["parts"])


def test_a_load_killed_half_way_resumes_from_its_complete_partitions(
    tiny: str, store: Path
) -> None:
    script = textwrap.dedent(
        f"""
        import os, signal
        import fraiseql_nb as fq
        from fraiseql_nb.ops import progress

        def listener(what, done, total):
            if what == "partitions" and done * 2 >= total:
                os.kill(os.getpid(), signal.SIGKILL)

        cfg = {{"arrow_backend": {{"memory_mb": 0, "load_connections": 1}}}}
        with fq.connect({tiny!r}, config=cfg) as s, progress.listening(listener):
            s.execute("{TOTAL}", backend="arrow")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert done.returncode == -9, done.stderr.decode()
    folder = next(p for p in store.iterdir() if p.name.endswith("-parts"))
    meta = json.loads((folder / "meta.json").read_text())
    complete = [p for p in meta["parts"] if p is not None]
    assert 0 < len(complete) < len(meta["parts"])
    kept = sum(p["rows"] for p in complete)
    with fq.connect(tiny, config=disk_config()) as s:
        r = on_disk(s, TOTAL)
        assert r.df.to_dicts() == [totals(tiny)]
        synced = parts_of(s)
        assert synced.rows == totals(tiny)["count"] - kept  # the missing partitions only
        assert synced.appended == []


def test_a_damaged_partition_is_loaded_again(tiny: str, store: Path) -> None:
    with fq.connect(tiny, config=disk_config()) as s:
        on_disk(s, TOTAL)
    folder = next(p for p in store.iterdir() if p.name.endswith("-parts"))
    segment = sorted(folder.glob("p0001-*.arrow"))[0]
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF
    segment.write_bytes(bytes(data))
    with fq.connect(tiny, config=disk_config()) as s:
        with pytest.warns(
            RuntimeWarning, match="partition 1 of public.tf_sales on disk is damaged"
        ):
            r = on_disk(s, TOTAL)
        assert r.df.to_dicts() == [totals(tiny)]
        assert parts_of(s).reloaded == [1]


def test_memory_and_connections_out_of_range_are_config_errors(tiny: str) -> None:
    for key, value in (("memory_mb", -1), ("load_connections", 65), ("load_connections", 1.5)):
        with pytest.raises(fq.ConfigError, match=f"arrow_backend.{key}"):
            fq.connect(tiny, config={"arrow_backend": {key: value}})


def test_rss_stays_within_the_budget_on_a_table_twenty_times_larger(
    scratch_dsn: str, store: Path
) -> None:
    """A subprocess loads and queries ~1.2M rows (≈ 120 MB of columns) with memory_mb = 5."""
    from fraiseql_nb.local import demo

    demo.load(scratch_dsn, demo.Counts(users=1000, products=50, orders=10, sales=1_200_000))
    script = textwrap.dedent(
        f"""
        import resource, json
        import fraiseql_nb as fq
        cfg = {{"arrow_backend": {{"memory_mb": 5}}}}
        with fq.connect({scratch_dsn!r}, config=cfg) as s:
            base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            r = s.execute("{{ sales_aggregate(groupBy: {{category: true, occurred_at_month: true}})"
                          " {{ category occurred_at_month count revenue_sum revenue_avg }} }}",
                          backend="arrow")
            r2 = s.execute("{{ sales_aggregate(where: {{quantity: {{gte: 2}}}}, groupBy: {{region: true}})"
                           " {{ region count cost_sum }} }}", backend="arrow")
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            print(json.dumps({{"base_kb": base, "peak_kb": peak, "storage": r.storage,
                              "loaded": r.metrics.bytes, "rows": r.df.height}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=300, env=dict(os.environ)
    )
    assert done.returncode == 0, done.stderr.decode()
    out = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert out["storage"] == "disk"
    assert out["loaded"] > 20 * 5 * 2**20  # the table's columns are 20x the budget
    grew_mb = (out["peak_kb"] - out["base_kb"]) / 1024
    print(f"RSS: {out}, grew {grew_mb:.0f} MB")
    assert grew_mb <= 5 + 300, out


PERCENTILES_IN_1_MB = [
    "{ sales_aggregate(groupBy: {customer_id: true}, orderBy: {customer_id: ASC}) {"
    " customer_id revenue_median revenue_p90 } }",
    "{ sales_aggregate { count revenue_median } }",
]


def test_percentiles_from_disk_stay_within_the_budget(demo_dsn: str, store: Path) -> None:
    """A subprocess loads the demo's sales, then answers a grouped median and p90 and a
    global median with memory_mb = 1 (fewer than their 100,000 values): PostgreSQL's
    answers, selected by ranges of value in a few scans, its RSS within the budget.

    The peak is the process's own (VmHWM, reset after the load where Linux lets it):
    ru_maxrss keeps the peak of the process that forked it (pytest's) across exec."""
    memory_mb = 1
    script = textwrap.dedent(
        f"""
        import json, re
        import fraiseql_nb as fq

        def kb(field):
            status = open("/proc/self/status").read()
            return int(re.search(field + r":\\s+(\\d+) kB", status).group(1))

        cfg = {{"arrow_backend": {{"memory_mb": {memory_mb}}}}}
        with fq.connect({demo_dsn!r}, config=cfg) as s:
            s.prefetch("sales", wait=True)
            try:  # the peak from here on: the queries' (else the load's counts too)
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")
            except OSError:
                pass
            base = kb("VmRSS")
            answers = []
            for query in {PERCENTILES_IN_1_MB!r}:
                r = s.execute(query, backend="arrow")
                answers.append({{"storage": r.storage, "rows": r.df.rows(),
                                 "scans": s._planes["arrow"]._disk.last_passes}})
            print(json.dumps({{"base_kb": base, "peak_kb": kb("VmHWM"), "answers": answers}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=300, env=dict(os.environ)
    )
    assert done.returncode == 0, done.stderr.decode()
    out = json.loads(done.stdout.decode().strip().splitlines()[-1])
    with fq.connect(demo_dsn) as s:
        for query, answer in zip(PERCENTILES_IN_1_MB, out["answers"], strict=True):
            pg = s.execute(query, backend="postgres").df
            assert answer["storage"] == "disk", answer
            assert answer["scans"] >= 3, answer  # the first scan, a histogram, the gathering
            got = pl.DataFrame(answer["rows"], schema=pg.schema, orient="row")
            assert_same(pg, got, query)
    # The bound: memory_mb for the histograms and gathered values, plus 300 MB for what
    # is not the query's to bound: Polars' streaming engine (its thread pool and morsel
    # buffers: ~130 MB measured on a 5M-row scan), the memory-mapped segment files the
    # scans touch (counted in RSS) — as the test above allows.
    grew_mb = (out["peak_kb"] - out["base_kb"]) / 1024
    print(f"RSS: {out['base_kb'] // 1024} MB after the load, grew {grew_mb:.0f} MB")
    assert grew_mb <= memory_mb + 300, out


def test_unconstrained_numerics_on_disk_are_exact_or_declined(
    scratch_dsn: str, store: Path
) -> None:
    """numeric without a scale is stored as text and read at the table's scale; NaN or a
    value beyond 38 digits cannot be a decimal: declined, PostgreSQL answers."""
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE tf_m (id bigint, amount numeric, region text);"
            " INSERT INTO tf_m SELECT g, g / 8.0, 'r' || (g % 3) FROM generate_series(1, 300) g;"
            " INSERT INTO tf_m VALUES (1000, 123456789012.123456789, 'r0')"
        )
    query = (
        "{ m_aggregate(groupBy: {region: true}, orderBy: {amount_sum: DESC}) {"
        " region count amount_sum amount_max } }"
    )
    with fq.connect(scratch_dsn, config=disk_config()) as s:
        assert_same(s.execute(query, backend="postgres").df, on_disk(s, query).df, query)
        with psycopg.connect(scratch_dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO tf_m VALUES (2000, 'NaN', 'r1')")
        with pytest.raises(fq.QueryError, match="amount from disk, which holds NaN or Infinity"):
            s.execute(query, backend="arrow")
        auto = s.execute(query)
        assert auto.backend == "postgres" and "NaN or Infinity" in auto.reason


def test_exact_sums_that_differ_in_the_13th_digit_sort_as_postgresql(
    scratch_dsn: str, store: Path
) -> None:
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE tf_e (id bigint, amount numeric(16, 2), region text);"
            " INSERT INTO tf_e VALUES (1, 123456789012.34, 'a'), (2, 123456789012.35, 'b')"
        )
    query = "{ e_aggregate(groupBy: {region: true}, orderBy: {amount_sum: DESC}, limit: 1) { region amount_sum } }"
    with fq.connect(scratch_dsn, config=disk_config()) as s:
        pg = s.execute(query, backend="postgres").df
        assert pg["region"].to_list() == ["b"]
        assert on_disk(s, query).df.to_dicts() == pg.to_dicts()
    with fq.connect(scratch_dsn) as s:  # in memory too
        memory = s.execute(query, backend="arrow")
        assert memory.storage == "" and memory.df.to_dicts() == pg.to_dicts()


def test_the_automatic_store_budget_counts_what_the_store_holds(demo_dsn: str, store: Path) -> None:
    """Half of (free + held): a session's budget does not shrink by what the last stored."""
    import shutil

    from fraiseql_nb.planes.arrow.store import ColumnStore, auto_budget

    with fq.connect(demo_dsn, config=disk_config()) as s:
        s.prefetch("sales", wait=True)
    held = ColumnStore(store, 1).entries()
    assert held and sum(e.bytes for e in held) > 0
    total = sum(e.bytes for e in held)
    budget = ColumnStore(store, 0).budget
    assert budget == auto_budget(store, held=total)
    free = shutil.disk_usage(store).free
    if free // 2 > 2**30:  # above the 1 GB floor, what is held shows
        assert budget > auto_budget(store)
    assert abs(budget - max((free + total) // 2, 2**30)) < 2**20  # free moves a little
    assert auto_budget(store, held=2**40) >= 2**39  # what is held counts, free or not


def test_a_partition_file_left_by_a_dead_writer_is_swept(tiny: str, store: Path) -> None:
    """A ``.tmp-*`` file untouched for an hour is removed when the table's meta is next
    written; a fresh one (a load running elsewhere) is kept."""
    import os
    import time

    with fq.connect(tiny, config=disk_config()) as s:
        s.prefetch("sales", wait=True)
    folder = next(store.glob("*-parts"))
    stale, fresh = folder / ".tmp-p0000-dead.arrow", folder / ".tmp-p0001-live.arrow"
    stale.write_bytes(b"x" * 100)
    fresh.write_bytes(b"y" * 100)
    old = time.time() - 7200
    os.utime(stale, (old, old))
    with psycopg.connect(tiny, autocommit=True) as conn:
        conn.execute("UPDATE tf_sales SET quantity = quantity WHERE id = 1")  # partition 0 changes
    try:
        with fq.connect(tiny, config=disk_config()) as s:
            r = s.execute("{ sales_aggregate { count } }", backend="arrow")
            assert r.storage == "disk"  # type: ignore[union-attr]
        assert not stale.exists()
        assert fresh.exists()
    finally:
        fresh.unlink(missing_ok=True)


@pytest.mark.parametrize(
    ("name", "query", "variables", "statement"), AGGS, ids=[r[0] for r in AGGS]
)
def test_fraiseql_forms_from_disk_answer_as_postgresql(
    disk_session: fq.Session, demo_dsn: str, name: str, query: str, variables: Any, statement: str
) -> None:
    """The compatibility corpus's aggregates (tests/planes/fraiseql_corpus.py), from disk."""
    result = disk_session.execute(query, variables, backend="arrow")
    assert isinstance(result, fq.Result) and (result.backend, result.storage) == ("arrow", "disk")
    same_rows(result.df.rows(), expected(demo_dsn, statement), name)


@pytest.mark.parametrize(
    ("name", "query", "variables", "statement"), GROUPS, ids=[r[0] for r in GROUPS]
)
def test_after_the_groups_from_disk_answers_as_postgresql(
    disk_session: fq.Session, demo_dsn: str, name: str, query: str, variables: Any, statement: str
) -> None:
    """Calcs, windows over groups, share, QUALIFY and limitPerGroup
    (tests/planes/groups_corpus.py), the groups computed from disk."""
    result = disk_session.execute(query, variables, backend="arrow")
    assert isinstance(result, fq.Result) and (result.backend, result.storage) == ("arrow", "disk")
    same_rows(result.df.rows(), expected(demo_dsn, statement), name)


def test_a_table_this_process_synced_reads_back_as_the_same_files(tiny: str, store: Path) -> None:
    """What this process holds of a table and what another reads from its meta compare
    equal (times' bounds are tuples here, lists through JSON): else every damaged segment
    would look like another process's sync, and never be loaded again."""
    from fraiseql_nb.planes.arrow.disktable import read_disk_table
    from fraiseql_nb.planes.arrow.disktables import same_files

    with fq.connect(tiny, config=disk_config(change_capture=False)) as s:
        on_disk(s, TOTAL)
        with psycopg.connect(tiny, autocommit=True) as conn:
            conn.execute(append_sales(10))
        on_disk(s, TOTAL)  # appended by this process
        disk = plane_of(s, "arrow")._disk
        table = disk.stored_as(plane_of(s, "arrow")._catalog.identity(s.schema.fact("sales")), {})
        held = disk._get(table)
        assert held is not None and held.stats()["times"]
        again = read_disk_table(table.key, held.folder)
        assert again is not None and same_files(held, again)
        folder = held.folder
        segment = sorted(folder.glob("p0000-*.arrow"))[0]
        data = bytearray(segment.read_bytes())
        data[len(data) // 2] ^= 0xFF
        segment.write_bytes(bytes(data))
        with pytest.warns(
            RuntimeWarning, match="partition 0 of public.tf_sales on disk is damaged"
        ):
            r = on_disk(s, TOTAL)
        assert r.df.to_dicts() == [totals(tiny)]
        assert parts_of(s).reloaded == [0]


def test_text_of_few_values_first_and_many_after_stays_within_the_categories(
    scratch_dsn: str, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Text of few values in a table's first rows is stored as Categoricals, whose values
    Polars keeps for the process's life: a file past the per-file cap (``tag``: unique
    values after row 20,000) or the load past its cap (``shop``: few values per block of
    rows, new ones in every block) keeps the column as text, every file is read as text,
    and the answers are PostgreSQL's."""
    from fraiseql_nb.planes.arrow import partfile

    monkeypatch.setattr(partfile, "MAX_FILE_CATEGORIES", 500)
    monkeypatch.setattr(partfile, "MAX_LOAD_CATEGORIES", 60)
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE tf_c (id bigint, amount numeric(12, 2), tag text, shop text);"
            " INSERT INTO tf_c SELECT g, g / 100.0,"
            "  CASE WHEN g <= 20000 THEN 'a' || (g % 5) ELSE 't' || g END,"
            "  's' || (g / 3000) || '_' || (g % 5)"
            " FROM generate_series(1, 60000) g"
        )
    queries = [
        "{ c_aggregate(groupBy: {shop: true}, orderBy: {shop: ASC}) { shop count amount_sum } }",
        '{ c_aggregate(where: {tag: {in: ["a1", "t30000", "t59999"]}}, groupBy: {tag: true})'
        " { tag count amount_sum } }",
        "{ c_aggregate(groupBy: {tag: true}, orderBy: {count: DESC, tag: ASC}, limit: 7)"
        " { tag count } }",
    ]
    with fq.connect(scratch_dsn, config=disk_config(load_connections=2)) as s:
        for query in queries:
            assert_same(s.execute(query, backend="postgres").df, on_disk(s, query).df, query)
    [meta_path] = store.glob("*-parts/meta.json")
    meta = json.loads(meta_path.read_text())
    assert set(meta["categorical"]) == {"tag", "shop"}
    segments = meta["segments"]
    assert len(segments) >= 4
    plain = {name for seg in segments for name in seg.get("plain", ())}
    assert plain == {"tag", "shop"}
    kept = 0
    for seg in segments:
        schema = pl.scan_ipc(meta_path.parent / seg["file"]).collect_schema()
        for name in ("tag", "shop"):
            stored_as = pl.String if name in seg.get("plain", ()) else pl.Categorical
            assert schema[name] == stored_as, (seg["file"], name, schema[name])
        if "shop" not in seg.get("plain", ()):
            values = pl.read_ipc(meta_path.parent / seg["file"], columns=["shop"])["shop"]
            kept += values.n_unique()
    assert 0 < kept <= 60  # the load's categories of shop, within its cap


def test_percentiles_of_too_many_groups_for_the_budget_run_on_postgresql(
    disk_session: fq.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Percentiles of so many groups that the 1 MB budget lets a scan hold few of them
    would take more scans than the plane allows (there: rows read): declined, before those
    scans, and PostgreSQL answers under auto."""
    from fraiseql_nb.planes.arrow import diskcompute

    query = (
        "{ sales_aggregate(groupBy: {customer_id: true}) {"
        " customer_id revenue_median revenue_p90 cost_p25 } }"
    )
    on_disk(disk_session, TOTAL)
    monkeypatch.setattr(diskcompute, "PERCENTILE_ROWS_READ", 1)  # 16 scans at most
    with pytest.raises(fq.QueryError, match=r"percentiles of [\d,]+ groups within 1 MB"):
        disk_session.execute(query, backend="arrow")
    auto = disk_session.execute(query)
    assert auto.backend == "postgres" and "percentiles of" in auto.reason
    monkeypatch.undo()
    assert_same(auto.df, on_disk(disk_session, query).df, query)  # allowed: 100,000 rows


def test_categories_count_each_value_once_per_load() -> None:
    """A value seen in an earlier file of the load adds nothing to Polars' categories: the
    same few values in every file never reach the load's cap; new ones in every file do."""
    import pyarrow as pa

    from fraiseql_nb.planes.arrow.partfile import MAX_LOAD_CATEGORIES, Categories

    same = Categories()
    values = pa.array([f"v{i}" for i in range(1000)])
    assert all(same.take("c", values) for _ in range(2 * MAX_LOAD_CATEGORIES // 1000))
    fresh = Categories()
    taken = [fresh.take("c", pa.array([f"f{n}-{i}" for i in range(60_000)])) for n in range(6)]
    assert taken == [True, True, True, True, False, False]  # 300,000 > 262,144: off for good
    assert not Categories().take("c", pa.array([str(i) for i in range(70_000)]))  # one file
