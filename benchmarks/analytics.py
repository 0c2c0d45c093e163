"""Analytics benchmark: aggregates and windows on the large tf_sales (2M rows), six ways.

  (a) PostgreSQL's own GROUP BY / window SQL through psycopg — the baseline
  (b) DuckDB's Postgres scanner (duckdb + duckdb-extension-postgres-scanner, if installed)
  (c) polars.read_database_uri(engine="adbc") of the needed columns + group_by, by hand
  (d) the arrow plane, cold (a fresh session: its load included)
  (e) the arrow plane, warm (the same query again)
  (f) the pushdown plane (postgres)

for a set of queries (a 2-key group with 3 aggregates, a month bucket, a
median, a window running sum), then an exploration session: 10 different
aggregate queries on the same table in a row, total time per approach (the
arrow plane starting cold). Prints a markdown table, writes
benchmarks/results/analytics.json and analytics.png.

    python benchmarks/analytics.py [--dsn DSN] [--repeat 2]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import sys
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
}
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
    for _fn, m in aggs:
        if m and m not in [c.split(" AS ")[-1] for c in cols]:
            cols.append(f"{m}::float8 AS {m}")
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
    for fn, m in aggs:
        if fn == "count":
            exprs.append(pl.len())
        else:
            exprs.append(getattr(pl.col(m), {"avg": "mean"}.get(fn, fn))().alias(f"{m}_{fn}"))
    return df.group_by(by).agg(exprs) if by else df.select(exprs)


def graphql(spec: Spec) -> str:
    keys, aggs, where = spec
    names = ["occurred_at_month" if k == "month" else k for k in keys]
    out = names + ["count" if fn == "count" else f"{m}_{fn}" for fn, m in aggs]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=os.environ.get("FRAISEQL_DSN"))
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    dsn = args.dsn or _large_demo()
    conn = psycopg.connect(dsn, autocommit=True)
    uri = dsn if dsn.startswith("postgres") else psycopg.conninfo.make_conninfo(dsn)
    duck = duckdb_connection(dsn)
    warm_session = fq.connect(dsn)
    rows: list[dict[str, Any]] = []

    def cold(query: str) -> float:
        with fq.connect(dsn, schema=warm_session.schema) as s:
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

    # Exploration session: 10 different queries in a row, once each.
    print("  exploration session", file=sys.stderr)
    explore = {"query": "exploration session (10 queries)"}
    explore["a_postgres_sql_s"] = sum(
        timed(lambda s=s: conn.execute(pg_sql(s)).fetchall(), 1) for s in EXPLORATION
    )
    explore["b_duckdb_s"] = (
        sum(timed(lambda s=s: duck.execute(duck_sql(s)).fetchall(), 1) for s in EXPLORATION)
        if duck
        else None
    )
    explore["c_polars_adbc_s"] = sum(
        timed(lambda s=s: polars_by_hand(s, uri), 1) for s in EXPLORATION
    )
    with fq.connect(dsn, schema=warm_session.schema) as fresh:
        start = time.perf_counter()
        for s in EXPLORATION:
            fresh.execute(graphql(s), backend="arrow")
        explore["d_arrow_cold_s"] = time.perf_counter() - start
        start = time.perf_counter()
        for s in EXPLORATION:
            fresh.execute(graphql(s), backend="arrow")
        explore["e_arrow_warm_s"] = time.perf_counter() - start
    explore["f_pushdown_s"] = sum(
        timed(lambda s=s: warm_session.execute(graphql(s), backend="postgres"), 1)
        for s in EXPLORATION
    )
    rows.append(explore)
    warm_session.close()

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
    per_query = [r["a_postgres_sql_s"] / r["e_arrow_warm_s"] for r in rows[:-1]]
    print(
        f"\nMedian warm speed-up over (a) across the query set: {statistics.median(per_query):.1f}×"
    )
    print(
        f"Exploration session: arrow (cold start) total / (a) total = {explore['d_arrow_cold_s'] / explore['a_postgres_sql_s']:.2f}"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "analytics.json").write_text(
        json.dumps(
            {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": rows},
            indent=2,
        )
        + "\n"
    )
    _chart(rows, cols)


def _large_demo() -> str:
    from fraiseql_nb import demo

    counts = demo.SCALES["large"]
    target = demo.resolve_target(counts)
    demo.load(target, counts, if_missing=True)
    return target


def _chart(rows: list[dict[str, Any]], cols: list[str]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(10, 4.5))
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
    ax.set_title("Analytics on 2M-row tf_sales")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "analytics.png", dpi=110)


if __name__ == "__main__":
    main()
