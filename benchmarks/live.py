"""The arrow plane on a table receiving writes: change capture against the scan, and
against PostgreSQL's own SQL, measured in the same run.

A fact table of ``--rows`` rows (default 1M; nullable and nested dimensions) gets
a write every 0.5 s (200 appended rows and 3 updated ones) while an analyst runs
an aggregate every 0.5 s under ``auto``; each of the analyst's queries is also
run with ``backend="postgres"`` right after, as the baseline. Four phases: each
way of keeping loaded rows exact (``change_capture`` on, then off), with the table
in memory and from disk (``memory_mb`` = 8: the table is beyond it). Also
measured: the first query after appending 1 % of the rows, the writer's time per
write with and without the session's slot, and the WAL the slot held at most.

Needs a server with ``wal_level = logical``: by default an embedded one of its
own in ``$FRAISEQL_HOME`` (a fresh one is made so).

Prints a markdown table, writes benchmarks/results/live.json.

    python benchmarks/live.py [--dsn DSN] [--rows N] [--seconds S]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

import fraiseql_nb as fq
from fraiseql_nb.local import demo, embedded

HERE = Path(__file__).resolve().parent

SETUP = """
DROP TABLE IF EXISTS tf_live;
CREATE TABLE tf_live (
    id bigint PRIMARY KEY, customer_id bigint NOT NULL, occurred_at timestamptz NOT NULL,
    revenue numeric(12,2) NOT NULL, quantity integer NOT NULL, discount numeric(4,2),
    dimensions jsonb NOT NULL);
INSERT INTO tf_live
SELECT g, g % 5000, '2024-01-01'::timestamptz + g * interval '30 seconds',
       ((g::bigint * 7919) % 100000) / 100.0, 1 + g % 9,
       CASE WHEN g % 4 = 0 THEN NULL ELSE (g % 30) / 100.0 END,
       jsonb_build_object(
         'region', CASE WHEN g % 17 = 0 THEN NULL ELSE (ARRAY['EU','NA','APAC','LATAM'])[1 + g % 4] END,
         'channel', (ARRAY['web','store','mobile'])[1 + g % 3],
         'product', jsonb_build_object('category', (ARRAY['books','toys','garden','food','tools'])[1 + g % 5],
                                       'brand', 'b' || (g % 40)))
FROM generate_series(1, %(rows)s) AS g;
ANALYZE tf_live;
"""

QUERY = (
    "{ live_aggregate(groupBy: {region: true, product_category: true},"
    " orderBy: [{revenue_sum: DESC}]) { region product_category count revenue_sum"
    " quantity_sum discount_avg } }"
)


def write(conn: psycopg.Connection[Any], step: int, base: int) -> float:
    """200 appended rows and 3 updated ones, in one transaction; its seconds."""
    started = time.perf_counter()
    with conn.transaction():
        low = base + step * 200
        conn.execute(
            "INSERT INTO tf_live SELECT g, g %% 5000, now(), (g %% 1000) / 10.0, 1 + g %% 9, NULL,"
            " jsonb_build_object('region', 'EU', 'channel', 'web', 'product',"
            " jsonb_build_object('category', 'books', 'brand', 'b1'))"
            " FROM generate_series(%s, %s) AS g",
            (low + 1, low + 200),
        )
        conn.execute(
            "UPDATE tf_live SET revenue = revenue + 1 WHERE id IN (%s, %s, %s)",
            (1 + step * 37 % 1000, 2 + step * 53 % 1000, 3 + step * 71 % 1000),
        )
    return time.perf_counter() - started


def retained(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT COALESCE(max(pg_current_wal_lsn() - confirmed_flush_lsn), 0)::bigint"
            " FROM pg_replication_slots WHERE slot_name LIKE 'fraiseql_nb_%'"
        ).fetchone()
    return int(row[0]) if row else 0


def phase(dsn: str, capture: bool, seconds: float, base: int, disk: bool = False) -> dict[str, Any]:
    """One session: in memory (the store off), or from disk (``memory_mb`` = 8, a store of
    its own), its loaded rows kept exact by capture or by the scan."""
    arrow: dict[str, Any] = {"change_capture": capture}
    if disk:
        store = tempfile.mkdtemp(prefix="fq-live-store-")
        arrow |= {"memory_mb": 8, "store_dir": store}
    else:
        arrow |= {"store_enabled": False}
    out: dict[str, Any] = {}
    with (
        fq.connect(dsn, config={"arrow_backend": arrow}) as s,
        psycopg.connect(dsn, autocommit=True) as w,
    ):
        s.prefetch("live", wait=True)
        s.execute(QUERY, backend="arrow")
        stop = threading.Event()
        writes: list[float] = []
        wal: list[int] = []

        def writer() -> None:
            step = 0
            while not stop.wait(0.5):
                writes.append(write(w, step, base))
                wal.append(retained(dsn))
                step += 1

        thread = threading.Thread(target=writer)
        thread.start()
        ours, theirs, planes = [], [], []
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:
            t = time.perf_counter()
            r = s.execute(QUERY)
            ours.append(time.perf_counter() - t)
            planes.append(r.backend)
            t = time.perf_counter()
            s.execute(QUERY, backend="postgres")
            theirs.append(time.perf_counter() - t)
            time.sleep(0.5)
        stop.set()
        thread.join()
        out["queries"] = len(ours)
        out["on arrow %"] = 100.0 * planes.count("arrow") / len(planes)
        out["session / PostgreSQL"] = sum(ours) / sum(theirs)
        out["session ms (median)"] = statistics.median(ours) * 1e3
        out["PostgreSQL ms (median)"] = statistics.median(theirs) * 1e3
        out["write ms (median)"] = statistics.median(writes) * 1e3
        # The first reads of freshly written pages set hint bits, which a server with data
        # checksums writes to WAL: the maximum is that once; the median is the steady state.
        out["WAL held by the slot, MB (median)"] = statistics.median(wal or [0]) / 1e6
        out["WAL held by the slot, MB (max)"] = max(wal or [0]) / 1e6
        out["freshness"] = s.health()["backends"]["arrow"]["freshness"].get("public.tf_live")
        # The first query after appending 1 % of the rows.
        n = int(s.execute("{ live_aggregate { count } }", backend="postgres").df["count"][0])
        w.execute(
            "INSERT INTO tf_live SELECT id + %s, customer_id, now(), revenue, quantity, discount,"
            " dimensions FROM tf_live WHERE id <= %s",
            (base * 10, n // 100),
        )
        t = time.perf_counter()
        s.execute(QUERY, backend="arrow")
        first = time.perf_counter() - t
        t = time.perf_counter()
        s.execute(QUERY, backend="postgres")
        out["first after 1 % append / PostgreSQL"] = first / (time.perf_counter() - t)
        out["first after 1 % append, ms"] = first * 1e3
    if disk:
        shutil.rmtree(arrow["store_dir"], ignore_errors=True)
    return out


def writer_alone(dsn: str, capture: bool | None, base: int, writes: int = 60) -> float:
    """The writer's median ms per write with no analyst querying: no session (None), or a
    session holding the table loaded and followed (its slot read every few seconds)."""
    config = {"arrow_backend": {"change_capture": bool(capture), "store_enabled": False}}
    with contextlib.ExitStack() as stack, psycopg.connect(dsn, autocommit=True) as w:
        if capture is not None:
            s = stack.enter_context(fq.connect(dsn, config=config))
            s.prefetch("live", wait=True)
            s.execute(QUERY, backend="arrow")
        times = []
        for step in range(writes):
            times.append(write(w, step, base))
            time.sleep(0.1)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", help="a database on a server with wal_level = logical")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    dsn = args.dsn or demo.ensure_database(embedded.start().dsn(), "fq_bench_live")
    with psycopg.connect(dsn, autocommit=True) as conn:
        level = conn.execute("SHOW wal_level").fetchone()
        assert level == ("logical",), f"wal_level is {level}: change capture needs logical"
        conn.execute(SETUP.replace("%(rows)s", str(args.rows)))  # type: ignore[arg-type]
    writer = {
        "alone": writer_alone(dsn, None, 5_000_000),
        "with a capture session": writer_alone(dsn, True, 6_000_000),
        "with a scan session": writer_alone(dsn, False, 7_000_000),
    }
    results = {
        "capture": phase(dsn, True, args.seconds, 10_000_000),
        "scan": phase(dsn, False, args.seconds, 20_000_000),
        "capture, from disk": phase(dsn, True, args.seconds, 30_000_000, disk=True),
        "scan, from disk": phase(dsn, False, args.seconds, 40_000_000, disk=True),
    }
    names = list(results)
    keys = [k for k in results["capture"] if k != "freshness"]
    print(f"| {args.rows:,} rows, a write every 0.5 s | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for key in keys:
        print(f"| {key} | " + " | ".join(f"{results[n][key]:,.2f}" for n in names) + " |")
    print("| freshness | " + " | ".join(str(results[n]["freshness"]) for n in names) + " |")
    print("\n| the writer alone, no queries | write ms (median) |\n|---|---:|")
    for name, ms in writer.items():
        print(f"| {name} | {ms:.2f} |")
    results["writer"] = writer  # type: ignore[assignment]
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "live.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
