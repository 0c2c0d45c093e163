"""Reliability benchmark: the figures behind docs/reliability.md.

  fuzz        the suite's fuzz test (tests/test_fuzz.py) at a larger scale, random
              seeds: inputs tried and outcomes by type
  concurrent  N threads sharing one session for T seconds, a mix of row queries,
              aggregates (auto, arrow, postgres) and windows, each answer checked
              against the answer computed alone before the run
  faults      faults injected while queries run: server processes terminated,
              statement timeouts, queries cancelled, a fact table dropped, a fact
              table appended to — each must end in a right answer or a FraiseQLError,
              and the session must answer correctly afterwards
  http        hostile requests against `fraiseql-nb serve`: how fast each is refused

Prints markdown tables, writes benchmarks/results/reliability.json.

    python benchmarks/reliability.py [--dsn DSN] [--threads 16] [--seconds 30] [--fuzz-scale 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg

import fraiseql_nb as fq
from fraiseql_nb.local import demo, embedded

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"

MIX = [
    ("{ users(limit: 50, orderBy: [{id: ASC}]) { id name age } }", "auto"),
    (
        '{ users(where: {status: {eq: "active"}}, limit: 20, orderBy: [{id: DESC}]) { id email } }',
        "wire",
    ),
    (
        "{ sales_aggregate(groupBy: {region: true}, orderBy: [{region: ASC}]) { region count revenue_sum } }",
        "auto",
    ),
    (
        "{ sales_aggregate(groupBy: {category: true}, orderBy: [{category: ASC}]) { category revenue_avg quantity_sum } }",
        "arrow",
    ),
    ("{ sales_aggregate(where: {revenue: {gt: 500}}) { count revenue_max } }", "postgres"),
    (
        "{ sales_window(where: {customer_id: {lte: 3}}, orderBy: [{id: ASC}]) { id rn: row_number s: running_sum(field: revenue) } }",
        "auto",
    ),
]


def _frame(result: Any) -> Any:
    return result.df.with_columns()  # a copy to compare


def _same(a: Any, b: Any) -> bool:
    if a.schema != b.schema or a.height != b.height:
        return False
    for name in a.columns:
        for x, y in zip(a[name].to_list(), b[name].to_list(), strict=True):
            if isinstance(x, float) and isinstance(y, float):
                if abs(x - y) > 1e-9 * max(1.0, abs(x)):
                    return False
            elif x != y:
                return False
    return True


def concurrent(dsn: str, threads: int, seconds: float) -> dict[str, Any]:
    with fq.connect(dsn) as session:
        expected = {(q, b): session.execute(q, backend=b).df for q, b in MIX}
        counts: Counter[str] = Counter()
        latencies: list[float] = []
        lock = threading.Lock()
        stop = time.monotonic() + seconds

        def worker(seed: int) -> None:
            rng = random.Random(seed)
            while time.monotonic() < stop:
                q, b = rng.choice(MIX)
                started = time.perf_counter()
                try:
                    got = session.execute(q, backend=b).df
                    outcome = "right" if _same(got, expected[(q, b)]) else "WRONG"
                except fq.FraiseQLError as exc:
                    outcome = type(exc).__name__
                except Exception as exc:  # noqa: BLE001 - counted: must be zero
                    outcome = f"FOREIGN {type(exc).__name__}"
                with lock:
                    counts[outcome] += 1
                    latencies.append(time.perf_counter() - started)

        pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    latencies.sort()
    return {
        "threads": threads,
        "seconds": seconds,
        "queries": sum(counts.values()),
        "outcomes": dict(counts),
        "p50_ms": round(latencies[len(latencies) // 2] * 1e3, 1) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1e3, 1) if latencies else None,
    }


def faults(server: str) -> list[dict[str, Any]]:
    dsn = demo.ensure_database(server, "fq_reliability_faults")
    demo.load(dsn, demo.Counts(users=500, products=50, orders=100, sales=50_000))
    rows: list[dict[str, Any]] = []
    count = "{ sales_aggregate { count } }"

    def outcome(fn: Any) -> str:
        try:
            fn()
            return "answered"
        except fq.FraiseQLError as exc:
            return type(exc).__name__
        except Exception as exc:  # noqa: BLE001 - must not happen
            return f"FOREIGN {type(exc).__name__}: {exc}"

    def recovered(session: fq.Session, want: int) -> bool:
        return all(
            session.execute(count, backend=b).df["count"][0] == want
            for b in ("postgres", "arrow", "auto")
        )

    def terminate(role_filter: str = "fraiseql-nb%") -> None:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name LIKE %s AND pid <> pg_backend_pid()",
                (role_filter,),
            )

    with fq.connect(dsn) as s:
        want = 50_000
        for name, action in [
            ("server processes terminated between queries", lambda: terminate()),
            (
                "server processes terminated during a query",
                lambda: threading.Timer(0.05, terminate).start(),
            ),
        ]:
            for i in range(10):
                action()
                got = outcome(
                    lambda: s.execute(
                        "{ sales_window(orderBy: [{revenue: DESC}]) { id n: row_number } }",
                        backend="postgres",
                    )
                )
                rows.append({"fault": name, "try": i, "outcome": got, "recovered": None})
            rows[-1]["recovered"] = recovered(s, want)
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(
                "INSERT INTO tf_sales SELECT id + 10000000, customer_id, product_id, occurred_at,"
                " revenue, quantity, cost, discount, dimensions, date_info FROM tf_sales"
                " WHERE id <= 500"
            )
        rows.append(
            {
                "fault": "500 rows appended under a loaded copy",
                "try": 0,
                "outcome": outcome(lambda: s.execute(count, backend="arrow")),
                "recovered": recovered(s, want + 500),
            }
        )
    with fq.connect(dsn, config={"connections": {"statement_timeout_ms": 100}}) as s:
        rows.append(
            {
                "fault": "statement timeout (100 ms) on a slow window",
                "try": 0,
                "outcome": outcome(
                    lambda: s.execute(
                        "{ sales_window(orderBy: [{revenue: DESC}]) { id n: row_number } }",
                        backend="postgres",
                    )
                ),
                "recovered": s.execute(count, backend="postgres").df["count"][0] == 50_500,
            }
        )
    with fq.connect(dsn) as s:
        s.execute(count, backend="arrow")
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute("ALTER TABLE tf_sales RENAME TO tf_sales_moved")
        for backend in ("arrow", "auto", "postgres"):
            rows.append(
                {
                    "fault": f"fact table renamed away ({backend})",
                    "try": 0,
                    "outcome": outcome(lambda b=backend: s.execute(count, backend=b)),
                    "recovered": None,
                }
            )
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute("ALTER TABLE tf_sales_moved RENAME TO tf_sales")
        rows[-1]["recovered"] = recovered(s, 50_500)
    return rows


def http(dsn: str) -> list[dict[str, Any]]:
    sys.path.insert(0, str(REPO))
    from tests.test_http_limits import graphql, serve

    out = []
    cases = {
        "10,000 root aliases": {
            "query": "{ "
            + " ".join(f"a{i}: users(limit: 1) {{ id }}" for i in range(10_000))
            + " }"
        },
        "2,000,000 values in one list": b'{"query": "query ($i: [ID!]) { users(where: {id: {in: $i}}) { id } }", "variables": {"i": ['
        + b",".join([b"1"] * 2_000_000)
        + b"]}}",
        "a 50 MB body": {"query": "{ users { id } }", "pad": "x" * 50_000_000},
        "100,000 nested [": b"[" * 100_000,
        "a fragment bomb": {
            "query": "fragment A on User { a: id b: id c: id d: id e: id f: id g: id h: id i: id j: id }"
            " fragment B on User { " + "...A " * 10 + "} fragment C on User { " + "...B " * 10 + "}"
            " fragment D on User { " + "...C " * 10 + "} { users(limit: 1) { ...D } }"
        },
    }
    with tempfile.TemporaryDirectory() as tmp, serve(dsn, Path(tmp)) as served:
        for name, payload in cases.items():
            started = time.perf_counter()
            try:
                status, _ = graphql(served, payload)
            except OSError as exc:  # the server closed the connection early
                status = f"closed ({type(exc).__name__})"
            out.append(
                {
                    "request": name,
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1e3, 1),
                }
            )
    return out


def fuzz(scale: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "fuzz.json"
        env = {**os.environ, "FRAISEQL_FUZZ_SCALE": str(scale), "FRAISEQL_FUZZ_REPORT": str(report)}
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_fuzz.py"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        data = json.loads(report.read_text()) if report.exists() else {}
    data["passed"] = proc.returncode == 0
    data["seconds"] = round(time.perf_counter() - started, 1)
    if proc.returncode:
        data["output"] = proc.stdout[-3000:]
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="a database with the small demo (default: the embedded one)")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--fuzz-scale", type=float, default=5)
    args = parser.parse_args()
    server = embedded.start().dsn()
    dsn = args.dsn or demo.ensure_database(server, "fraiseql_demo_small")
    demo.load(dsn, demo.SCALES["small"], if_missing=True)
    results: dict[str, Any] = {}

    print(f"## fuzz (scale {args.fuzz_scale})\n")
    results["fuzz"] = f = fuzz(args.fuzz_scale)
    total = sum(f.get("outcomes", {}).values())
    print(f"{total:,} inputs in {f['seconds']} s, passed: {f['passed']}\n")
    print("| outcome | count |\n|---|---:|")
    for k, v in sorted(f.get("outcomes", {}).items()):
        print(f"| {k} | {v:,} |")
    for k, v in f.get("agreements", {}).items():
        print(f"| {k} (arrow = postgres) | {v:,} |")

    print(f"\n## concurrent ({args.threads} threads × {args.seconds:g} s, one session)\n")
    results["concurrent"] = c = concurrent(dsn, args.threads, args.seconds)
    print("| queries | outcomes | p50 ms | p99 ms |\n|---:|---|---:|---:|")
    print(f"| {c['queries']:,} | {c['outcomes']} | {c['p50_ms']} | {c['p99_ms']} |")

    print("\n## faults\n")
    results["faults"] = rows = faults(server)
    summary: dict[str, Counter[str]] = {}
    recovered: dict[str, Any] = {}
    for row in rows:
        summary.setdefault(row["fault"], Counter())[row["outcome"]] += 1
        if row["recovered"] is not None:
            recovered[row["fault"]] = row["recovered"]
    print("| fault | outcomes | right answers afterwards |\n|---|---|---|")
    for fault, counts in summary.items():
        print(f"| {fault} | {dict(counts)} | {recovered.get(fault, '—')} |")

    print("\n## hostile HTTP requests (fraiseql-nb serve, defaults)\n")
    results["http"] = h = http(dsn)
    print("| request | status | ms |\n|---|---|---:|")
    for row in h:
        print(f"| {row['request']} | {row['status']} | {row['ms']} |")

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "reliability.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
