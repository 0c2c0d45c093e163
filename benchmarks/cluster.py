"""Cluster benchmark: the big table of analytics_big.py on the cluster plane (Ray).

The 10-query exploration session of benchmarks/analytics.py over the generated
``tf_sales`` of analytics_big.py (default 20M rows), in one run:

  postgres    PostgreSQL's own SQL for the 10 queries
  arrow       the single-process arrow plane (default memory budget: from disk),
              its load by partition, then the session warm
  cluster N   the cluster plane on a Ray cluster of N local nodes of one CPU each
              (``ray.cluster_utils.Cluster``): the load of every partition by the
              workers, then the session twice (the second, warm, is the figure);
              each answer is compared with the arrow plane's

From the 1-node run (one CPU: the tasks run one after another) it takes the
measured cost of each partition's load and of each query's tasks, and models the
session on 4, 16 and 64 nodes (see ``model``; the assumptions are printed).

    python benchmarks/cluster.py [--dsn DSN] [--rows 20000000] [--nodes 1,2,3]
    python benchmarks/cluster.py --report   # the last results again, the model redone
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
from polars.testing import assert_frame_equal

sys.path.insert(0, str(Path(__file__).resolve().parent))
from analytics import EXPLORATION, graphql, pg_sql
from analytics_big import ensure_table

import fraiseql_nb as fq
from fraiseql_nb.local import demo, embedded

RESULTS = Path(__file__).resolve().parent / "results"
MODEL_NODES = (1, 2, 3, 4, 16, 64)
NETWORK_BYTES_S = 1.25e9  # 10 Gbit/s between a node and the server (model assumption)


def postgres_session(dsn: str) -> list[float]:
    with psycopg.connect(dsn) as conn:
        each = []
        for spec in EXPLORATION:
            t = time.perf_counter()
            conn.execute(pg_sql(spec)).fetchall()  # type: ignore[arg-type]
            each.append(time.perf_counter() - t)
    return each


def arrow_session(dsn: str, store: Path) -> tuple[dict[str, Any], list[pl.DataFrame]]:
    """The single-process arrow plane with its defaults (a store of its own)."""
    config = {"arrow_backend": {"store_dir": str(store)}}
    with fq.connect(dsn, config=config) as s:
        t = time.perf_counter()
        s.prefetch("sales", wait=True)
        load_s = time.perf_counter() - t
        passes, frames = [], []
        for _ in range(2):
            each, frames = [], []
            for spec in EXPLORATION:
                t = time.perf_counter()
                r = s.execute(graphql(spec), backend="arrow")
                each.append(time.perf_counter() - t)
                frames.append(r.df)  # type: ignore[union-attr]
            passes.append(each)
        storage = r.storage  # type: ignore[union-attr]
    return {"load_s": load_s, "first_s": passes[0], "warm_s": passes[1], "storage": storage}, frames


def cluster_session(
    dsn: str, nodes: int, object_store_mb: int, expected: list[pl.DataFrame]
) -> dict[str, Any]:
    """The session on a fresh local Ray cluster of ``nodes`` one-CPU nodes."""
    import ray
    from ray.cluster_utils import Cluster
    from ray.util import state

    store = object_store_mb * 2**20
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": store})
    for _ in range(nodes - 1):
        c.add_node(num_cpus=1, object_store_memory=store)
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)
    try:
        config = {"cluster": {"address": c.address}, "arrow_backend": {"store_enabled": False}}
        with fq.connect(dsn, config=config) as s:
            plane = s._planes["cluster"]
            fact = s.schema.fact("sales")
            table = plane._catalog.identity(fact)
            began = time.time()
            t = time.perf_counter()
            held, loaded, _ = plane._current(fact, table, [])
            load_s = time.perf_counter() - t
            passes, windows, agrees = [], [], True
            for _ in range(2):
                each, windows = [], []
                for spec, want in zip(EXPLORATION, expected, strict=True):
                    start_ms = time.time() * 1000
                    t = time.perf_counter()
                    r = s.execute(graphql(spec), backend="cluster")
                    each.append(time.perf_counter() - t)
                    windows.append((start_ms, time.time() * 1000))
                    assert r.backend == "cluster", r.reason  # type: ignore[union-attr]
                    agrees &= _same(want, r.df)  # type: ignore[union-attr]
                passes.append(each)
            time.sleep(3)  # task events reach the state API about a second late
            tasks = _task_seconds(state, windows, began)
            return {
                "nodes": nodes,
                "workers": held.workers,
                "partitions": len(held.parts),
                "load_s": load_s,
                "loaded_mb": loaded / 2**20,
                "part_load_s": [p.seconds for p in held.parts],
                "part_rows": [p.rows for p in held.parts],
                "first_s": passes[0],
                "warm_s": passes[1],
                "task_s": tasks,
                "agrees": agrees,
            }
    finally:
        ray.shutdown()
        c.shutdown()


def _same(want: pl.DataFrame, got: pl.DataFrame) -> bool:
    try:
        assert_frame_equal(_plain(want), _plain(got), rel_tol=1e-9, check_dtypes=False)
    except AssertionError as exc:
        print(f"  DISAGREES: {exc}", file=sys.stderr)
        return False
    return True


def _plain(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col(pl.Categorical).cast(pl.String))


def _task_seconds(state: Any, windows: list[tuple[float, float]], began: float) -> list[dict]:
    """Per warm query: the seconds its Ray tasks ran, added up, and how many there were."""
    out = [{"seconds": 0.0, "tasks": 0} for _ in windows]
    for task in state.list_tasks(detail=True, limit=10_000, raise_on_missing_output=False):
        name = task.name or ""
        start, end = task.start_time_ms, task.end_time_ms
        if not name.startswith("fraiseql-nb") or not start or not end or start < began * 1000:
            continue
        for i, (lo, hi) in enumerate(windows):
            if lo <= start <= hi:
                out[i]["seconds"] += (end - start) / 1000
                out[i]["tasks"] += 1
    return out


def model(one: dict[str, Any], rows: int) -> dict[str, Any]:
    """The session on N nodes, from the 1-node run's measured costs.

    Load: the partitions' loads (each one COPY, measured by its worker) run on
    min(N, S) streams at once — N nodes, S server cores (a COPY is one server
    process) — and no faster than the columns cross a 10 Gbit/s link per node.
    Query: the tasks' seconds divide among min(N, partitions) workers; the
    driver's part (wall time less its tasks, on one CPU: dispatch and merge)
    grows with the partitions. A plan keeps at least two partitions per worker,
    so partitions grow with N. Per node, one CPU as measured; the shuffle's
    transfer between machines is not modelled (here it is local memory).
    """
    load_work = sum(one["part_load_s"])
    loaded_bytes = one["loaded_mb"] * 2**20
    queries = []
    for wall, task in zip(one["warm_s"], one["task_s"], strict=True):
        queries.append({"driver_s": max(0.0, wall - task["seconds"]), "work_s": task["seconds"]})
    table = []
    for n in MODEL_NODES:
        parts = max(one["partitions"], 2 * n)
        row: dict[str, Any] = {"nodes": n, "partitions": parts}
        for label, server in (("server_16", 16), ("server_n", n)):
            streams = min(n, server)
            row[f"load_{label}_s"] = max(load_work / streams, loaded_bytes / (NETWORK_BYTES_S * n))
        grow = parts / one["partitions"]
        row["session_s"] = sum(q["driver_s"] * grow + q["work_s"] / min(n, parts) for q in queries)
        table.append(row)
    return {
        "rows": rows,
        "load_work_s": load_work,
        "queries": queries,
        "table": table,
        "assumptions": model.__doc__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=os.environ.get("FRAISEQL_DSN"))
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--nodes", default="1,2,3")
    parser.add_argument("--object-store-mb", type=int, default=4096, help="per node")
    parser.add_argument(
        "--report", action="store_true", help="print results/cluster.json again (model redone)"
    )
    args = parser.parse_args()
    if args.report:
        result = json.loads((RESULTS / "cluster.json").read_text())
        one = next((r for r in result["cluster"] if r["nodes"] == 1), None)
        result["model"] = model(one, result["rows"]) if one else None
        (RESULTS / "cluster.json").write_text(json.dumps(result, indent=1))
        report(result)
        return
    if args.dsn is None:
        embedded.start()
        args.dsn = demo.ensure_database(embedded.dsn(), "fraiseql_bench_big")
    ensure_table(args.dsn, args.rows)
    work = Path(tempfile.mkdtemp(prefix="fqcluster-"))

    print("  postgres", file=sys.stderr)
    pg = postgres_session(args.dsn)
    print("  arrow plane", file=sys.stderr)
    arrow, frames = arrow_session(args.dsn, work / "store")
    runs = []
    for n in [int(x) for x in args.nodes.split(",")]:
        print(f"  cluster, {n} node(s)", file=sys.stderr)
        runs.append(cluster_session(args.dsn, n, args.object_store_mb, frames))
    one = next((r for r in runs if r["nodes"] == 1), None)
    result = {
        "rows": args.rows,
        "cpus": os.cpu_count(),
        "postgres_s": pg,
        "arrow": arrow,
        "cluster": runs,
        "model": model(one, args.rows) if one else None,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cluster.json").write_text(json.dumps(result, indent=1))
    report(result)


def report(result: dict[str, Any]) -> None:
    pg, arrow, runs = result["postgres_s"], result["arrow"], result["cluster"]
    print(f"\n{result['rows']:,} rows · {result['cpus']} CPUs · nodes of one CPU each\n")
    head = " | ".join(f"cluster {r['nodes']} node{'s' * (r['nodes'] > 1)}" for r in runs)
    print(f"| query | PostgreSQL | arrow ({arrow['storage'] or 'memory'}) | {head} |")
    print("|---|---:|---:|" + "---:|" * len(runs))
    for i, spec in enumerate(EXPLORATION):
        cells = " | ".join(f"{r['warm_s'][i]:.2f}" for r in runs)
        print(
            f"| {i + 1}. {graphql(spec)[2:58]}… | {pg[i]:.2f} | {arrow['warm_s'][i]:.2f} | {cells} |"
        )
    cells = " | ".join(f"**{sum(r['warm_s']):.1f}**" for r in runs)
    print(f"| **session, warm** | **{sum(pg):.1f}** | **{sum(arrow['warm_s']):.1f}** | {cells} |")
    cells = " | ".join(f"{sum(pg) / sum(r['warm_s']):.2f}×" for r in runs)
    print(f"| PostgreSQL / plane | 1.00× | {sum(pg) / sum(arrow['warm_s']):.2f}× | {cells} |")
    cells = " | ".join(f"{r['load_s']:.1f}" for r in runs)
    print(f"| load (s) | – | {arrow['load_s']:.1f} | {cells} |")
    cells = " | ".join(f"{r['partitions']} / {r['workers']}" for r in runs)
    print(f"| partitions / workers | – | – | {cells} |")
    cells = " | ".join("yes" if r["agrees"] else "**NO**" for r in runs)
    print(f"| answers = arrow plane's | – | – | {cells} |")
    m = result["model"]
    if not m:
        return
    print(f"\nmodel (from the 1-node run; load work {m['load_work_s']:.1f} s in all):")
    print("| nodes | partitions | load, 16-core server | load, N-core server | session, warm |")
    print("|---:|---:|---:|---:|---:|")
    for row in m["table"]:
        print(
            f"| {row['nodes']} | {row['partitions']} | {row['load_server_16_s']:.1f} s"
            f" | {row['load_server_n_s']:.1f} s | {row['session_s']:.2f} s |"
        )
    print("\n" + " ".join(line.strip() for line in m["assumptions"].splitlines()))


if __name__ == "__main__":
    main()
