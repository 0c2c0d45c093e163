"""HTTP throughput: ``fraiseql-nb serve`` vs a hand-written Starlette + psycopg_pool floor.

Two servers on 127.0.0.1, one at a time, each a uvicorn process with one worker:

  (f) ``fraiseql-nb serve`` — the toolkit, every guard and the access log on
  (h) a minimal Starlette app that maps the same request body to hand-written SQL
      and runs it through an ``AsyncConnectionPool`` (the floor of this stack)

and two queries: a small row query (5 users) and an aggregate (revenue per
category of one region, with a variable), which ``serve`` answers from the arrow
plane's cache once loaded and the floor runs in PostgreSQL each time. For each
server, query and number of concurrent clients (keep-alive connections sending
one request after another), requests per second and p50/p99 latency over a
bounded duration. The client is a small asyncio HTTP/1.1 loop in this process,
the same for both servers.

    python benchmarks/http_load.py [--seconds 5] [--clients 1,4,16] [--dsn DSN]

Data: the ``small`` demo dataset (loaded the first time). (Not named http.py: a
script's folder comes first on ``sys.path``, and that name would hide the standard
library's ``http`` from every script here.) Prints a markdown
table, writes benchmarks/results/http.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

ROWS = "{ users(limit: 5) { id name email } }"
AGGREGATE = (
    "query ($region: String) { sales_aggregate(where: {region: {eq: $region}},"
    " groupBy: {category: true}) { category revenue_sum count } }"
)
# The floor: the same request bodies, answered by SQL an expert would write.
FLOOR_SQL = {
    ROWS: (
        "users",
        "SELECT id, data->>'name' AS name, data->>'email' AS email FROM v_user ORDER BY id LIMIT 5",
    ),
    AGGREGATE: (
        "sales_aggregate",
        "SELECT dimensions->>'category' AS category, sum(revenue)::float8 AS revenue_sum,"
        " count(*) AS count FROM tf_sales WHERE dimensions->>'region' = %(region)s"
        " GROUP BY 1",
    ),
}
CASES = [
    ("small row query (5 users)", {"query": ROWS}),
    (
        "cached aggregate (revenue by category, 1 region)",
        {"query": AGGREGATE, "variables": {"region": "EU"}},
    ),
]


def floor_app(dsn: str) -> Any:
    """The hand-written endpoint: body → SQL → rows → JSON, nothing else."""
    from contextlib import asynccontextmanager

    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    pool = AsyncConnectionPool(
        dsn,
        min_size=4,
        max_size=8,
        open=False,
        kwargs={"autocommit": True, "row_factory": dict_row},
    )

    @asynccontextmanager
    async def lifespan(_app: Any) -> Any:
        await pool.open()
        yield
        await pool.close()

    async def graphql(request: Request) -> JSONResponse:
        body = await request.json()
        key, sql = FLOOR_SQL[body["query"]]
        async with pool.connection() as conn:
            cur = await conn.execute(sql, body.get("variables") or {})
            rows = await cur.fetchall()
        return JSONResponse({"data": {key: rows}})

    return Starlette(routes=[Route("/graphql", graphql, methods=["POST"])], lifespan=lifespan)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(port: int, body: dict[str, Any]) -> bytes:
    payload = json.dumps(body).encode()
    return (
        f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nAccept: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: bytes) -> bytes:
    writer.write(req)
    head = await reader.readuntil(b"\r\n\r\n")
    status = head[9:12]
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    body = await reader.readexactly(length)
    if status != b"200":
        raise RuntimeError(f"HTTP {status.decode()}: {body[:300]!r}")
    return body


async def _load(port: int, body: dict[str, Any], clients: int, seconds: float) -> dict[str, Any]:
    req = _request(port, body)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                await _one(reader, writer, req)
                latencies.append(time.perf_counter() - t)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3,
    }


async def _check(port: int, body: dict[str, Any]) -> Any:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return json.loads(await _one(reader, writer, _request(port, body)))
    finally:
        writer.close()


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server did not start")


def _start(kind: str, dsn: str, port: int, home: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "FRAISEQL_DSN": dsn, "FRAISEQL_HOME": home}
    if kind == "fraiseql":
        cmd = [sys.executable, "-m", "fraiseql_nb", "serve", "--port", str(port)]
    else:
        cmd = [sys.executable, __file__, "--floor", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_ready(port, proc)
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _small_demo() -> str:
    from fraiseql_nb.local import demo

    counts = demo.SCALES["small"]
    target = demo.resolve_target(counts)
    demo.load(target, counts, if_missing=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=os.environ.get("FRAISEQL_DSN"))
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:
        import uvicorn

        uvicorn.run(
            floor_app(os.environ["FRAISEQL_DSN"]),
            host="127.0.0.1",
            port=args.port,
            log_level="warning",
            access_log=False,
        )
        return

    dsn = args.dsn or _small_demo()
    clients = [int(c) for c in args.clients.split(",")]
    runs: dict[str, dict[str, dict[str, Any]]] = {}
    answers: dict[str, list[Any]] = {}
    with tempfile.TemporaryDirectory() as home:
        for kind in ("floor", "fraiseql"):
            port = _free_port()
            proc = _start(kind, dsn, port, home)
            try:
                for name, body in CASES:
                    warm = dict(body)
                    # serve: load the fact table's columns before timing.
                    if kind == "fraiseql" and body["query"] == AGGREGATE:
                        warm["extensions"] = {"backend": "arrow"}
                    answers.setdefault(name, []).append(asyncio.run(_check(port, warm)))
                    asyncio.run(_load(port, body, 2, 1.0))  # warm-up
                    for n in clients:
                        r = asyncio.run(_load(port, body, n, args.seconds))
                        runs.setdefault(name, {})[f"{kind}/{n}"] = r
                        print(
                            f"  {kind:8} {name[:30]:30} {n:3} clients: {r['rps']:8.0f} req/s"
                            f"  p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms",
                            file=sys.stderr,
                        )
            finally:
                _stop(proc)
    for name, (floor, ours) in answers.items():
        if _canonical(floor) != _canonical(ours):
            raise SystemExit(f"{name}: the two servers answer differently:\n{floor}\n{ours}")

    lines = [
        f"HTTP on 127.0.0.1, {args.seconds:g} s per cell, keep-alive clients;"
        " floor = Starlette + psycopg_pool + hand-written SQL",
        "",
        "| query | clients | floor req/s | serve req/s | ratio | floor p50 / p99 ms |"
        " serve p50 / p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, cells in runs.items():
        for n in clients:
            f, s = cells[f"floor/{n}"], cells[f"fraiseql/{n}"]
            lines.append(
                f"| {name} | {n} | {f['rps']:,.0f} | {s['rps']:,.0f} | {s['rps'] / f['rps']:.2f}× |"
                f" {f['p50_ms']:.2f} / {f['p99_ms']:.2f} | {s['p50_ms']:.2f} / {s['p99_ms']:.2f} |"
            )
    print("\n".join(lines))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "http.json").write_text(
        json.dumps({"seconds": args.seconds, "clients": clients, "runs": runs}, indent=2) + "\n"
    )


def _canonical(answer: Any) -> Any:
    """Rows as sorted tuples of rounded values: the floor's ids are numbers, ours strings."""
    ((key, rows),) = answer["data"].items()
    out = []
    for row in rows:
        out.append(
            tuple(
                sorted((k, round(v, 6) if isinstance(v, float) else str(v)) for k, v in row.items())
            )
        )
    return key, sorted(out)


if __name__ == "__main__":
    main()
