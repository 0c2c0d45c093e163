"""Shared by the HTTP tests: ``fraiseql-nb serve`` run as a user starts it (its own process
on a free loopback port), and requests to it, every wait bounded."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOKEN = "t0ken-for-tests-only"


@dataclass
class Served:
    url: str
    port: int
    proc: subprocess.Popen[str]
    log: Path

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(
    dsn: str, tmp: Path, extra_env: dict[str, str] | None = None, **settings: Any
) -> Iterator[Served]:
    """``fraiseql-nb serve`` on a free loopback port, ``settings`` as FRAISEQL_SERVER_*."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAISEQL_SERVER_")}
    env.update(extra_env or {})
    env["FRAISEQL_DSN"] = dsn
    for key, value in settings.items():
        env[f"FRAISEQL_SERVER_{key.upper()}"] = str(value)
    log = tmp / f"serve-{port}.log"
    with open(log, "w", encoding="utf-8") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fraiseql_nb", "serve", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
            text=True,
        )
    served = Served(f"http://127.0.0.1:{port}", port, proc, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"serve exited: {served.stderr()}"
            assert time.monotonic() < deadline, f"serve did not start: {served.stderr()}"
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        yield served
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def request(
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    method: str = "POST",
) -> tuple[int, dict[str, Any] | str]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def graphql(served: Served, payload: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return request(
        f"{served.url}/graphql", body, {"Content-Type": "application/json", **(headers or {})}
    )


def message(answer: Any) -> str:
    assert isinstance(answer, dict), answer
    return str(answer["errors"][0]["message"])


def post(url: str, body: Any, accept: str | None = "application/json") -> tuple[int, bytes, str]:
    """POST ``body`` as JSON; ``accept`` None sends no Accept header."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if accept is not None:
        headers["Accept"] = accept
    req = urllib.request.Request(url, data=data, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read(), resp.headers.get("content-type", "")
    except urllib.error.HTTPError as err:
        return err.code, err.read(), err.headers.get("content-type", "")
