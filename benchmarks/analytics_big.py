"""Out-of-core benchmark: a fact table many times the arrow plane's memory budget.

A table of --rows rows (default 20M: numeric, integer, timestamp and jsonb
dimension columns, generated in the database) is queried with the 10-query
exploration session of benchmarks/analytics.py, with ``[arrow_backend]
memory_mb`` set to --memory-mb (default 64) so that the table is answered from
its partitions on disk. In the same run:

  copy floor   COPY (the plane's load SELECT) TO STDOUT (FORMAT binary), discarded:
               the least a load of those columns can cost, on one connection
  load         the plane loading the table by partition to disk (load_connections 2)
  postgres     PostgreSQL's own SQL for the 10 queries
  arrow disk   the 10 queries on the arrow plane, from disk (warm: loaded)
  duckdb       DuckDB over a Parquet export of the same columns
  append       the first query after appending 1 % new rows (exact, incremental)

The plane runs in a child process, which reports its peak RSS.

    python benchmarks/analytics_big.py [--dsn DSN] [--rows 20000000] [--memory-mb 64]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from analytics import EXPLORATION, Spec, graphql, pg_sql

import fraiseql_nb as fq
from fraiseql_nb.local import demo, embedded

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
STORE_ENV = "FRAISEQL_ARROW_BACKEND_STORE_DIR"
FLAT = {"category": "category", "region": "region", "channel": "channel"}

CREATE = """
DROP TABLE IF EXISTS tf_sales;
DROP TABLE IF EXISTS bench_dims;
CREATE TABLE bench_dims AS
SELECT row_number() OVER () - 1 AS k,
       jsonb_build_object('category', c, 'region', r, 'channel', ch,
                          'product', jsonb_build_object('brand', b)) AS dimensions
FROM unnest(ARRAY['books','garden','sports','toys','beauty','fashion','electronics','food',
                  'music','health']) AS c,
     unnest(ARRAY['EU','NA','APAC','LATAM','MEA']) AS r,
     unnest(ARRAY['web','store','app','phone']) AS ch,
     unnest(ARRAY['Acme','Globex','Initech','Umbrella','Hooli','Stark','Wayne','Wonka',
                  'Tyrell','Cyberdyne']) AS b;
CREATE TABLE tf_sales (
    id          bigint NOT NULL,
    customer_id integer NOT NULL,
    occurred_at timestamptz NOT NULL,
    revenue     numeric(12, 2) NOT NULL,
    quantity    integer NOT NULL,
    cost        numeric(12, 2) NOT NULL,
    discount    numeric(4, 2),
    dimensions  jsonb NOT NULL
);
INSERT INTO tf_sales
SELECT g, 1 + (hashint8(g) & 65535)::int,
       timestamptz '2023-01-01' + ((hashint8(g + 1) & 1073741823) %% 94608000) * interval '1 second',
       ((hashint8(g + 2) & 1048575) / 100.0)::numeric(12, 2),
       1 + (hashint8(g + 3) & 7)::int,
       ((hashint8(g + 4) & 524287) / 100.0)::numeric(12, 2),
       CASE WHEN g %% 5 = 0 THEN NULL ELSE ((hashint8(g + 5) & 3) * 0.05)::numeric(4, 2) END,
       d.dimensions
FROM generate_series(1, %(rows)s) AS g
JOIN bench_dims AS d ON d.k = (hashint8(g + 6) & 2147483647) %% 2000;
ALTER TABLE tf_sales ADD PRIMARY KEY (id);
"""


def ensure_table(dsn: str, rows: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        have = conn.execute("SELECT to_regclass('tf_sales') IS NOT NULL").fetchone()[0]  # type: ignore[index]
        if have:
            n = conn.execute("SELECT count(*) FROM tf_sales").fetchone()[0]  # type: ignore[index]
            if n == rows:
                return
        print(f"  generating {rows:,} rows", file=sys.stderr)
        started = time.perf_counter()
        for statement in CREATE.split(";\n"):
            if statement.strip():
                if "%(rows)s" in statement:
                    conn.execute(statement, {"rows": rows})  # type: ignore[arg-type]
                else:
                    conn.execute(statement)  # type: ignore[arg-type]
        conn.execute("VACUUM (ANALYZE) tf_sales")
        print(f"  generated in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def flat_sql(spec: Spec, table: str) -> str:
    """The query over the flat columns of the Parquet export (DuckDB)."""
    keys, aggs, where = spec
    cols = []
    for k in keys:
        cols.append("date_trunc('month', occurred_at) AS month" if k == "month" else k)
    for fn, m in aggs:
        cols.append(
            "count(*)" if fn == "count" else "median(revenue)" if fn == "median" else f"{fn}({m})"
        )
    text = f"SELECT {', '.join(cols)} FROM {table}"
    if where:
        text += f" WHERE {where}"
    if keys:
        text += " GROUP BY " + ", ".join(str(i + 1) for i in range(len(keys)))
    return text


def copy_floor(dsn: str, statement: str) -> tuple[float, int]:
    started = time.perf_counter()
    nbytes = 0
    with (
        psycopg.connect(dsn) as conn,
        conn.cursor() as cur,
        cur.copy(f"COPY ({statement}) TO STDOUT (FORMAT binary)") as copy,
    ):
        for block in copy:
            nbytes += len(block)
    return time.perf_counter() - started, nbytes


def child(dsn: str, memory_mb: int) -> None:
    """The plane's part, in a process of its own (its peak RSS is the measure)."""
    config = {"arrow_backend": {"memory_mb": memory_mb, "load_connections": 2}}
    out: dict[str, Any] = {}
    with fq.connect(dsn, config=config) as s:
        out["rss_connected_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        s.prefetch("sales", wait=True)
        out["load_s"] = time.perf_counter() - started
        synced = s._planes["arrow"]._disk.last
        out["partitions"] = len(synced.table.parts) if synced else 0
        out["loaded_bytes"] = synced.bytes if synced else 0
        passes = []
        for _ in range(2):
            each = []
            for spec in EXPLORATION:
                t = time.perf_counter()
                r = s.execute(graphql(spec), backend="arrow")
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                each.append({"s": time.perf_counter() - t, "storage": r.storage, "peak_mb": peak})
            passes.append(each)
        out["first_pass"], out["warm"] = passes
        # The first query after a 1 % append: exact, one check and the new rows.
        with psycopg.connect(dsn, autocommit=True) as conn:
            n = conn.execute("SELECT count(*) FROM tf_sales").fetchone()[0]  # type: ignore[index]
            conn.execute(
                "INSERT INTO tf_sales SELECT id + 1000000000, customer_id, occurred_at, revenue,"
                f" quantity, cost, discount, dimensions FROM tf_sales ORDER BY id LIMIT {n // 100}"
            )
            t = time.perf_counter()
            r = s.execute(graphql(EXPLORATION[0]), backend="arrow")
            out["append_first_query_s"] = time.perf_counter() - t
            out["append_loaded_rows"] = s._planes["arrow"]._disk.last.rows
            t = time.perf_counter()
            conn.execute(pg_sql(EXPLORATION[0])).fetchall()
            out["append_postgres_s"] = time.perf_counter() - t
            conn.execute("DELETE FROM tf_sales WHERE id > 1000000000")
            conn.execute("VACUUM tf_sales")
        out["store"] = str(
            s._planes["arrow"]._store.folder(
                s._planes["arrow"]._catalog.identity(s.schema.fact("sales")).key
            )
        )  # type: ignore[arg-type]
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def duckdb_parquet(folder: str, work: Path) -> dict[str, Any]:
    import duckdb
    import polars as pl

    path = work / "tf_sales.parquet"
    started = time.perf_counter()
    files = sorted(str(p) for p in Path(folder).glob("p*.arrow"))
    lf = pl.concat([pl.scan_ipc(f) for f in files])
    lf.select(
        "occurred_at",
        "revenue",
        "quantity",
        "cost",
        "discount",
        "category",
        "region",
        "channel",
        "product_brand",
    ).sink_parquet(path)
    export_s = time.perf_counter() - started
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    table = f"read_parquet('{path}')"
    each = []
    for spec in EXPLORATION:
        runs = []
        for _ in range(2):
            t = time.perf_counter()
            con.execute(flat_sql(spec, table)).fetchall()
            runs.append(time.perf_counter() - t)
        each.append(min(runs))
    return {"export_s": export_s, "each_s": each, "bytes": path.stat().st_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=os.environ.get("FRAISEQL_DSN"))
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--memory-mb", type=int, default=64)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dsn is None:
        embedded.start()
        args.dsn = demo.ensure_database(embedded.dsn(), "fraiseql_bench_big")
    if args.child:
        child(args.dsn, args.memory_mb)
        return
    ensure_table(args.dsn, args.rows)
    work = Path(tempfile.mkdtemp(prefix="fqbig-"))
    env = {**os.environ, STORE_ENV: str(work / "store")}

    with fq.connect(args.dsn) as s:
        statement = s._planes["arrow"].load_statement(s.schema.fact("sales"), fq_loadable(s))  # type: ignore[arg-type]
    print("  copy floor", file=sys.stderr)
    floor_s, floor_bytes = copy_floor(args.dsn, statement)

    print("  postgres", file=sys.stderr)
    with psycopg.connect(args.dsn) as conn:
        pg_each = []
        for spec in EXPLORATION:
            t = time.perf_counter()
            conn.execute(pg_sql(spec)).fetchall()
            pg_each.append(time.perf_counter() - t)

    print("  arrow plane (child process)", file=sys.stderr)
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--dsn",
            args.dsn,
            "--memory-mb",
            str(args.memory_mb),
            "--child",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode:
        raise SystemExit(done.stderr)
    plane = json.loads(done.stdout.strip().splitlines()[-1])

    print("  duckdb over parquet", file=sys.stderr)
    duck = duckdb_parquet(plane["store"], work)

    warm = [q["s"] for q in plane["warm"]]
    pg_total, warm_total, duck_total = sum(pg_each), sum(warm), sum(duck["each_s"])
    speedups = [p / w for p, w in zip(pg_each, warm, strict=True)]
    result = {
        "rows": args.rows,
        "memory_mb": args.memory_mb,
        "loaded_mb": plane["loaded_bytes"] / 2**20,
        "partitions": plane["partitions"],
        "copy_floor_s": floor_s,
        "copy_floor_mb": floor_bytes / 2**20,
        "load_s": plane["load_s"],
        "load_vs_floor": plane["load_s"] / floor_s,
        "peak_rss_mb": plane["peak_rss_mb"],
        "peak_rss_each_mb": [q["peak_mb"] for q in plane["first_pass"]],
        "rss_connected_mb": plane["rss_connected_mb"],
        "postgres_each_s": pg_each,
        "arrow_disk_each_s": warm,
        "arrow_first_pass_s": [q["s"] for q in plane["first_pass"]],
        "duckdb_each_s": duck["each_s"],
        "duckdb_export_s": duck["export_s"],
        "postgres_total_s": pg_total,
        "arrow_disk_total_s": warm_total,
        "duckdb_total_s": duck_total,
        "median_speedup_vs_postgres": statistics.median(speedups),
        "arrow_vs_duckdb_total": warm_total / duck_total,
        "append_first_query_s": plane["append_first_query_s"],
        "append_postgres_s": plane["append_postgres_s"],
        "append_vs_postgres": plane["append_first_query_s"] / plane["append_postgres_s"],
        "append_loaded_rows": plane["append_loaded_rows"],
        "storages": sorted({q["storage"] for q in plane["warm"]}),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "analytics_big.json").write_text(json.dumps(result, indent=1))
    print(
        f"\n{args.rows:,} rows · memory_mb {args.memory_mb} · {result['loaded_mb']:,.0f} MB of"
        f" columns on disk in {plane['partitions']} partitions\n"
    )
    print("| step | seconds | ratio |")
    print("|---|---:|---:|")
    print(f"| COPY floor (one connection) | {floor_s:.1f} | 1.00× |")
    print(
        f"| load by partition (2 connections) | {plane['load_s']:.1f} | {result['load_vs_floor']:.2f}× floor |"
    )
    # ru_maxrss only grows: the peak before the first median query is that of the load
    # and the queries without percentiles before it.
    first_median = next(
        i for i, spec in enumerate(EXPLORATION) if any(fn == "median" for fn, _ in spec[1])
    )
    before = plane["first_pass"][first_median - 1]["peak_mb"]
    result["peak_rss_without_percentiles_mb"] = before
    print(
        f"| peak RSS: load, queries without percentiles | {before:.0f} MB | budget {args.memory_mb} MB + {before - args.memory_mb:.0f} MB |"
    )
    print(
        f"| peak RSS: with the median (groups in passes) | {plane['peak_rss_mb']:.0f} MB | budget {args.memory_mb} MB + {plane['peak_rss_mb'] - args.memory_mb:.0f} MB |"
    )
    print("\n| query | PostgreSQL s | arrow (from disk) s | DuckDB/Parquet s | PG / arrow |")
    print("|---|---:|---:|---:|---:|")
    for i, spec in enumerate(EXPLORATION):
        print(
            f"| {i + 1}. {graphql(spec)[2:60]}… | {pg_each[i]:.2f} | {warm[i]:.3f} | {duck['each_s'][i]:.3f} | {speedups[i]:.1f}× |"
        )
    print(
        f"| **session** | {pg_total:.1f} | {warm_total:.2f} | {duck_total:.2f} | median {result['median_speedup_vs_postgres']:.1f}× |"
    )
    print(
        f"\narrow / DuckDB total: {result['arrow_vs_duckdb_total']:.2f}×;"
        f" first query after a 1 % append: {plane['append_first_query_s']:.2f} s"
        f" = {result['append_vs_postgres']:.2f}× PostgreSQL ({plane['append_loaded_rows']:,} rows loaded)"
    )
    (RESULTS / "analytics_big.json").write_text(json.dumps(result, indent=1))
    chart(result)


def fq_loadable(s: fq.Session) -> list[str]:
    from fraiseql_nb.sql.facts import loadable_columns

    return loadable_columns(s.schema.fact("sales"))  # type: ignore[arg-type]


def chart(result: dict[str, Any]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(8, 4))
    n = len(result["postgres_each_s"])
    xs = range(n)
    for offset, key, label in (
        (-0.27, "postgres_each_s", "PostgreSQL"),
        (0.0, "arrow_disk_each_s", "arrow (from disk)"),
        (0.27, "duckdb_each_s", "DuckDB over Parquet"),
    ):
        ax.bar([x + offset for x in xs], result[key], width=0.27, label=label)
    ax.set_yscale("log")
    ax.set_xticks(list(xs), [str(i + 1) for i in xs])
    ax.set_xlabel("query of the exploration session")
    ax.set_ylabel("seconds (log)")
    ax.set_title(f"{result['rows']:,} rows, memory_mb {result['memory_mb']}")
    ax.legend(loc="lower left", fontsize="small", framealpha=0.9)
    fig.tight_layout()
    fig.savefig(RESULTS / "analytics_big.png", dpi=110)


if __name__ == "__main__":
    main()
