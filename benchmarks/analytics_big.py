"""Out-of-core benchmark: a fact table many times the arrow plane's memory budget.

A table of --rows rows (default 20M: numeric, integer, timestamp and jsonb
dimension columns, generated in the database) is queried with the 10-query
exploration session of benchmarks/analytics.py and two more queries (a selective
filter on an id range and one month, where the partitions' statistics let the
plane skip; a p90 by region), with ``[arrow_backend] memory_mb`` set to each of
--memory-mb (default 16,256) so that the table is answered from its partitions
on disk. In the same run:

  copy floor   COPY (the plane's load SELECT) TO STDOUT (FORMAT binary), discarded:
               the least a load of those columns can cost, on one connection
  postgres     PostgreSQL's own SQL for the 12 queries
  per budget   a child process with a fresh store loads the table by partition to
               disk (load_connections 2), then runs the session twice; per query:
               warm time, peak RSS (VmHWM, reset before each query), partitions read
  duckdb       DuckDB over a Parquet export of the same columns, and over a native
               DuckDB table created from it (best of 2 each); numeric columns as
               tf_sales declares them (--duckdb-decimals plane: as the plane keeps them)
  append       the first query after appending 1 % new rows (exact, incremental),
               at the smallest budget
  two at once  two processes over one fresh store (the smallest budget), loading
               at the same time, each running the session twice: errors, refusals,
               warm and wall times, and whether their answers agree

Prints markdown tables, writes benchmarks/results/analytics_big.json and
analytics_big.png.

    python benchmarks/analytics_big.py [--dsn DSN] [--rows 20000000] [--memory-mb 16,256]
        [--duckdb-decimals declared|plane]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from analytics import EXPLORATION, Spec, graphql, pg_sql

import fraiseql_nb as fq
from fraiseql_nb.local import demo, embedded

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
STORE_ENV = "FRAISEQL_ARROW_BACKEND_STORE_DIR"
RSS_TARGET_MB = 300  # peak RSS at most the budget plus this
#: The columns of the Parquet export (the plane's partition files hold them flat).
EXPORT = [
    "id",
    "occurred_at",
    "revenue",
    "quantity",
    "cost",
    "discount",
    "category",
    "region",
    "channel",
    "product_brand",
]
#: tf_sales's declared numeric types: the export casts the plane's DECIMAL(38, s) back to
#: them (``--duckdb-decimals declared``), which DuckDB scans 2-10× faster.
DECLARED = {"revenue": (12, 2), "cost": (12, 2), "discount": (4, 2)}

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


# ------------------------------------------------------------------ the queries


class Query(NamedTuple):
    label: str
    graphql: str
    pg: str  # PostgreSQL's own SQL on tf_sales
    duck: str  # DuckDB's SQL over the flat columns of the export; {table} is the source


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


def label(spec: Spec) -> str:
    keys, aggs, where = spec
    what = ", ".join("count" if fn == "count" else f"{m} {fn}" for fn, m in aggs)
    text = f"{what} by {' × '.join(keys)}" if keys else what
    if where:
        col, value = where.split(" = ")
        text += f", {col} {value.strip(chr(39))} only"
    return text


def session_queries(rows: int) -> list[Query]:
    """The exploration session (shared with analytics.py, unchanged), then a selective
    filter on an id range (1 % of the rows, contiguous on disk: the partitions' id
    statistics let the plane skip the others) and one month, and a p90 by region."""
    out = [
        Query(label(spec), graphql(spec), pg_sql(spec), flat_sql(spec, "{table}"))
        for spec in EXPLORATION
    ]
    high = max(1, rows // 100)
    month = ("2024-03-01 00:00:00+00", "2024-04-01 00:00:00+00")
    out.append(
        Query(
            f"revenue sum, count by category, id ≤ {high:,} and March 2024",
            "{ sales_aggregate(where: {id: {gte: 1, lte: " + str(high) + "}, occurred_at: {gte:"
            ' "2024-03-01T00:00:00+00:00", lt: "2024-04-01T00:00:00+00:00"}},'
            " groupBy: {category: true}) { category revenue_sum count } }",
            "SELECT dimensions->>'category' AS category, sum(revenue), count(*) FROM tf_sales"
            f" WHERE id BETWEEN 1 AND {high} AND occurred_at >= '{month[0]}'"
            f" AND occurred_at < '{month[1]}' GROUP BY 1",
            "SELECT category, sum(revenue), count(*) FROM {table}"
            f" WHERE id BETWEEN 1 AND {high} AND occurred_at >= TIMESTAMPTZ '{month[0]}'"
            f" AND occurred_at < TIMESTAMPTZ '{month[1]}' GROUP BY 1",
        )
    )
    out.append(
        Query(
            "revenue p90 by region",
            "{ sales_aggregate(groupBy: {region: true}) { region revenue_p90 } }",
            "SELECT dimensions->>'region' AS region,"
            " percentile_cont(0.9) WITHIN GROUP (ORDER BY revenue) FROM tf_sales GROUP BY 1",
            "SELECT region, quantile_cont(revenue, 0.9) FROM {table} GROUP BY 1",
        )
    )
    return out


# ------------------------------------------------------------------ measures


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


def reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM; Linux ≥ 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_mb() -> float:
    """This process's peak RSS since the last :func:`reset_peak` (else since it started)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def normal(value: Any) -> Any:
    """A value of an answer, comparable across processes (floats to 9 significant digits)."""
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float):
        return repr(value) if math.isnan(value) or math.isinf(value) else float(f"{value:.9g}")
    if isinstance(value, dt.date | dt.datetime | dt.time | dt.timedelta):
        return value.isoformat() if hasattr(value, "isoformat") else str(value)
    if isinstance(value, list):
        return [normal(v) for v in value]
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items()}
    return value


def answer(r: Any) -> list[dict[str, Any]]:
    """A result's frame as a sorted list of dicts of :func:`normal` values."""
    rows = [{k: normal(v) for k, v in row.items()} for row in r.df.to_dicts()]
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True, default=str))


def run_pass(s: fq.Session, queries: list[Query], *, keep: bool) -> list[dict[str, Any]]:
    """The session once on the arrow plane: per query its time, peak RSS, partitions
    read, and (``keep``) its answer; an error or another plane's answer is recorded."""
    each = []
    for q in queries:
        reset_peak()
        t = time.perf_counter()
        item: dict[str, Any] = {"error": None}
        try:
            r = s.execute(q.graphql, backend="arrow")
            item["s"] = time.perf_counter() - t
            item["backend"] = r.backend  # type: ignore[union-attr]
            item["storage"] = r.storage  # type: ignore[union-attr]
            item["partitions"] = getattr(r, "partitions", None)
            if r.backend != "arrow":  # type: ignore[union-attr]
                item["error"] = f"answered by {r.backend}: {r.reason}"  # type: ignore[union-attr]
            if keep:
                item["answer"] = answer(r)
        except Exception as e:  # noqa: BLE001 - recorded, the run goes on
            item.update(s=None, backend=None, storage=None, partitions=None)
            item["error"] = f"{type(e).__name__}: {e}"[:300]
        item["peak_mb"] = peak_mb()
        each.append(item)
    return each


def plane_config(memory_mb: int) -> dict[str, Any]:
    return {"arrow_backend": {"memory_mb": memory_mb, "load_connections": 2}}


def store_folder(s: fq.Session) -> str:
    plane = s._planes["arrow"]  # type: ignore[attr-defined]
    table = plane._disk.stored_as(plane._catalog.identity(s.schema.fact("sales")), {})
    return str(plane._store.folder(table.key))


def child_budget(dsn: str, memory_mb: int, rows: int) -> dict[str, Any]:
    """One budget, in a process of its own with a fresh store: load, then the session
    twice (the second warm), peak RSS and partitions read per query."""
    queries = session_queries(rows)
    out: dict[str, Any] = {"rss_reset": reset_peak()}
    with fq.connect(dsn, config=plane_config(memory_mb)) as s:
        out["rss_connected_mb"] = peak_mb()
        reset_peak()
        started = time.perf_counter()
        s.prefetch("sales", wait=True)
        out["load_s"] = time.perf_counter() - started
        out["load_peak_mb"] = peak_mb()
        synced = s._planes["arrow"]._disk.last  # type: ignore[attr-defined]
        out["partitions"] = len(synced.table.parts) if synced else 0
        out["loaded_bytes"] = synced.bytes if synced else 0
        out["first_pass"] = run_pass(s, queries, keep=False)
        out["warm"] = run_pass(s, queries, keep=True)
        out["store"] = store_folder(s)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def child_append(dsn: str, memory_mb: int) -> dict[str, Any]:
    """The first query after appending 1 % new rows, on a store already loaded."""
    spec = EXPLORATION[0]
    out: dict[str, Any] = {}
    with fq.connect(dsn, config=plane_config(memory_mb)) as s:
        s.prefetch("sales", wait=True)
        s.execute(graphql(spec), backend="arrow")  # exact as of now
        with psycopg.connect(dsn, autocommit=True) as conn:
            n = conn.execute("SELECT count(*) FROM tf_sales").fetchone()[0]  # type: ignore[index]
            conn.execute(
                "INSERT INTO tf_sales SELECT id + 1000000000, customer_id, occurred_at, revenue,"
                f" quantity, cost, discount, dimensions FROM tf_sales ORDER BY id LIMIT {n // 100}"
            )
            try:
                t = time.perf_counter()
                r = s.execute(graphql(spec), backend="arrow")
                out["first_query_s"] = time.perf_counter() - t
                out["backend"] = r.backend  # type: ignore[union-attr]
                last = s._planes["arrow"]._disk.last  # type: ignore[attr-defined]
                out["loaded_rows"] = last.rows if last else None
                out["appended_rows"] = n // 100
                t = time.perf_counter()
                conn.execute(pg_sql(spec)).fetchall()
                out["postgres_s"] = time.perf_counter() - t
            finally:
                conn.execute("DELETE FROM tf_sales WHERE id > 1000000000")
                conn.execute("VACUUM tf_sales")
    return out


def child_pair(dsn: str, memory_mb: int, rows: int, barrier: Path, me: int) -> dict[str, Any]:
    """One of two processes over one store: both load at once, then run the session twice."""
    queries = session_queries(rows)
    out: dict[str, Any] = {"process": me}
    with fq.connect(dsn, config=plane_config(memory_mb)) as s:
        (barrier / f"ready-{me}").touch()
        deadline = time.monotonic() + 300
        while len(list(barrier.glob("ready-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        started = time.perf_counter()
        try:
            s.prefetch("sales", wait=True)
            out["load_error"] = None
        except Exception as e:  # noqa: BLE001 - recorded, the queries still run
            out["load_error"] = f"{type(e).__name__}: {e}"[:300]
        out["load_s"] = time.perf_counter() - started
        out["passes"] = [run_pass(s, queries, keep=True) for _ in range(2)]
        out["wall_s"] = time.perf_counter() - started
    return out


def run_child(dsn: str, store: Path, argv: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--dsn", dsn, *argv],
        capture_output=True,
        text=True,
        env={**os.environ, STORE_ENV: str(store)},
        check=False,
    )
    if done.returncode:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def two_at_once(dsn: str, memory_mb: int, rows: int, work: Path) -> dict[str, Any]:
    store, barrier = work / "store-shared", work / "barrier"
    barrier.mkdir()
    env = {**os.environ, STORE_ENV: str(store)}
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--dsn",
                dsn,
                "--rows",
                str(rows),
                "--memory-mb",
                str(memory_mb),
                "--child",
                "pair",
                "--barrier",
                str(barrier),
                "--process",
                str(i),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(2)
    ]
    outs = []
    for p in procs:
        stdout, stderr = p.communicate()
        if p.returncode:
            raise SystemExit(stderr)
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    wall = time.perf_counter() - started
    procs_out = []
    for o in outs:
        errors = [
            {"pass": i + 1, "query": j + 1, "error": q["error"]}
            for i, each in enumerate(o["passes"])
            for j, q in enumerate(each)
            if q["error"]
        ]
        warm = o["passes"][-1]
        procs_out.append(
            {
                "process": o["process"],
                "load_s": o["load_s"],
                "load_error": o["load_error"],
                "wall_s": o["wall_s"],
                "answers": sum(q.get("answer") is not None for each in o["passes"] for q in each),
                "errors": errors,
                "warm_each_s": [q["s"] for q in warm],
                "warm_total_s": sum(q["s"] or 0 for q in warm),
                "peak_mb": max(q["peak_mb"] for each in o["passes"] for q in each),
            }
        )
    answers = [[[q.get("answer") for q in each] for each in o["passes"]] for o in outs]
    return {
        "memory_mb": memory_mb,
        "wall_s": wall,
        "processes": procs_out,
        "answers_equal": answers[0] == answers[1],
        "passes_equal": all(a[0] == a[1] for a in answers),
    }


def duckdb_runs(
    folder: str, work: Path, queries: list[Query], decimals: str = "declared"
) -> dict[str, Any]:
    """DuckDB over a Parquet export of the plane's partitions, and over a native table
    (in a database file) created from it: best of 2 per query each. ``decimals``
    "declared": numeric columns as tf_sales declares them; "plane": as the plane
    keeps them (DECIMAL(38, s))."""
    import duckdb
    import polars as pl

    path = work / "tf_sales.parquet"
    started = time.perf_counter()
    files = sorted(str(p) for p in Path(folder).glob("p*.arrow"))
    lf = pl.concat([pl.scan_ipc(f) for f in files]).select(EXPORT)
    if decimals == "declared":
        lf = lf.with_columns(pl.col(c).cast(pl.Decimal(p, s)) for c, (p, s) in DECLARED.items())
    lf.sink_parquet(path)
    export_s = time.perf_counter() - started
    con = duckdb.connect(str(work / "tf_sales.duckdb"))
    con.execute("SET TimeZone = 'UTC'")
    started = time.perf_counter()
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_parquet('{path}')")
    native_s = time.perf_counter() - started
    out: dict[str, Any] = {
        "export_s": export_s,
        "parquet_bytes": path.stat().st_size,
        "native_create_s": native_s,
        "rows": con.execute("SELECT count(*) FROM t").fetchone()[0],  # type: ignore[index]
        "version": duckdb.__version__,
        "decimals": decimals,
    }
    for key, table in (("parquet_each_s", f"read_parquet('{path}')"), ("native_each_s", "t")):
        each = []
        for q in queries:
            runs = []
            for _ in range(2):
                t = time.perf_counter()
                con.execute(q.duck.replace("{table}", table)).fetchall()
                runs.append(time.perf_counter() - t)
            each.append(min(runs))
        out[key] = each
    con.close()
    return out


# ------------------------------------------------------------------ the run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=os.environ.get("FRAISEQL_DSN"))
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--memory-mb", default="16,256", help="budgets, comma-separated")
    parser.add_argument(
        "--duckdb-decimals",
        choices=("declared", "plane"),
        default="declared",
        help="DuckDB's numeric columns: as tf_sales declares them, or as the plane keeps them",
    )
    parser.add_argument("--child", choices=("budget", "append", "pair"), help=argparse.SUPPRESS)
    parser.add_argument("--barrier", help=argparse.SUPPRESS)
    parser.add_argument("--process", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    budgets = sorted({int(v) for v in str(args.memory_mb).split(",") if v.strip()})
    if args.dsn is None:
        embedded.start()
        args.dsn = demo.ensure_database(embedded.dsn(), "fraiseql_bench_big")
    if args.child:
        if args.child == "budget":
            out = child_budget(args.dsn, budgets[0], args.rows)
        elif args.child == "append":
            out = child_append(args.dsn, budgets[0])
        else:
            out = child_pair(args.dsn, budgets[0], args.rows, Path(args.barrier), args.process)
        print(json.dumps(out))
        return
    ensure_table(args.dsn, args.rows)
    queries = session_queries(args.rows)
    work = Path(tempfile.mkdtemp(prefix="fqbig-"))
    try:
        result = measure(args.dsn, args.rows, budgets, queries, work, args.duckdb_decimals)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(result)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "analytics_big.json").write_text(json.dumps(result, indent=1) + "\n")
    chart(result)


def measure(
    dsn: str, rows: int, budgets: list[int], queries: list[Query], work: Path, decimals: str
) -> dict[str, Any]:
    with fq.connect(dsn) as s:
        statement = s._planes["arrow"].load_statement(s.schema.fact("sales"), fq_loadable(s))  # type: ignore[attr-defined]
    print("  copy floor", file=sys.stderr)
    floor_s, floor_bytes = copy_floor(dsn, statement)

    print("  postgres", file=sys.stderr)
    pg_each = []
    with psycopg.connect(dsn) as conn:
        for q in queries:
            t = time.perf_counter()
            conn.execute(q.pg).fetchall()  # type: ignore[arg-type]
            pg_each.append(time.perf_counter() - t)

    planes = []
    for mb in budgets:
        print(f"  arrow plane, memory_mb {mb} (child process, fresh store)", file=sys.stderr)
        argv = ["--rows", str(rows), "--memory-mb", str(mb), "--child", "budget"]
        planes.append(run_child(dsn, work / f"store-{mb}", argv))

    # Before the append below changes the smallest budget's store.
    print("  duckdb over parquet, and a native table", file=sys.stderr)
    duck = duckdb_runs(planes[0]["store"], work, queries, decimals)

    print(f"  append 1 %, memory_mb {budgets[0]}", file=sys.stderr)
    append = run_child(
        dsn, work / f"store-{budgets[0]}", ["--memory-mb", str(budgets[0]), "--child", "append"]
    )
    append["vs_postgres"] = append["first_query_s"] / append["postgres_s"]

    print(f"  two processes at once, memory_mb {budgets[0]}, one store", file=sys.stderr)
    pair = two_at_once(dsn, budgets[0], rows, work)

    per_budget = []
    for mb, plane in zip(budgets, planes, strict=True):
        warm, first = plane["warm"], plane["first_pass"]
        peaks = [max(a["peak_mb"], b["peak_mb"]) for a, b in zip(first, warm, strict=True)]
        arrow = [q["s"] for q in warm]
        speedups = [p / a if a else None for p, a in zip(pg_each, arrow, strict=True)]
        vs_duck = [a / d if a else None for a, d in zip(arrow, duck["parquet_each_s"], strict=True)]
        ok = [x for x in speedups if x is not None]
        max_peak = max([*peaks, plane["load_peak_mb"]])
        per_budget.append(
            {
                "memory_mb": mb,
                "load_s": plane["load_s"],
                "load_vs_floor": plane["load_s"] / floor_s,
                "load_peak_rss_mb": plane["load_peak_mb"],
                "partitions": plane["partitions"],
                "loaded_mb": plane["loaded_bytes"] / 2**20,
                "rss_connected_mb": plane["rss_connected_mb"],
                "rss_method": "VmHWM, reset per query" if plane["rss_reset"] else "VmHWM",
                "arrow_each_s": arrow,
                "arrow_first_pass_s": [q["s"] for q in first],
                "arrow_total_s": sum(a or 0 for a in arrow),
                "peak_rss_each_mb": peaks,
                "peak_rss_mb": max_peak,
                "rss_margin_mb": max_peak - mb,
                "rss_within_target": max_peak - mb <= RSS_TARGET_MB,
                "partitions_each": [q["partitions"] for q in warm],
                "storages": sorted({q["storage"] for q in warm if q["storage"] is not None}),
                "errors": [
                    {"query": i + 1, "error": q["error"]} for i, q in enumerate(warm) if q["error"]
                ],
                "speedup_vs_postgres_each": speedups,
                "median_speedup_vs_postgres": statistics.median(ok) if ok else None,
                "arrow_vs_duckdb_parquet_each": vs_duck,
                "within_duckdb_parquet": sum(x is not None and x <= 1 for x in vs_duck),
                "arrow_vs_duckdb_parquet_total": sum(a or 0 for a in arrow)
                / sum(duck["parquet_each_s"]),
                "answers": [q.get("answer") for q in warm],
            }
        )
    reference = per_budget[0]["answers"]
    for b in per_budget:
        b["answers_equal_smallest_budget"] = b.pop("answers") == reference
    return {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rows": rows,
        "memory_mb": budgets,
        "rss_target_mb": RSS_TARGET_MB,
        "queries": [{"label": q.label, "graphql": q.graphql, "postgres": q.pg} for q in queries],
        "copy_floor_s": floor_s,
        "copy_floor_mb": floor_bytes / 2**20,
        "postgres_each_s": pg_each,
        "postgres_total_s": sum(pg_each),
        "duckdb": duck,
        "budgets": per_budget,
        "append": append,
        "two_processes": pair,
    }


def _s(x: float | None, digits: int = 3) -> str:
    return "error" if x is None else f"{x:.{digits}f}"


def report(result: dict[str, Any]) -> None:
    queries, pg_each, duck = result["queries"], result["postgres_each_s"], result["duckdb"]
    first = result["budgets"][0]
    print(
        f"\n{result['rows']:,} rows · {first['loaded_mb']:,.0f} MB of columns on disk ·"
        f" COPY floor (one connection) {result['copy_floor_s']:.1f} s ·"
        f" DuckDB {duck['version']} (Parquet {duck['parquet_bytes'] / 2**20:,.0f} MB,"
        f" {duck['decimals']} decimals; native table created in {duck['native_create_s']:.1f} s)"
    )
    for b in result["budgets"]:
        print(
            f"\n### memory_mb {b['memory_mb']}: load {b['load_s']:.1f} s"
            f" ({b['load_vs_floor']:.2f}× the COPY floor) in {b['partitions']} partitions,"
            f" peak RSS of the load {b['load_peak_rss_mb']:.0f} MB"
            f" (connected: {b['rss_connected_mb']:.0f} MB)\n"
        )
        print(
            "| query | PostgreSQL s | arrow s | DuckDB Parquet s | DuckDB native s | PG/arrow"
            " | arrow/DuckDB-Parquet | peak RSS MB | partitions read/total |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for i, q in enumerate(queries):
            parts = b["partitions_each"][i]
            speedup = b["speedup_vs_postgres_each"][i]
            vs_duck = b["arrow_vs_duckdb_parquet_each"][i]
            read = f"{parts['read']}/{parts['total']}" if parts else "—"
            print(
                f"| {i + 1}. {q['label']} | {pg_each[i]:.2f} | {_s(b['arrow_each_s'][i])}"
                f" | {duck['parquet_each_s'][i]:.3f} | {duck['native_each_s'][i]:.3f}"
                f" | {_s(speedup, 1)}× | {_s(vs_duck, 2)}× | {b['peak_rss_each_mb'][i]:.0f}"
                f" | {read} |"
            )
        print(
            f"| **session** | {result['postgres_total_s']:.1f} | {b['arrow_total_s']:.2f}"
            f" | {sum(duck['parquet_each_s']):.2f} | {sum(duck['native_each_s']):.2f}"
            f" | median {_s(b['median_speedup_vs_postgres'], 1)}×"
            f" | {b['arrow_vs_duckdb_parquet_total']:.2f}× | max {b['peak_rss_mb']:.0f} | |"
        )
        print(
            f"\nmemory_mb {b['memory_mb']}: warm median speed-up vs PostgreSQL"
            f" {_s(b['median_speedup_vs_postgres'], 1)}×; within 1× DuckDB over Parquet:"
            f" {b['within_duckdb_parquet']} of {len(queries)} queries; max peak RSS"
            f" {b['peak_rss_mb']:.0f} MB = budget + {b['rss_margin_mb']:.0f} MB"
            f" (target ≤ +{result['rss_target_mb']} MB: {'met' if b['rss_within_target'] else 'NOT met'};"
            f" {b['rss_method']}); answers equal to memory_mb {first['memory_mb']}'s:"
            f" {'yes' if b['answers_equal_smallest_budget'] else 'NO'}"
        )
        for e in b["errors"]:
            print(f"  query {e['query']}: {e['error']}")
    a = result["append"]
    print(
        f"\nFirst query after appending 1 % ({a['appended_rows']:,} rows), memory_mb"
        f" {first['memory_mb']}: {a['first_query_s']:.2f} s = {a['vs_postgres']:.2f}× PostgreSQL"
        f" ({a['postgres_s']:.2f} s; {a['loaded_rows']:,} rows loaded, {a['backend']})"
    )
    pair = result["two_processes"]
    print(
        f"\n### two processes at once, one store, memory_mb {pair['memory_mb']}"
        f" (wall {pair['wall_s']:.1f} s)\n"
    )
    print(
        "| process | load s | warm session s | wall s | answers | errors / refusals | peak RSS MB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for p in pair["processes"]:
        bad = len(p["errors"]) + bool(p["load_error"])
        print(
            f"| {p['process']} | {p['load_s']:.1f} | {p['warm_total_s']:.2f} | {p['wall_s']:.1f}"
            f" | {p['answers']} | {bad} | {p['peak_mb']:.0f} |"
        )
    print(
        f"\nanswers of the two processes equal: {'yes' if pair['answers_equal'] else 'NO'};"
        f" each process's two passes equal: {'yes' if pair['passes_equal'] else 'NO'}"
    )
    for p in pair["processes"]:
        if p["load_error"]:
            print(f"  process {p['process']} load: {p['load_error']}")
        for e in p["errors"]:
            print(f"  process {p['process']} pass {e['pass']} query {e['query']}: {e['error']}")


def fq_loadable(s: fq.Session) -> list[str]:
    from fraiseql_nb.sql.facts import loadable_columns

    return loadable_columns(s.schema.fact("sales"))  # type: ignore[arg-type]


def chart(result: dict[str, Any]) -> None:
    """One panel per budget: per query, PostgreSQL, arrow (from disk), DuckDB."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    budgets = result["budgets"]
    fig, axes = plt.subplots(len(budgets), 1, figsize=(9, 3.6 * len(budgets)), squeeze=False)
    n = len(result["postgres_each_s"])
    xs = range(n)
    width = 0.2
    for ax, b in zip(axes[:, 0], budgets, strict=True):
        series = (
            ("PostgreSQL", result["postgres_each_s"]),
            ("arrow (from disk)", b["arrow_each_s"]),
            ("DuckDB over Parquet", result["duckdb"]["parquet_each_s"]),
            ("DuckDB native table", result["duckdb"]["native_each_s"]),
        )
        for i, (name, values) in enumerate(series):
            ax.bar(
                [x + (i - 1.5) * width for x in xs],
                [v or 0 for v in values],
                width=width,
                label=name,
            )
        ax.set_yscale("log")
        ax.set_xticks(list(xs), [str(i + 1) for i in xs])
        ax.set_ylabel("seconds (log)")
        ax.set_title(
            f"{result['rows']:,} rows, memory_mb {b['memory_mb']}"
            f" (peak RSS {b['peak_rss_mb']:.0f} MB)"
        )
    axes[-1, 0].set_xlabel("query of the session")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize="small")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(RESULTS / "analytics_big.png", dpi=110)


if __name__ == "__main__":
    main()
