"""Analytics benchmark: aggregates and windows on the large tf_sales (2M rows), six ways.

  (a) PostgreSQL's own GROUP BY / window SQL through psycopg — the baseline
  (b) DuckDB's Postgres scanner (duckdb + duckdb-extension-postgres-scanner, if installed)
  (c) polars.read_database_uri(engine="adbc") of the needed columns + group_by, by hand
  (d) the arrow plane, cold (a fresh session: its load included)
  (e) the arrow plane, warm (the same query again)
  (f) the pushdown plane (postgres)

for a set of queries (a 2-key group with 3 aggregates, a month bucket, a
median, a window running sum); then, against PostgreSQL's own SQL for the same
queries measured in the same run:

  session A  the 10-query exploration session under backend="auto", first ever
             (empty store, nothing in memory): back to back, and with a 2 s pause
             between queries (a person reading each result)
  session B  the same session in a new process, the store warm
  append     the first query after appending 1 % new rows (exact, incremental)
  health     health() latency while a background load runs

Prints markdown tables, writes benchmarks/results/analytics.json and
analytics.png.

    python benchmarks/analytics.py [--dsn DSN] [--repeat 2]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import psycopg

import fraiseql_nb as fq

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DIMS = {
    "category": ("category",),
    "region": ("region",),
    "channel": ("channel",),
    "product_brand": ("product", "brand"),
}


# A query spec: (group keys, [(aggregate, measure)], where), from which every
# approach's own text is generated the way a person would write it.
Spec = tuple[list[str], list[tuple[str, str | None]], str | None]

QUERIES: dict[str, Spec] = {
    "2-key group, 3 aggregates": (
        ["category", "region"],
        [("count", None), ("sum", "revenue"), ("avg", "quantity"), ("max", "cost")],
        None,
    ),
    "month bucket": (["month"], [("sum", "revenue")], None),
    "median": (["category"], [("median", "revenue")], None),
    # A conditional aggregate (FILTER): revenue, and the web's share of it, per region.
    "conditional sums": (
        ["region"],
        [("sum", "revenue"), ("sum_web", "revenue"), ("count_web", None)],
        None,
    ),
}
#: The conditional aggregates' condition (``sum_web``, ``count_web``).
WEB = "channel"
EXPLORATION: list[Spec] = [
    (["category"], [("count", None), ("sum", "revenue")], None),
    (["category", "region"], [("sum", "revenue")], None),
    (["region"], [("avg", "revenue"), ("max", "cost")], None),
    (["month"], [("sum", "revenue")], None),
    (["category", "month"], [("sum", "revenue"), ("count", None)], None),
    (["channel"], [("sum", "quantity")], "category = 'books'"),
    (["product_brand"], [("avg", "revenue")], None),
    (["category"], [("median", "revenue")], None),
    (["region", "channel"], [("count", None), ("avg", "discount")], None),
    (["month"], [("avg", "cost")], "region = 'EU'"),
]
WINDOW_GRAPHQL = (
    "{ sales_window(where: {customer_id: {lte: 1000}}, partitionBy: [customer_id], orderBy: {occurred_at: ASC})"
    " { id customer_id revenue running: running_sum(field: revenue) } }"
)
WINDOW_SQL = (
    "SELECT id, customer_id, revenue::float8 AS revenue, sum(revenue) OVER (PARTITION BY customer_id"
    " ORDER BY occurred_at, id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)::float8 AS running"
    " FROM tf_sales WHERE customer_id <= 1000 ORDER BY id"
)


# After the groups: period over period, and top N per group with each one's share.
GROWTH_GRAPHQL = (
    "{ sales_aggregate(groupBy: {category: true, occurred_at_month: true}) {"
    " category occurred_at_month revenue_sum"
    " prev: lag(field: revenue_sum, partitionBy: [category], orderBy: {occurred_at_month: ASC})"
    ' growth: calc(expr: "(revenue_sum - prev) / prev") } }'
)
GROWTH_SQL = (
    "SELECT category, month, revenue, (revenue - prev) / nullif(prev, 0) AS growth FROM ("
    "SELECT *, lag(revenue) OVER (PARTITION BY category ORDER BY month) AS prev FROM ("
    "SELECT dimensions->>'category' AS category,"
    " date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date AS month,"
    " sum(revenue)::float8 AS revenue FROM tf_sales GROUP BY 1, 2) g) w"
)
TOP_GRAPHQL = (
    "{ sales_aggregate(groupBy: {region: true, product_name: true}, limitPerGroup:"
    " {partitionBy: [region], orderBy: [{revenue_sum: DESC}], limit: 3}) {"
    " region product_name revenue_sum share: share(field: revenue_sum, partitionBy: [region]) } }"
)
TOP_SQL = (
    "SELECT region, product, revenue, share FROM (SELECT *, revenue / nullif(sum(revenue)"
    " OVER (PARTITION BY region), 0) AS share, row_number() OVER (PARTITION BY region"
    " ORDER BY revenue DESC) AS n FROM (SELECT dimensions->>'region' AS region,"
    " dimensions->'product'->>'name' AS product, sum(revenue)::float8 AS revenue"
    " FROM tf_sales GROUP BY 1, 2) g) t WHERE n <= 3"
)


def _dim_sql(name: str, duck: bool = False) -> str:
    path = DIMS[name]
    inner = "".join(f"->'{p}'" for p in path[:-1])
    return f"dimensions{inner}->>'{path[-1]}'"


def pg_sql(spec: Spec, table: str = "tf_sales") -> str:
    keys, aggs, where = spec
    cols = []
    for k in keys:
        cols.append(
            "date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date AS month"
            if k == "month"
            else f"{_dim_sql(k)} AS {k}"
        )
    for fn, m in aggs:
        if fn == "count":
            cols.append("count(*)")
        elif fn == "count_web":
            cols.append(f"count(*) FILTER (WHERE {_dim_sql(WEB)} = 'web')")
        elif fn == "sum_web":
            cols.append(f"sum({m}) FILTER (WHERE {_dim_sql(WEB)} = 'web')")
        elif fn == "median":
            cols.append(f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {m})")
        else:
            cols.append(f"{fn}({m})")
    text = f"SELECT {', '.join(cols)} FROM {table}"
    if where:
        col, value = where.split(" = ")
        text += f" WHERE {_dim_sql(col)} = {value}"
    if keys:
        text += " GROUP BY " + ", ".join(str(i + 1) for i in range(len(keys)))
    return text


def duck_sql(spec: Spec) -> str:
    text = pg_sql(spec, "pg.public.tf_sales")
    text = text.replace(
        "date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date",
        "date_trunc('month', occurred_at)",
    )
    return text.replace("percentile_cont(0.5) WITHIN GROUP (ORDER BY revenue)", "median(revenue)")


def polars_by_hand(spec: Spec, uri: str) -> pl.DataFrame:
    keys, aggs, where = spec
    cols = []
    for k in keys:
        cols.append("occurred_at" if k == "month" else f"{_dim_sql(k)} AS {k}")
    for fn, m in aggs:
        if m and m not in [c.split(" AS ")[-1] for c in cols]:
            cols.append(f"{m}::float8 AS {m}")
        if fn.endswith("_web") and WEB not in [c.split(" AS ")[-1] for c in cols]:
            cols.append(f"{_dim_sql(WEB)} AS {WEB}")
    text = f"SELECT {', '.join(dict.fromkeys(cols)) or 'id'} FROM tf_sales"
    if where:
        col, value = where.split(" = ")
        text += f" WHERE {_dim_sql(col)} = {value}"
    df = pl.read_database_uri(text, uri, engine="adbc")
    by = [
        pl.col("occurred_at").dt.truncate("1mo").alias("month") if k == "month" else pl.col(k)
        for k in keys
    ]
    exprs = []
    web = pl.col(WEB) == "web"
    for fn, m in aggs:
        if fn == "count":
            exprs.append(pl.len())
        elif fn == "count_web":
            exprs.append(web.sum().alias("count_web"))
        elif fn == "sum_web":
            exprs.append(pl.col(m).filter(web).sum().alias(f"{m}_sum_web"))
        else:
            exprs.append(getattr(pl.col(m), {"avg": "mean"}.get(fn, fn))().alias(f"{m}_{fn}"))
    return df.group_by(by).agg(exprs) if by else df.select(exprs)


def graphql(spec: Spec) -> str:
    keys, aggs, where = spec
    names = ["occurred_at_month" if k == "month" else k for k in keys]
    web = '(filter: {channel: {eq: "web"}})'
    out = names + [
        "count"
        if fn == "count"
        else f"count_web: count{web}"
        if fn == "count_web"
        else f"{m}_sum_web: {m}_sum{web}"
        if fn == "sum_web"
        else f"{m}_{fn}"
        for fn, m in aggs
    ]
    args = []
    if where:
        col, value = where.split(" = ")
        args.append(f'where: {{{col}: {{eq: "{value.strip(chr(39))}"}}}}')
    if names:
        args.append("groupBy: {" + ", ".join(f"{n}: true" for n in names) + "}")
    head = f"sales_aggregate({', '.join(args)})" if args else "sales_aggregate"
    return "{ " + head + " { " + " ".join(dict.fromkeys(out)) + " } }"


def timed(fn: Callable[[], Any], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return min(runs)


def duckdb_connection(uri: str) -> Any:
    try:
        import duckdb
        import duckdb_extension_postgres_scanner as ext
    except ImportError:
        return None
    path = glob.glob(
        os.path.join(
            os.path.dirname(ext.__file__), "extensions", "*", "postgres_scanner.duckdb_extension"
        )
    )
    if not path:
        return None
    con = duckdb.connect()
    con.execute(f"LOAD '{path[0]}'")
    params = psycopg.conninfo.conninfo_to_dict(uri)
    libpq = " ".join(f"{k}={v}" for k, v in params.items())
    con.execute(f"ATTACH '{libpq}' AS pg (TYPE postgres, READ_ONLY)")
    return con


STORE_ENV = "FRAISEQL_ARROW_BACKEND_STORE_DIR"
APPEND_SQL = (
    "INSERT INTO tf_sales SELECT id + 100000000, customer_id, product_id, occurred_at, revenue,"
    " quantity, cost, discount, dimensions, date_info FROM tf_sales ORDER BY id LIMIT {n}"
)


def fresh_store() -> str:
    """An empty store folder for this process (the environment wins over any config)."""
    path = tempfile.mkdtemp(prefix="fqbench-store-")
    os.environ[STORE_ENV] = path
    return path


def run_session(
    session: fq.Session, specs: list[Spec], think_s: float = 0.0
) -> list[dict[str, Any]]:
    out = []
    for spec in specs:
        start = time.perf_counter()
        r = session.execute(graphql(spec))
        took = time.perf_counter() - start
        assert isinstance(r, fq.Result)
        out.append({"s": took, "backend": r.backend, "reason": r.reason})
        if think_s:
            time.sleep(think_s)
    return out


def child_session(dsn: str) -> None:
    """Session B, in its own process: the store (from the environment) is warm."""
    start = time.perf_counter()
    session = fq.connect(dsn)
    connected = time.perf_counter() - start
    queries = run_session(session, EXPLORATION)
    session.close()
    print(json.dumps({"connect_s": connected, "queries": queries}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=os.environ.get("FRAISEQL_DSN"))
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--child-session", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    dsn = args.dsn or _large_demo()
    if args.child_session:
        child_session(dsn)
        return
    stores = [fresh_store()]
    conn = psycopg.connect(dsn, autocommit=True)
    uri = dsn if dsn.startswith("postgres") else psycopg.conninfo.make_conninfo(dsn)
    duck = duckdb_connection(dsn)
    warm_session = fq.connect(dsn)
    rows: list[dict[str, Any]] = []

    def cold(query: str) -> float:
        no_store = {"arrow_backend": {"store_enabled": False}}
        with fq.connect(dsn, schema=warm_session.schema, config=no_store) as s:
            start = time.perf_counter()
            s.execute(query, backend="arrow")
            return time.perf_counter() - start

    cases: list[tuple[str, str, str, str | None, Callable[[], Any] | None]] = []
    for name, spec in QUERIES.items():
        cases.append(
            (
                name,
                graphql(spec),
                pg_sql(spec),
                duck_sql(spec),
                lambda spec=spec: polars_by_hand(spec, uri),
            )
        )
    cases.append(("window running sum", WINDOW_GRAPHQL, WINDOW_SQL, None, None))
    cases.append(("growth over months (lag, calc)", GROWTH_GRAPHQL, GROWTH_SQL, None, None))
    cases.append(("top 3 per region, share", TOP_GRAPHQL, TOP_SQL, None, None))

    for name, query, pgq, duckq, by_hand in cases:
        print(f"  {name}", file=sys.stderr)
        r = {"query": name}
        r["a_postgres_sql_s"] = timed(lambda pgq=pgq: conn.execute(pgq).fetchall(), args.repeat)
        r["b_duckdb_s"] = (
            timed(lambda duckq=duckq: duck.execute(duckq).fetchall(), args.repeat)
            if duck and duckq
            else None
        )
        r["c_polars_adbc_s"] = timed(by_hand, args.repeat) if by_hand else None
        r["d_arrow_cold_s"] = min(cold(query) for _ in range(args.repeat))
        warm_session.execute(query, backend="arrow")
        r["e_arrow_warm_s"] = timed(
            lambda query=query: warm_session.execute(query, backend="arrow"), max(args.repeat, 3)
        )
        r["f_pushdown_s"] = timed(
            lambda query=query: warm_session.execute(query, backend="postgres"), args.repeat
        )
        rows.append(r)
    warm_session.close()

    # ------------------------------------------------------------ sessions
    print("  sessions", file=sys.stderr)
    pg_each = [timed(lambda s=s: conn.execute(pg_sql(s)).fetchall(), 2) for s in EXPLORATION]
    pg_total = sum(pg_each)
    sessions: dict[str, Any] = {"postgres_each_s": pg_each, "postgres_total_s": pg_total}
    stores.append(fresh_store())  # nothing of the queries above may help session A
    with fq.connect(dsn) as s:
        sessions["a_back_to_back"] = run_session(s, EXPLORATION)
    stores.append(fresh_store())
    with fq.connect(dsn) as s:
        sessions["a_with_pauses"] = run_session(s, EXPLORATION, think_s=2.0)
    # Session B in a new process, on the store session A (with pauses) left.
    child = subprocess.run(
        [sys.executable, __file__, "--dsn", dsn, "--child-session"],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ,
    )
    sessions["b_new_process"] = json.loads(child.stdout.strip().splitlines()[-1])

    # ------------------------------------------------------------ appends
    print("  appends", file=sys.stderr)
    appends = []
    n_rows = conn.execute("SELECT count(*) FROM tf_sales").fetchone()[0]  # type: ignore[index]
    with fq.connect(dsn) as s:
        s.prefetch("sales", wait=True)
        for name, spec in (("light", EXPLORATION[0]), ("median", EXPLORATION[7])):
            s.execute(graphql(spec))  # answered from memory, exact as of now
            conn.execute(APPEND_SQL.format(n=n_rows // 100))
            start = time.perf_counter()
            r = s.execute(graphql(spec))
            took = time.perf_counter() - start
            pg = timed(lambda spec=spec: conn.execute(pg_sql(spec)).fetchall(), 2)
            assert isinstance(r, fq.Result)
            appends.append(
                {
                    "query": name,
                    "s": took,
                    "postgres_s": pg,
                    "backend": r.backend,
                    "loaded_bytes": r.metrics.bytes,
                }
            )
            conn.execute("DELETE FROM tf_sales WHERE id > 100000000")
            s.execute(graphql(spec), backend="postgres")
            s.refresh("sales")
            s.prefetch("sales", wait=True)
    conn.execute("VACUUM tf_sales")

    # ------------------------------------------------------------ health during a load
    print("  health during a load", file=sys.stderr)
    stores.append(fresh_store())
    health_ms = []
    with fq.connect(dsn) as s:
        s.prefetch("sales")
        while s.cache_stats()["loading"]:
            start = time.perf_counter()
            s.health()
            health_ms.append((time.perf_counter() - start) * 1e3)
            time.sleep(0.1)
    for path in stores:
        shutil.rmtree(path, ignore_errors=True)

    report(rows, sessions, appends, health_ms)


def report(
    rows: list[dict[str, Any]],
    sessions: dict[str, Any],
    appends: list[dict[str, Any]],
    health_ms: list[float],
) -> None:
    cols = [
        "a_postgres_sql_s",
        "b_duckdb_s",
        "c_polars_adbc_s",
        "d_arrow_cold_s",
        "e_arrow_warm_s",
        "f_pushdown_s",
    ]
    print(
        "| query | (a) PostgreSQL SQL | (b) DuckDB scanner | (c) Polars+ADBC by hand | (d) arrow cold | (e) arrow warm | (f) pushdown | (a)/(e) | (d)/(a) | (d)/(c) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        cells = [f"{r[c]:.3f} s" if r[c] is not None else "—" for c in cols]
        ratio_ae = r["a_postgres_sql_s"] / r["e_arrow_warm_s"]
        ratio_da = r["d_arrow_cold_s"] / r["a_postgres_sql_s"]
        ratio_dc = (
            f"{r['d_arrow_cold_s'] / r['c_polars_adbc_s']:.2f}" if r["c_polars_adbc_s"] else "—"
        )
        print(
            f"| {r['query']} | "
            + " | ".join(cells)
            + f" | {ratio_ae:.1f}× | {ratio_da:.2f} | {ratio_dc} |"
        )
    per_query = [r["a_postgres_sql_s"] / r["e_arrow_warm_s"] for r in rows]
    print(f"\nMedian warm speed-up over (a): {statistics.median(per_query):.1f}×")

    pg = sessions["postgres_total_s"]
    print(
        "\n| 10-query session | total | / PostgreSQL | first query / its SQL | queries on arrow |"
    )
    print("|---|---:|---:|---:|---:|")
    first_pg = sessions["postgres_each_s"][0]
    for key, label in (
        ("a_back_to_back", "A: auto, empty store, back to back"),
        ("a_with_pauses", "A: auto, empty store, 2 s pause between queries"),
        ("b_new_process", "B: new process, store warm"),
    ):
        queries = sessions[key] if isinstance(sessions[key], list) else sessions[key]["queries"]
        total = sum(q["s"] for q in queries)
        on_arrow = sum(q["backend"] == "arrow" for q in queries)
        print(
            f"| {label} | {total:.2f} s | {total / pg:.2f} | {queries[0]['s'] / first_pg:.2f}"
            f" | {on_arrow} of {len(queries)} |"
        )
    print(f"| PostgreSQL's own SQL (best of 2 each) | {pg:.2f} s | 1.00 | 1.00 | — |")
    print("\n| after appending 1 % rows | query | its SQL | ratio | loaded |")
    print("|---|---:|---:|---:|---:|")
    for a in appends:
        print(
            f"| {a['query']} ({a['backend']}) | {a['s']:.3f} s | {a['postgres_s']:.3f} s"
            f" | {a['s'] / a['postgres_s']:.2f} | {a['loaded_bytes'] / 2**20:.1f} MB |"
        )
    if health_ms:
        print(
            f"\nhealth() during a load: median {statistics.median(health_ms):.1f} ms,"
            f" max {max(health_ms):.1f} ms over {len(health_ms)} calls"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "analytics.json").write_text(
        json.dumps(
            {
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "results": rows,
                "sessions": sessions,
                "appends": appends,
                "health_during_load_ms": health_ms,
            },
            indent=2,
        )
        + "\n"
    )
    _chart(rows, cols, sessions)


def _large_demo() -> str:
    from fraiseql_nb.local import demo

    counts = demo.SCALES["large"]
    target = demo.resolve_target(counts)
    demo.load(target, counts, if_missing=True)
    return target


def _chart(rows: list[dict[str, Any]], cols: list[str], sessions: dict[str, Any]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    width = 0.13
    labels = [
        "(a) PostgreSQL SQL",
        "(b) DuckDB scanner",
        "(c) Polars+ADBC",
        "(d) arrow cold",
        "(e) arrow warm",
        "(f) pushdown",
    ]
    for i, (col, label) in enumerate(zip(cols, labels, strict=True)):
        xs = [j + i * width for j in range(len(rows))]
        ax.bar(xs, [r[col] or 0 for r in rows], width, label=label)
    ax.set_xticks(
        [j + 2.5 * width for j in range(len(rows))], [r["query"] for r in rows], fontsize=7
    )
    ax.set_ylabel("seconds (lower is better)")
    ax.set_title("One query, 2M-row tf_sales")
    ax.legend(fontsize=7)
    names = ["PostgreSQL SQL", "auto, empty store", "auto, 2 s pauses", "new process, store warm"]
    totals = [sessions["postgres_total_s"]]
    for key in ("a_back_to_back", "a_with_pauses", "b_new_process"):
        queries = sessions[key] if isinstance(sessions[key], list) else sessions[key]["queries"]
        totals.append(sum(q["s"] for q in queries))
    bx.bar(names, totals, color=["#6b46c1", "#2b6cb0", "#4299e1", "#2f855a"])
    bx.set_title("10-query exploration session (query time)")
    bx.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "analytics.png", dpi=110)


if __name__ == "__main__":
    main()
