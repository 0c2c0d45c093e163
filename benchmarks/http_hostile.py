"""What a hostile client costs ``fraiseql-nb serve``'s other clients.

Each case starts ``serve`` (from this checkout, or from ``--code DIR``: another
checkout, to compare with the code before a change in the same run), attacks
it from 127.0.0.2 and measures what a well-behaved client on 127.0.0.3 sees:

- parse: one client posts a 219 KB ``_or`` of 10,000 terms in a loop; the other's
  GET of an unknown path (a 404, no database) — its latency, against the same
  GET with no attacker;
- share: 17 costly requests at once (a backtracking regular expression that
  runs for minutes); the other's cheap query: how long until it is answered;
- leave: a costly request whose client disconnects after 1 s: how long its
  statement still runs on the server;
- jaccard: ``jaccard_distance`` with 10,000 values over every user.

Statements left running by a case are terminated before the next.

Prints a markdown table, writes benchmarks/results/http_hostile.json.

    python benchmarks/http_hostile.py [--dsn DSN] [--code DIR]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from fraiseql_nb.local import demo

HERE = Path(__file__).resolve().parent
COSTLY = '{ users(where: {name: {regex: "(.*){1,255}(.*){1,255}$"}}) { id } }'
CHEAP = "{ users(limit: 1) { id } }"


def call(port: int, payload: Any, source: str, path: str = "/graphql", timeout: float = 120) -> int:
    conn = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=timeout, source_address=(source, 0)
    )
    try:
        if payload is None:
            conn.request("GET", path)
        else:
            body = json.dumps(payload).encode()
            conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@contextmanager
def serve(dsn: str, code: Path | None, **env: str) -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FRAISEQL_")}
    environ.update(env, FRAISEQL_DSN=dsn, FRAISEQL_SERVER_ACCESS_LOG="false")
    if code is not None:
        environ["PYTHONPATH"] = str(code)
    proc = subprocess.Popen(
        [sys.executable, "-m", "fraiseql_nb", "serve", "--port", str(port)],
        cwd=code or HERE.parent,  # -m puts the working directory first on sys.path
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def running(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'fraiseql-nb%'"
            " AND state = 'active'"
        ).fetchone()
    return int(row[0]) if row else 0


def terminate(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name LIKE 'fraiseql-nb%'"
        )


def case_parse(dsn: str, code: Path | None) -> dict[str, float]:
    terms = ", ".join(f"{{id: {{eq: {i}}}}}" for i in range(10_000))
    big = {"query": f"{{ users(where: {{_or: [{terms}]}}, limit: 1) {{ id }} }}"}
    with serve(dsn, code, FRAISEQL_SERVER_MAX_LIST_LENGTH="20000") as port:
        quiet = []
        for _ in range(30):
            started = time.perf_counter()
            call(port, None, "127.0.0.3", "/nothing")
            quiet.append(time.perf_counter() - started)
        stop = threading.Event()
        parses: list[float] = []

        def loop() -> None:
            while not stop.is_set():
                started = time.perf_counter()
                call(port, big, "127.0.0.2")
                parses.append(time.perf_counter() - started)

        worker = threading.Thread(target=loop)
        worker.start()
        time.sleep(1.0)
        loaded = []
        for _ in range(30):
            started = time.perf_counter()
            call(port, None, "127.0.0.3", "/nothing")
            loaded.append(time.perf_counter() - started)
            time.sleep(0.03)
        stop.set()
        worker.join()
    return {
        "404 ms, quiet (median)": statistics.median(quiet) * 1e3,
        "404 ms, beside the parser (median)": statistics.median(loaded) * 1e3,
        "404 ms, beside the parser (max)": max(loaded) * 1e3,
        "big request ms (median)": statistics.median(parses) * 1e3,
    }


def case_share(dsn: str, code: Path | None) -> dict[str, float]:
    with serve(dsn, code) as port:
        threads = [
            threading.Thread(target=call, args=(port, {"query": COSTLY}, "127.0.0.2"))
            for _ in range(17)
        ]
        for t in threads:
            t.start()
        # Until the pool has grown to what the attacker can take (psycopg_pool opens
        # connections a few at a time).
        seen, steady = 0, time.monotonic()
        while time.monotonic() - steady < 1.5:
            now = running(dsn)
            if now > seen:
                seen, steady = now, time.monotonic()
            time.sleep(0.1)
        started = time.perf_counter()
        status = call(port, {"query": CHEAP}, "127.0.0.3", timeout=60)
        waited = time.perf_counter() - started
        costly_running = running(dsn)
        terminate(dsn)
        for t in threads:
            t.join(timeout=120)
    return {
        "cheap query s": waited,
        "cheap query status": status,
        "costly statements running": costly_running,
    }


def case_leave(dsn: str, code: Path | None) -> dict[str, float]:
    with serve(dsn, code) as port:
        body = json.dumps({"query": COSTLY}).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                f"\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            time.sleep(1.0)
        gone = time.perf_counter()
        while running(dsn) and time.perf_counter() - gone < 30:
            time.sleep(0.02)
        after = time.perf_counter() - gone
        terminate(dsn)
    return {"statement ran on after the client left, s": after}


def case_jaccard(dsn: str, code: Path | None) -> dict[str, float]:
    values = [f"t{i}" for i in range(10_000)] + ["vip", "beta"]
    query = (
        "query ($v: [String!]!) { users(where: {tags: {jaccard_distance:"
        " {values: $v, threshold: 0.99}}}, limit: 3) { id } }"
    )
    with serve(dsn, code, FRAISEQL_SERVER_MAX_LIST_LENGTH="20000") as port:
        started = time.perf_counter()
        status = call(port, {"query": query, "variables": {"v": values}}, "127.0.0.3")
        took = time.perf_counter() - started
        terminate(dsn)
    return {"jaccard 10k values s": took, "jaccard status": status}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", help="a database with the demo data (default: embedded)")
    parser.add_argument("--code", type=Path, help="run serve from this checkout (a baseline)")
    args = parser.parse_args()
    dsn = args.dsn or demo.resolve_target(demo.SCALES["small"])
    demo.load(dsn, demo.SCALES["small"], if_missing=True)
    label = str(args.code or "this checkout")
    out: dict[str, Any] = {"code": label}
    for case in (case_parse, case_share, case_leave, case_jaccard):
        out.update(case(dsn, args.code))
    print(f"| {label} | |\n|---|---|")
    for key, value in out.items():
        if key != "code":
            print(
                f"| {key} | {value:,.2f} |" if isinstance(value, float) else f"| {key} | {value} |"
            )
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    name = "http_hostile" + ("_baseline" if args.code else "") + ".json"
    (results / name).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
