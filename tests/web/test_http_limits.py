"""The HTTP endpoint's guards, tried with real requests against ``fraiseql-nb serve``.

Each server runs as its own process on 127.0.0.1, as a user starts it;
every loop and wait here is bounded.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from fraiseql_nb.web.http import GRAPHQL_RESPONSE
from tests.conftest import run_cli
from tests.web.serving import TOKEN, Served, free_port, graphql, message, request, serve


@pytest.fixture(scope="module")
def served(demo_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    settings = {
        "header_timeout_s": 1,
        "body_timeout_s": 1,
        "max_connections": 8,
        "max_client_connections": 64,  # the limit of all clients, here all on 127.0.0.1
    }
    with serve(demo_dsn, tmp_path_factory.mktemp("serve"), **settings) as s:
        yield s


# ------------------------------------------------------------------ size and cost


def test_a_small_query_is_answered(served: Served) -> None:
    status, answer = graphql(served, {"query": "{ users(limit: 2) { id } }"})
    assert status == 200
    assert answer == {"data": {"users": [{"id": 1}, {"id": 2}]}}


def post_early(served: Served, pieces: Iterator[bytes], headers: dict[str, str]) -> tuple[int, Any]:
    """POST /graphql as a careful client does: stop sending once the server has answered
    (a 413 comes before the body ends, and the server then closes; a client that writes
    on gets a broken pipe instead of the answer), then read the answer."""
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
        sock.sendall(
            f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n{head}\r\n".encode()
        )
        for piece in pieces:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break  # answered early
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break  # closed after answering: the answer is in the socket's buffer
        response = http.client.HTTPResponse(sock)
        response.begin()
        raw = response.read()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, raw.decode("utf-8", "replace")


def test_a_body_over_the_limit_is_413(served: Served) -> None:
    body = json.dumps({"query": "{ users { id } }", "pad": "x" * 1_100_000}).encode()
    pieces = (body[i : i + 65_536] for i in range(0, len(body), 65_536))
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    status, answer = post_early(served, pieces, headers)
    assert status == 413
    assert "max_body_bytes" in message(answer)


def test_a_chunked_body_over_the_limit_is_413(served: Served) -> None:
    """No Content-Length to trust: the body is counted as it arrives."""

    def chunks() -> Iterator[bytes]:
        parts = [b'{"query": "{ users { id } }", "pad": "', *[b"x" * 50_000] * 40, b'"}']
        for part in parts:
            yield f"{len(part):x}\r\n".encode() + part + b"\r\n"
        yield b"0\r\n\r\n"

    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    status, answer = post_early(served, chunks(), headers)
    assert status == 413
    assert "max_body_bytes" in message(answer)


def test_an_answer_over_the_result_limit_is_413_and_the_next_is_answered(
    demo_dsn: str, tmp_path: Path
) -> None:
    """[limits] max_result_mb holds per request, all root fields together."""
    limit = {"FRAISEQL_LIMITS_MAX_RESULT_MB": "1"}
    with serve(demo_dsn, tmp_path, extra_env=limit) as s:
        fields = "id name email status created_at address { city country zip } tags"
        status, answer = graphql(s, {"query": f"{{ a: users {{ {fields} }} b: users {{ id }} }}"})
        assert status == 413  # 0.8 MB, then 0.2 MB more
        assert "max_result_mb = 1 MB" in message(answer) and "limit:" in message(answer)
        roots = " ".join(f"a{i}: users(limit: 3000) {{ {fields} }}" for i in range(5))
        status, answer = graphql(s, {"query": f"{{ {roots} }}"})
        assert status == 413
        assert "other results" in message(answer)
        status, answer = graphql(s, {"query": "{ users(limit: 2) { id } }"})
        assert status == 200
        assert answer == {"data": {"users": [{"id": 1}, {"id": 2}]}}


def test_too_many_root_fields_are_refused_before_any_query_runs(served: Served) -> None:
    aliases = " ".join(f"a{i}: users(limit: 1) {{ id }}" for i in range(33))
    status, answer = graphql(served, {"query": f"{{ {aliases} }}"})
    assert status == 400
    assert "32 root fields" in message(answer) and "max_root_fields" in message(answer)


def test_a_fragment_spread_many_times_over_counts_every_field(served: Served) -> None:
    text = (
        "fragment A on User { a: id b: id c: id d: id e: id f: id g: id h: id i: id j: id }"
        " fragment B on User { ...A ...A ...A ...A ...A ...A ...A ...A ...A ...A }"
        " fragment C on User { ...B ...B ...B ...B ...B ...B ...B ...B ...B ...B }"
        " { users(limit: 1) { ...C ...C ...C } }"
    )
    status, answer = graphql(served, {"query": text})
    assert status == 400
    assert "max_fields" in message(answer)


def test_a_selection_nested_too_deep_is_refused(served: Served) -> None:
    text = "{ users { " + "address { " * 12 + "city" + " }" * 12 + " } }"
    status, answer = graphql(served, {"query": text})
    assert status == 400
    assert "max_depth" in message(answer)


@pytest.mark.parametrize("where", ["text", "variables"])
def test_a_list_longer_than_the_limit_is_refused(served: Served, where: str) -> None:
    ids = list(range(10_001))
    if where == "text":
        payload: dict[str, Any] = {
            "query": f"{{ users(where: {{id: {{in: {json.dumps(ids)}}}}}) {{ id }} }}"
        }
    else:
        payload = {
            "query": "query ($ids: [ID!]) { users(where: {id: {in: $ids}}) { id } }",
            "variables": {"ids": ids},
        }
    status, answer = graphql(served, payload)
    assert status == 400
    assert "max_list_length" in message(answer)


def test_a_list_within_the_limit_is_answered(served: Served) -> None:
    payload = {
        "query": "query ($ids: [ID!]) { users(where: {id: {in: $ids}}) { id } }",
        "variables": {"ids": list(range(1, 10_001))},
    }
    status, answer = graphql(served, payload)
    assert status == 200
    assert isinstance(answer, dict) and len(answer["data"]["users"]) > 0


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b'{"query": "{ users { id } }", "variables": {"a": Infinity}}',
        b'{"query": "{ users { id } }", "variables": {"a": NaN}}',
        b'{"query": ',
        b"\xff\xfe",
    ],
)
def test_bodies_that_are_not_json_are_400(served: Served, body: bytes) -> None:
    status, answer = graphql(served, body)
    assert status == 400
    assert message(answer).startswith("the body is not valid JSON")


@pytest.mark.parametrize(
    ("depth", "status"),
    # 100: a variable the query cannot take, a GraphQL request error (200 with errors
    # under application/json); 5,000: a body Python's JSON reader refuses (400).
    [(100, 200), (5_000, 400)],
)
def test_a_deeply_nested_variable_is_refused(served: Served, depth: int, status: int) -> None:
    deep = "[" * depth + "1" + "]" * depth
    body = (
        '{"query": "query ($d: JSON) { sales_window(orderBy: [{id: ASC}], limit: 1)'
        ' { id lag(field: revenue, default: $d) } }", "variables": {"d": ' + deep + "}}"
    ).encode()
    got, answer = graphql(served, body)
    assert got == status
    assert "nest" in message(answer) and "data" not in answer


# ------------------------------------------------------------------ who may call


def test_only_json_requests_are_taken(served: Served) -> None:
    """A web page can POST text/plain anywhere without asking; JSON needs CORS's consent."""
    body = json.dumps({"query": "{ users(limit: 1) { id } }"}).encode()
    status, answer = request(f"{served.url}/graphql", body, {"Content-Type": "text/plain"})
    assert status == 415
    assert "application/json" in message(answer)


def test_a_foreign_host_header_is_refused(served: Served) -> None:
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends its own Host."""
    status, _ = graphql(
        served, {"query": "{ users(limit: 1) { id } }"}, {"Host": f"evil.example:{served.port}"}
    )
    assert status == 400


def test_a_foreign_origin_is_refused_and_the_own_one_is_not(served: Served) -> None:
    payload = {"query": "{ users(limit: 1) { id } }"}
    status, answer = graphql(served, payload, {"Origin": "https://evil.example"})
    assert status == 403
    assert "allowed_origins" in message(answer)
    status, _ = graphql(served, payload, {"Origin": f"http://127.0.0.1:{served.port}"})
    assert status == 200


def test_a_database_failure_says_no_more_than_its_kind_to_an_unauthenticated_client(
    scratch_dsn: str, tmp_path: Path
) -> None:
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE tf_gone AS SELECT g::bigint AS id, g::float8 AS amount"
            " FROM generate_series(1, 10) g"
        )
    dbname = psycopg.conninfo.conninfo_to_dict(scratch_dsn)["dbname"]
    payload = {"query": "{ gone_aggregate { count } }", "extensions": {"backend": "postgres"}}
    with serve(scratch_dsn, tmp_path) as plain, serve(scratch_dsn, tmp_path, token=TOKEN) as auth:
        with psycopg.connect(scratch_dsn, autocommit=True) as conn:
            conn.execute("DROP TABLE tf_gone")
        status, answer = graphql(plain, payload)
        assert status == 503
        text = json.dumps(answer)
        assert "no longer exists" in text
        for private in (dbname, "/tmp", "pgdata", "postgres", "dsn"):
            assert private not in text
        status, answer = graphql(auth, payload, {"Authorization": f"Bearer {TOKEN}"})
        assert status == 503
        assert "public.tf_gone" in message(answer)
        assert "does not exist any more" in message(answer)


def test_a_token_is_required_when_set(demo_dsn: str, tmp_path: Path) -> None:
    with serve(demo_dsn, tmp_path, token=TOKEN) as s:
        payload = {"query": "{ users(limit: 1) { id } }"}
        status, answer = graphql(s, payload)
        assert status == 401
        assert "Bearer" in message(answer)
        status, _ = graphql(s, payload, {"Authorization": "Bearer wrong"})
        assert status == 401
        status, answer = graphql(s, payload, {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and answer == {"data": {"users": [{"id": 1}]}}
        assert request(f"{s.url}/metrics", method="GET")[0] == 401
        status, health = request(f"{s.url}/health", method="GET")
        assert status == 200 and isinstance(health, dict)  # statuses only without a token
        assert health["status"] == "healthy" and "pool" not in json.dumps(health)
        assert {b["status"] for b in health["backends"].values()} == {"healthy"}
        status, health = request(
            f"{s.url}/health", method="GET", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert status == 200 and isinstance(health, dict) and "pool" in json.dumps(health)
        log = s.stderr()
    assert "POST /graphql 401" in log and "POST /graphql 200" in log
    assert TOKEN not in log and "users(limit" not in log


# ------------------------------------------------------------------ slow clients


def test_a_client_that_never_finishes_its_headers_is_disconnected(served: Served) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        assert sock.recv(1024) == b""  # closed by the server (header_timeout_s = 1)
        assert time.monotonic() - started < 8


def test_a_body_that_never_arrives_is_408(served: Served) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"query"'
        )
        started = time.monotonic()
        reply = sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 408")
        assert time.monotonic() - started < 8


# ------------------------------------------------------------------ starting the server


def test_serve_refuses_a_password_on_the_command_line(demo_dsn: str) -> None:
    out = run_cli("serve", "--dsn", "postgresql://u:Sekr3t!@127.0.0.1:1/db", timeout=60)
    assert out.returncode != 0
    assert "process list" in out.stderr
    assert "Sekr3t" not in out.stderr + out.stdout


def test_serve_refuses_to_go_beyond_loopback_without_a_token(demo_dsn: str) -> None:
    out = run_cli("serve", "--host", "0.0.0.0", env={"FRAISEQL_DSN": demo_dsn}, timeout=60)
    assert out.returncode != 0
    assert "FRAISEQL_SERVER_TOKEN" in out.stderr


def test_serve_help_says_where_a_password_goes() -> None:
    out = run_cli("serve", "--help", timeout=60)
    assert out.returncode == 0
    assert "--dsn-file" in out.stdout and "FRAISEQL_DSN" in out.stdout
    assert "FRAISEQL_SERVER_TOKEN" in out.stdout


def test_serve_reads_the_dsn_from_a_file(demo_dsn: str, tmp_path: Path) -> None:
    dsn_file = tmp_path / "dsn"
    dsn_file.write_text(demo_dsn + "\n", encoding="utf-8")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAISEQL_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fraiseql_nb", "serve", "--port", str(port), "--dsn-file", dsn_file],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        status: int | None = None
        while status is None and time.monotonic() < deadline:
            assert proc.poll() is None
            try:
                status, _ = request(f"http://127.0.0.1:{port}/health", method="GET")
            except OSError:
                time.sleep(0.1)
        assert status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=15)


# ------------------------------------------------------------------ every answer is JSON


def raw(served: Served, data: bytes, timeout: float = 20) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` as is on a new connection; (status, headers, body) of the answer."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=timeout) as sock:
        sock.sendall(data)
        reply = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def json_error(headers: dict[str, str], body: bytes) -> str:
    assert "json" in headers["content-type"], headers
    return str(json.loads(body)["errors"][0]["message"])


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_get_a_json_405(served: Served, method: str) -> None:
    status, headers, body = raw(
        served,
        f"{method} /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n".encode(),
    )
    assert status == 405
    assert json_error(headers, body) == f"{method} is not allowed on /graphql: use GET, HEAD, POST"
    assert headers["allow"] == "GET, HEAD, POST"


def test_unknown_paths_and_hosts_get_json(served: Served) -> None:
    status, answer = request(f"{served.url}/nowhere", method="GET")
    assert status == 404
    assert message(answer).startswith("there is nothing at /nowhere; this server answers /graphql")
    status, headers, body = raw(
        served, b"GET /health HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    )
    assert status == 400
    assert json_error(headers, body) == "Invalid host header"


def test_head_is_a_get_without_a_body(served: Served) -> None:
    target = "/graphql?query=%7Busers(limit%3A1)%7Bid%7D%7D"
    get = raw(
        served, f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    )
    head = raw(
        served, f"HEAD {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    )
    assert get[0] == head[0] == 200
    assert json.loads(get[2]) == {"data": {"users": [{"id": 1}]}}
    assert head[2] == b""
    assert head[1]["content-type"] == get[1]["content-type"]
    assert head[1]["content-length"] == str(len(get[2]))


def test_a_repeated_parameter_is_400(served: Served) -> None:
    url = f"{served.url}/graphql?query=%7Busers%7Bid%7D%7D&query=%7Bproducts%7Bid%7D%7D"
    status, answer = request(url, method="GET", headers={"Accept": GRAPHQL_RESPONSE})
    assert status == 400
    assert message(answer) == "the query parameter is given 2 times; give it once"


@pytest.mark.parametrize("size", [70_000, 3_000_000])
def test_a_url_over_the_limit_is_a_json_414(served: Served, size: int) -> None:
    """Just over [server] max_url_bytes the app says so; far over it, the server does,
    and reads what the client still sends so the answer is not lost to a reset."""
    query = "{ users(limit: 1) { id } }" + " " * size
    target = "/graphql?query=" + query.replace(" ", "%20")
    status, headers, body = raw(
        served, f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    )
    assert status == 414
    assert json_error(headers, body).startswith("the URL is longer than 65,536 bytes")


def test_headers_too_large_and_garbage_get_json(served: Served) -> None:
    big = "X-Filler: " + "a" * 100_000
    status, headers, body = raw(
        served, f"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n{big}\r\n\r\n".encode()
    )
    assert (status, json_error(headers, body)) == (
        431,
        "the request's headers are larger than 16,384 bytes",
    )
    status, headers, body = raw(served, b"NOT HTTP AT ALL\r\n\r\n")
    assert (status, json_error(headers, body)) == (400, "this is not a valid HTTP/1.1 request")


def test_over_the_connection_limit_is_a_json_503(served: Served) -> None:
    idle = [socket.create_connection(("127.0.0.1", served.port), timeout=5) for _ in range(8)]
    try:
        time.sleep(0.2)
        status, headers, body = raw(
            served, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
    finally:
        for sock in idle:
            sock.close()
    assert status == 503
    assert "connection limit" in json_error(headers, body)
