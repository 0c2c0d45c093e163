"""Row plane benchmark: streaming and DataFrames of entity documents, against baselines.

Variants, each run in its own process so its peak memory is its own, on
the first N documents of the ``large`` demo ``v_user`` (N = 10K, 100K, 1M):

  (a) psycopg ``fetchall()`` of ``SELECT data`` — the naive baseline
  (b) a bare ``cursor.stream(size=256)`` loop over our SQL, no work per row — the driver floor
  (c) ``COPY (our SQL) TO STDOUT`` read and discarded — the server's limit
  (d) ``Session.stream()`` — dicts, constant memory
  (e) ``Session.execute(...).df`` — a Polars DataFrame

Figures: wall time, rows/s, time to first row, peak RSS growth over the
process's RSS before the query. Prints a markdown table, writes
benchmarks/results/rows.json and rows.png.

    python benchmarks/rows.py [--sizes 10000,100000,1000000] [--dsn DSN]
    python benchmarks/rows.py --small [--repeat 40]   # small and filtered queries

``--small`` runs the "small and filtered" section (benchmarks/rows_small.py):
``s.execute`` against its own SQL run raw and hand-written SQL, per query.

Without --dsn (or $FRAISEQL_DSN) the large demo dataset is loaded into the
embedded server first if it is not there (about 35 s).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
QUERY = "{ users(limit: %d) { id name email status age score created_at address { city country zip } tags } }"
VARIANTS = {
    "a": "fetchall() of SELECT data (naive)",
    "b": "bare cursor.stream() (driver floor)",
    "c": "COPY TO STDOUT, discarded (server limit)",
    "d": "Session.stream()",
    "e": "Session.execute().df",
}


def rss_mb() -> float:
    """Peak RSS of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_variant(variant: str, dsn: str, n: int) -> dict[str, Any]:
    """Runs in a child process: one variant, one size."""
    import psycopg

    import fraiseql_nb as fq
    from fraiseql_nb.query import parse_query
    from fraiseql_nb.sql import Params, compile_row_query

    session = fq.connect(dsn)
    conn = psycopg.connect(dsn, autocommit=True)
    (total,) = conn.execute("SELECT count(*) FROM tb_user").fetchone()
    # The whole view when N covers it; else its first N documents (by id, as paging orders).
    query = QUERY % n if n < total else QUERY.replace("(limit: %d)", "")
    q = parse_query(query, session.schema).queries[0]
    entity = session.schema.entity("users")
    params = Params(literal=True)
    our_sql = compile_row_query(q, entity, params, as_text=True)  # type: ignore[arg-type]
    our_sql_text = our_sql.as_string(conn)
    # Warm the server's cache of the view and the client's imports.
    conn.execute("SELECT count(*) FROM (SELECT data FROM v_user LIMIT %s) x", (n,)).fetchone()
    list(session.stream(QUERY % 10))
    session.execute(QUERY % 10)  # first use of Polars in a process costs ~0.1 s of setup
    base = rss_mb()
    base_now = current_rss_mb()
    start = time.perf_counter()
    first: float | None = None
    rows = 0
    if variant == "a":
        cur = conn.execute("SELECT data FROM v_user ORDER BY id LIMIT %s", (n,))
        result = cur.fetchall()
        first = time.perf_counter()
        rows = len(result)
    elif variant == "b":
        for _ in conn.cursor().stream(our_sql_text, size=256):
            if first is None:
                first = time.perf_counter()
            rows += 1
    elif variant == "c":
        with conn.cursor().copy(f"COPY ({our_sql_text}) TO STDOUT") as copy:
            for _ in copy:
                if first is None:
                    first = time.perf_counter()
                rows += 1
    elif variant == "d":
        for _ in session.stream(query):
            if first is None:
                first = time.perf_counter()
            rows += 1
    elif variant == "e":
        result = session.execute(query)
        rows = result.df.height  # type: ignore[union-attr]
        first = start + result.metrics.ttfr_ms / 1e3  # type: ignore[union-attr]
    wall = time.perf_counter() - start
    growth = max(rss_mb() - base, 0.0) if rss_mb() > base else 0.0
    session.close()
    return {
        "variant": variant,
        "rows": rows,
        "wall_s": round(wall, 3),
        "rows_per_s": round(rows / wall),
        "ttfr_ms": round(((first or time.perf_counter()) - start) * 1e3, 1),
        "peak_rss_growth_mb": round(growth, 1),
        "rss_before_mb": round(base_now, 1),
    }


def ensure_large(dsn: str | None) -> str:
    if dsn:
        return dsn
    from fraiseql_nb.local import demo

    counts = demo.SCALES["large"]
    target = demo.resolve_target(counts)
    report = demo.load(target, counts, if_missing=True)
    if not report.skipped:
        print(f"loaded the large demo dataset in {report.seconds:.1f} s", file=sys.stderr)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--variants", default="abcde")
    parser.add_argument("--dsn", default=os.environ.get("FRAISEQL_DSN"))
    parser.add_argument("--child", nargs=3, metavar=("VARIANT", "DSN", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--small", action="store_true", help="small and filtered queries")
    args, rest = parser.parse_known_args()
    if args.small:
        sys.path.insert(0, str(HERE))
        import rows_small

        sys.argv = [sys.argv[0], *rest, *(["--dsn", args.dsn] if args.dsn else [])]
        rows_small.main()
        return
    if args.child:
        variant, dsn, n = args.child
        print(json.dumps(run_variant(variant, dsn, int(n))))
        return
    dsn = ensure_large(args.dsn)
    sizes = [int(s) for s in args.sizes.split(",")]
    results: list[dict[str, Any]] = []
    for n in sizes:
        for v in args.variants:
            out = subprocess.run(
                [sys.executable, __file__, "--child", v, dsn, str(n)],
                capture_output=True,
                text=True,
                check=True,
            )
            row = json.loads(out.stdout.strip().splitlines()[-1])
            row["size"] = n
            results.append(row)
            print(f"  {n:>9,} {v}: {row['wall_s']} s", file=sys.stderr)
    print("| docs | variant | wall (s) | rows/s | first row (ms) | peak RSS growth (MB) |")
    print("|---:|---|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['size']:,} | ({r['variant']}) {VARIANTS[r['variant']]} | {r['wall_s']} "
            f"| {r['rows_per_s']:,} | {r['ttfr_ms']} | {r['peak_rss_growth_mb']} |"
        )
    by = {(r["size"], r["variant"]): r for r in results}
    print("\nRatios (same run):")
    for n in sizes:
        if all((n, v) in by for v in "abcde"):
            a, b, c, d, e = (by[(n, v)] for v in "abcde")
            print(
                f"- {n:,} docs: (d) throughput / (b) = {d['rows_per_s'] / b['rows_per_s']:.2f}; "
                f"(a) time / (e) time = {a['wall_s'] / e['wall_s']:.2f}; "
                f"(e) time / (c) time = {e['wall_s'] / c['wall_s']:.2f}; "
                f"(d) first row {d['ttfr_ms']} ms; (d) RSS growth {d['peak_rss_growth_mb']} MB "
                f"vs (a) {a['peak_rss_growth_mb']} MB"
            )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "rows.json").write_text(
        json.dumps(
            {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": results},
            indent=2,
        )
        + "\n"
    )
    _chart(results, sizes)


def _chart(results: list[dict[str, Any]], sizes: list[int]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no chart)", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.15
    for i, v in enumerate("abcde"):
        xs = [j + i * width for j in range(len(sizes))]
        ys = [
            next((r["rows_per_s"] for r in results if r["size"] == n and r["variant"] == v), 0)
            for n in sizes
        ]
        ax.bar(xs, ys, width, label=f"({v}) {VARIANTS[v]}")
    ax.set_xticks([j + 2 * width for j in range(len(sizes))], [f"{n:,} docs" for n in sizes])
    ax.set_ylabel("documents / s")
    ax.set_title("Row plane throughput (higher is better)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "rows.png", dpi=110)
    print(f"wrote {RESULTS / 'rows.png'}", file=sys.stderr)


if __name__ == "__main__":
    main()
