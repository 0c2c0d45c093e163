"""What a runaway query costs the kernel, with and without the result budget.

Each case runs in a fresh Python process against an endless entity view (or a
large finite one) and reports how long until the query stopped, how many rows
it had received, and the process's peak memory (``ru_maxrss``). The baseline is
the same fetch of a finite 2M-document view with the budget far above it, in the
same run: the budget's own cost per fetched batch.

Prints a markdown table, writes benchmarks/results/runaway.json.

    python benchmarks/runaway.py [--dsn DSN]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from fraiseql_nb.local import demo, embedded

HERE = Path(__file__).resolve().parent

SETUP = """
CREATE OR REPLACE VIEW v_endless AS
  SELECT g::bigint AS id, jsonb_build_object('id', g, 'pad', repeat('x', 100),
         'tag', CASE WHEN g % 7 = 0 THEN NULL ELSE 'tag-' || (g % 100) END,
         'nested', jsonb_build_object('a', g % 3, 'b', NULL)) AS data
  FROM (SELECT generate_series(1, 1000000000) AS g) AS s;
CREATE OR REPLACE VIEW v_finite AS
  SELECT g::bigint AS id, jsonb_build_object('id', g, 'pad', repeat('x', 100),
         'tag', CASE WHEN g % 7 = 0 THEN NULL ELSE 'tag-' || (g % 100) END,
         'nested', jsonb_build_object('a', g % 3, 'b', NULL)) AS data
  FROM (SELECT generate_series(1, 2000000) AS g) AS s;
"""

CHILD = """
import json, resource, sys, time
import fraiseql_nb as fq
dsn, query, mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = fq.connect(dsn, sample_size=20, config={"limits": {"max_result_mb": mb}})
started = time.perf_counter()
outcome, rows = "answered", 0
try:
    rows = s.execute(query).df.height
except fq.QueryError as exc:
    outcome, rows = "stopped", getattr(exc, "rows", 0)
took = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"outcome": outcome, "rows": rows, "seconds": took, "peak_mb": peak}))
"""

CASES = [
    ("endless, limit 256 MB", "{ endlesses { id pad tag nested { a b } } }", 256),
    ("endless, limit 1024 MB", "{ endlesses { id pad tag nested { a b } } }", 1024),
    ("2M documents, limit 256 MB", "{ finites { id pad tag nested { a b } } }", 256),
    (
        "2M documents, limit 100,000 MB (baseline)",
        "{ finites { id pad tag nested { a b } } }",
        100_000,
    ),
]


def run_case(dsn: str, query: str, mb: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, dsn, query, str(mb)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", help="a database to create the views in (default: embedded)")
    args = parser.parse_args()
    dsn = args.dsn or demo.ensure_database(embedded.start().dsn(), "fq_bench_runaway")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SETUP)
    rows = []
    for name, query, mb in CASES:
        result = run_case(dsn, query, mb)
        result.update(case=name, limit_mb=mb)
        rows.append(result)
        print(f"{name}: {result}", file=sys.stderr)
    print("| case | outcome | rows | seconds | peak RSS (MB) |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['case']} | {r['outcome']} | {r['rows']:,} | {r['seconds']:.2f}"
            f" | {r['peak_mb']:,.0f} |"
        )
    out = HERE / "results" / "runaway.json"
    out.write_text(json.dumps({"when": time.strftime("%Y-%m-%d"), "cases": rows}, indent=2))


if __name__ == "__main__":
    main()
