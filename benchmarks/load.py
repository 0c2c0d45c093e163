"""Time the demo loader at each scale and check what it produced.

Each scale is loaded into its own database on a fresh embedded server in a
temporary folder (or on $FRAISEQL_DSN's server when set), twice: a first
load into an empty database and a reload over it. Prints a markdown table
and writes benchmarks/results/load.json.

    python benchmarks/load.py [--scales small,medium,large]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import psycopg

from fraiseql_nb.local import demo, embedded

RESULTS = Path(__file__).resolve().parent / "results" / "load.json"


def measure(server_dsn: str, scale: str) -> dict[str, object]:
    counts = demo.SCALES[scale]
    dsn = demo.ensure_database(server_dsn, f"bench_load_{scale}")
    first = demo.load(dsn, counts)
    reload = demo.load(dsn, counts)
    with psycopg.connect(dsn) as conn:
        got = conn.execute(
            "SELECT (SELECT count(*) FROM tb_user), (SELECT count(*) FROM tb_product),"
            " (SELECT count(*) FROM tb_order), (SELECT count(*) FROM tf_sales),"
            " pg_database_size(current_database())"
        ).fetchone()
    assert got[:4] == (counts.users, counts.products, counts.orders, counts.sales), got
    return {
        "scale": scale,
        "users": counts.users,
        "products": counts.products,
        "orders": counts.orders,
        "sales": counts.sales,
        "first_load_s": round(first.seconds, 2),
        "reload_s": round(reload.seconds, 2),
        "database_mb": round(got[4] / 2**20),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="small,medium,large")
    args = parser.parse_args()
    scales = [s for s in args.scales.split(",") if s]
    for scale in scales:
        if scale not in demo.SCALES:
            parser.error(f"unknown scale {scale!r} (choose from {', '.join(demo.SCALES)})")

    home = None
    server_dsn = os.environ.get("FRAISEQL_DSN")
    if not server_dsn:
        home = Path(tempfile.mkdtemp(prefix="fqb-", dir="/tmp"))
        server_dsn = embedded.start(home).dsn()
    try:
        rows = [measure(server_dsn, scale) for scale in scales]
    finally:
        if home is not None:
            embedded.stop(home)
            shutil.rmtree(home, ignore_errors=True)

    print("| scale | users | sales | first load (s) | reload (s) | database (MB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['scale']} | {r['users']:,} | {r['sales']:,} | {r['first_load_s']} "
            f"| {r['reload_s']} | {r['database_mb']:,} |"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                "server": "embedded" if home else "$FRAISEQL_DSN",
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
