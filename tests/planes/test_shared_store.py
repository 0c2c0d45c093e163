"""Several processes on one store (every notebook of a user on one machine): a table beyond
memory_mb is loaded and synced by one process at a time, the others wait for it and read
what it wrote, and a process killed while loading is taken over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from fraiseql_nb.local import demo
from tests.conftest import run_cli

SALES = 30_000
BATCH = 40  # rows each append of the writer adds, each of revenue 2.00
QUERY = "{ sales_aggregate { count revenue_sum } }"


@pytest.fixture
def shared(scratch_dsn: str) -> str:
    """A database of its own with 30,000 sales (several partitions at memory_mb 0)."""
    demo.load(scratch_dsn, demo.Counts(users=200, products=20, orders=50, sales=SALES))
    return scratch_dsn


def state(dsn: str) -> tuple[int, Decimal]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*), sum(revenue) FROM tf_sales").fetchone()
    assert row is not None
    return int(row[0]), Decimal(row[1])


CHILD = textwrap.dedent(
    """
    import json, os, sys, time
    import fraiseql_nb as fq

    QUERY, barrier = sys.argv[4], sys.argv[5]
    dsn, capture, seconds = sys.argv[1], sys.argv[2] == "1", float(sys.argv[3])
    cfg = {"arrow_backend": {"memory_mb": 0, "load_connections": 2,
                             "change_capture": capture}}
    out = {"answers": [], "refusals": []}
    with fq.connect(dsn, config=cfg) as s:
        open(f"{barrier}/{os.getpid()}", "w").close()
        while len(os.listdir(barrier)) < 3:  # the three loads start together
            time.sleep(0.01)
        s.prefetch("sales", wait=True)
        synced = s._planes["arrow"]._disk.last
        out["prefetched_rows"] = synced.rows if synced is not None else 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                r = s.execute(QUERY, backend="arrow")
            except Exception as exc:
                out["refusals"].append(f"{type(exc).__name__}: {exc}")
                continue
            if (r.backend, r.storage) != ("arrow", "disk"):
                out["refusals"].append(f"{r.backend} {r.storage}: {r.reason}")
                continue
            row = r.df.to_dicts()[0]
            out["answers"].append([row["count"], str(row["revenue_sum"])])
    print(json.dumps(out))
    """
)


@pytest.fixture
def writer(shared: str) -> Iterator[tuple[int, Decimal, list[int]]]:
    """Appends BATCH rows of revenue 2.00 every 50 ms, and now and then rewrites rows of the
    first pages without changing them (new row versions: their partition is loaded again,
    its files replaced) — while the test runs. Yields the table before it, and the batches
    written so far."""
    before = state(shared)
    stop = threading.Event()
    written = [0]

    def run() -> None:
        with psycopg.connect(shared, autocommit=True) as conn:
            offset = 10_000_000
            while not stop.is_set():
                conn.execute(
                    "INSERT INTO tf_sales SELECT id + %s, customer_id, product_id, occurred_at,"
                    " 2.00, quantity, cost, discount, dimensions, date_info FROM tf_sales"
                    " WHERE id <= %s",
                    (offset, BATCH),
                )
                offset += 10_000_000
                written[0] += 1
                if written[0] % 10 == 0:
                    conn.execute("UPDATE tf_sales SET quantity = quantity WHERE id <= 100")
                time.sleep(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield before[0], before[1], written
    stop.set()
    thread.join(timeout=30)


def test_three_processes_loading_one_table_while_it_is_written_answer_exactly(
    shared: str, store: Path, writer: tuple[int, Decimal, list[int]], tmp_path: Path
) -> None:
    """Three processes load the same table beyond memory at once (loads racing) while rows
    are appended and rewritten: every answer is PostgreSQL's at some instant, none is
    refused (a process never sees another's files as damage)."""
    base_count, base_sum, written = writer
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, shared, capture, "12", QUERY, str(barrier)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for capture in ("1", "0", "0")
    ]
    outs = []
    for child in children:
        stdout, stderr = child.communicate(timeout=240)
        assert child.returncode == 0, stderr[-3000:]
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    final_count, _ = state(shared)
    # One process loaded the table; the others waited for it and read its files (then
    # loaded at most what changed since).
    full = [out["prefetched_rows"] for out in outs if out["prefetched_rows"] > SALES // 2]
    assert len(full) == 1, [out["prefetched_rows"] for out in outs]
    answers = 0
    for out in outs:
        assert out["refusals"] == []
        assert len(out["answers"]) >= 3
        for count, total in out["answers"]:
            batches, rest = divmod(count - base_count, BATCH)
            # The table at some instant: whole batches of the writer, each adding 80.00.
            assert rest == 0 and batches >= 0, (count, base_count)
            assert count <= final_count
            assert (
                Decimal(total).quantize(Decimal("0.01"))
                == base_sum + Decimal("2.00") * BATCH * batches
            ), (count, total)
            answers += 1
    assert answers >= 9 and written[0] >= 10


KILLED = textwrap.dedent(
    """
    import sys, time
    import fraiseql_nb as fq
    from fraiseql_nb.ops import progress

    dsn, marker, QUERY = sys.argv[1], sys.argv[2], sys.argv[3]

    def listener(what, done, total):
        if what == "partitions" and done == 1:
            open(marker, "w").close()
            time.sleep(600)  # holding the table's lock, half-way through its load

    cfg = {"arrow_backend": {"memory_mb": 0, "load_connections": 1}}
    with fq.connect(dsn, config=cfg) as s, progress.listening(listener):
        s.execute(QUERY, backend="arrow")
    """
)

WAITER = textwrap.dedent(
    """
    import json, sys, time
    import fraiseql_nb as fq

    QUERY = sys.argv[2]
    cfg = {"arrow_backend": {"memory_mb": 0, "load_connections": 1}}
    with fq.connect(sys.argv[1], config=cfg) as s:
        r = s.execute(QUERY, backend="arrow")
        synced = s._planes["arrow"]._disk.last
        print(json.dumps({"at": time.time(), "row": r.df.to_dicts()[0], "storage": r.storage,
                          "loaded": synced.rows if synced else 0}))
    """
)


def test_a_process_killed_while_loading_is_taken_over(
    shared: str, store: Path, tmp_path: Path
) -> None:
    """A process holding a table's load is SIGKILLed half-way: another process waiting for
    the table takes over within seconds, keeps the partitions completed, and answers
    exactly; ``cache status`` names the holder while it holds the load."""
    marker = tmp_path / "holding"
    holder = subprocess.Popen(
        [sys.executable, "-c", KILLED, shared, str(marker), QUERY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert holder.poll() is None, holder.communicate()[1][-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.1)
        waiter = subprocess.Popen(
            [sys.executable, "-c", WAITER, shared, QUERY],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        status = run_cli("cache", "status", env={"FRAISEQL_ARROW_BACKEND_STORE_DIR": str(store)})
        assert status.returncode == 0, status.stderr
        assert f"held by process {holder.pid}, loading public.tf_sales" in status.stdout, (
            status.stdout
        )
        time.sleep(3)  # the waiter is waiting for the lock, not answering elsewhere
        assert waiter.poll() is None, waiter.communicate()
        killed_at = time.time()
        os.kill(holder.pid, signal.SIGKILL)
        stdout, stderr = waiter.communicate(timeout=120)
        assert waiter.returncode == 0, stderr[-3000:]
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()
    out = json.loads(stdout.strip().splitlines()[-1])
    count, total = state(shared)
    assert out["storage"] == "disk"
    assert out["row"]["count"] == count
    assert Decimal(str(out["row"]["revenue_sum"])).quantize(Decimal("0.01")) == total
    assert 0 < out["loaded"] < count  # the killed process's complete partitions were kept
    # Taken over at once (the kernel released the lock), then the rest loaded: seconds.
    assert out["at"] - killed_at < 30
    assert (
        "held by"
        not in run_cli(
            "cache", "status", env={"FRAISEQL_ARROW_BACKEND_STORE_DIR": str(store)}
        ).stdout
    )


def stored_key(s: object) -> str:
    """The key of the files (and lock) of this session's tf_sales on the store."""
    plane = s._planes["arrow"]  # type: ignore[attr-defined]
    table = plane._catalog.identity(s.schema.fact("sales"))  # type: ignore[attr-defined]
    return str(plane._disk.stored_as(table, {}).key)


HOLD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from fraiseql_nb.planes.arrow.tablelock import table_lock

    with table_lock(Path(sys.argv[1]), sys.argv[2], "loading public.tf_sales", wait_s=0):
        print("held", flush=True)
        time.sleep(120)
    """
)


def test_an_auto_query_does_not_wait_for_a_load_that_waits_for_another_process(
    shared: str, store: Path
) -> None:
    """A table on disk changed; this process's background sync of it waits for another
    process holding it; an ``auto`` query of that table meanwhile answers on PostgreSQL
    within seconds (it waited on the sync's thread lock until that process let go)."""
    import fraiseql_nb as fq

    cfg = {"arrow_backend": {"memory_mb": 0, "change_capture": False}}
    with fq.connect(shared, config=cfg) as s:
        plane = s._planes["arrow"]
        s.prefetch("sales", wait=True)
        key = stored_key(s)
        with psycopg.connect(shared, autocommit=True) as conn:
            conn.execute("UPDATE tf_sales SET quantity = quantity + 1 WHERE id % 100 = 0")
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(store), key], stdout=subprocess.PIPE, text=True
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            s.prefetch("sales")  # in the background: it takes the table and waits
            deadline = time.monotonic() + 30
            while not plane.loading() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert plane.loading(), "the background load did not start"
            started = time.monotonic()
            r = s.execute(QUERY)
            took = time.monotonic() - started
            assert r.backend == "postgres"
            assert took < 15, took
            assert plane.loading()  # still waiting for the other process
            assert r.df.to_dicts()[0]["count"] == state(shared)[0]
        finally:
            holder.kill()
            holder.wait()


def test_cache_clear_says_which_table_it_left_in_use(shared: str, store: Path) -> None:
    """A table another process is loading is not removed under it, and ``cache clear``
    says so (and fails) rather than reporting success; once released it is removed."""
    import fraiseql_nb as fq

    env = {"FRAISEQL_ARROW_BACKEND_STORE_DIR": str(store)}
    with fq.connect(shared, config={"arrow_backend": {"memory_mb": 0}}) as s:
        s.prefetch("sales", wait=True)
        key = stored_key(s)
    stored = [p for p in store.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(stored) == 1
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(store), key], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        kept = run_cli("cache", "clear", env=env)
        assert kept.returncode == 1
        assert kept.stdout.strip() == "removed 0 stored tables"
        assert "left public.tf_sales: another process is loading or syncing it" in kept.stderr
        assert stored[0].is_dir()
        with (
            fq.connect(shared, config={"arrow_backend": {"memory_mb": 0}}) as s,
            pytest.warns(RuntimeWarning, match=r"public\.tf_sales stay on the store: a load"),
        ):
            s.refresh("sales")  # says so too
        assert stored[0].is_dir()
    finally:
        holder.kill()
        holder.wait()
    cleared = run_cli("cache", "clear", env=env)
    assert (cleared.returncode, cleared.stdout.strip(), cleared.stderr) == (
        0,
        "removed 1 stored table",
        "",
    )
    assert not stored[0].exists()


def test_two_column_sets_of_one_table_are_stored_side_by_side(shared: str, store: Path) -> None:
    """Two notebooks loading other columns of one table (``exact_decimals`` on and off)
    keep a copy each on the store: neither replaces the other's files, so after a change
    each reads the rows appended, not the whole table again (they did, turn by turn)."""
    import fraiseql_nb as fq

    def cfg(exact: bool) -> dict[str, object]:
        # Without change capture the appended rows are read by the sync, from the files.
        return {"arrow_backend": {"memory_mb": 0, "exact_decimals": exact, "change_capture": False}}

    with fq.connect(shared, config=cfg(True)) as a, fq.connect(shared, config=cfg(False)) as b:
        first = [s.execute(QUERY, backend="arrow") for s in (a, b)]
        assert [r.metrics.cache_hit for r in first] == [False, False]  # each loaded
        full = min(r.metrics.bytes for r in first)
        for offset in (10_000_000, 20_000_000):
            with psycopg.connect(shared, autocommit=True) as conn:
                conn.execute(
                    "INSERT INTO tf_sales SELECT id + %s, customer_id, product_id, occurred_at,"
                    " 2.00, quantity, cost, discount, dimensions, date_info FROM tf_sales"
                    " WHERE id <= %s",
                    (offset, BATCH),
                )
            again = [s.execute(QUERY, backend="arrow") for s in (a, b)]
            assert [r.storage for r in again] == ["disk", "disk"]
            loaded = [r.metrics.bytes for r in again]
            assert all(0 < n < full / 20 for n in loaded), (full, loaded)
        count, total = state(shared)
        for r in again:
            assert r.df["count"].to_list() == [count]
            assert r.df["revenue_sum"][0] == pytest.approx(float(total), rel=1e-12)
    folders = [p for p in store.iterdir() if p.is_dir() and p.name.endswith("-parts")]
    assert len(folders) == 2
    status = run_cli("cache", "status", env={"FRAISEQL_ARROW_BACKEND_STORE_DIR": str(store)})
    assert status.stdout.count("public.tf_sales") == 2, status.stdout
