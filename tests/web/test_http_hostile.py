"""What one request may cost ``fraiseql-nb serve``, and what one client may hold: each
reproduction of an attack on the server, against a real ``serve`` process.

Clients come from distinct loopback addresses (127.0.0.2, 127.0.0.3…: every
127/8 address reaches a server on 127.0.0.1), so the server tells them apart
as it would two machines. Bounds on time are coarse (seconds where the attack
took minutes): they say "not held", not how fast.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from fraiseql_nb.web.http import ARROW_STREAM
from tests.web.serving import TOKEN, Served, serve

# A backtracking regular expression: over every user's name it runs for minutes.
COSTLY = '{ users(where: {name: {regex: "(.*){1,255}(.*){1,255}$"}}) { id } }'
CHEAP = "{ users(limit: 1) { id } }"


def call(
    served: Served,
    payload: Any = None,
    *,
    source: str = "127.0.0.1",
    method: str = "POST",
    path: str = "/graphql",
    headers: dict[str, str] | None = None,
    timeout: float = 60,
) -> tuple[int, Any, dict[str, str]]:
    """One request from ``source``: status, JSON body (or text), headers."""
    conn = http.client.HTTPConnection(
        "127.0.0.1", served.port, timeout=timeout, source_address=(source, 0)
    )
    try:
        body = None if payload is None else json.dumps(payload).encode()
        sent = {"Content-Type": "application/json", **(headers or {})} if body else headers
        conn.request(method, path, body=body, headers=sent or {})
        response = conn.getresponse()
        raw = response.read()
        answer: Any = raw.decode("utf-8", "replace")
        with contextlib.suppress(ValueError):
            answer = json.loads(raw)
        return response.status, answer, {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def message(answer: Any) -> str:
    assert isinstance(answer, dict), answer
    return str(answer["errors"][0]["message"])


def active(dsn: str) -> list[str]:
    """Statements of fraiseql-nb's planes running now."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT query FROM pg_stat_activity WHERE application_name LIKE 'fraiseql-nb%'"
            " AND state = 'active'"
        ).fetchall()
    return [r[0] for r in rows]


def until(condition: Any, timeout: float) -> float:
    """Seconds until ``condition()`` held; fails after ``timeout``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "waited in vain"
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.fixture(scope="module")
def timed(demo_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server whose requests may run 1.5 s each."""
    with serve(demo_dsn, tmp_path_factory.mktemp("timed"), max_request_s=1.5) as s:
        yield s


# ------------------------------------------------------------------ time


def test_a_request_stops_at_its_time_and_so_does_its_statement(
    timed: Served, demo_dsn: str
) -> None:
    started = time.monotonic()
    status, answer, _ = call(timed, {"query": COSTLY})
    took = time.monotonic() - started
    assert status == 503
    assert "max_request_s = 1.5 s" in message(answer) and "LINE" not in message(answer)
    assert took < 6  # minutes without the limit
    until(lambda: not active(demo_dsn), 2)  # cancelled on the server, not only answered
    # The connection it ran on went back with its own timeout: a cheap query is answered.
    status, answer, _ = call(timed, {"query": CHEAP})
    assert (status, answer) == (200, {"data": {"users": [{"id": 1}]}})


def test_the_root_fields_of_a_request_share_its_time(timed: Served) -> None:
    roots = " ".join(
        f'a{i}: users(where: {{name: {{regex: "(.*){{1,255}}(.*){{1,255}}$"}}}}) {{ id }}'
        for i in range(4)
    )
    started = time.monotonic()
    status, answer, _ = call(timed, {"query": f"{{ {roots} }}"})
    assert status == 503 and "all its root fields together" in message(answer)
    assert time.monotonic() - started < 6  # not four times the limit


def test_a_client_that_leaves_has_its_statement_cancelled(demo_dsn: str, tmp_path: Path) -> None:
    with serve(demo_dsn, tmp_path) as s:
        body = json.dumps({"query": COSTLY}).encode()
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as sock:
            sock.sendall(
                f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:{s.port}\r\nContent-Type:"
                f" application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            until(lambda: any("regex" in q or "~" in q for q in active(demo_dsn)), 10)
        # The client is gone: its statement is cancelled within a second.
        assert until(lambda: not active(demo_dsn), 3) < 1.5
        status, _, _ = call(s, {"query": CHEAP})
        assert status == 200


# ------------------------------------------------------------------ sharing


def test_one_client_cannot_keep_another_waiting(demo_dsn: str, tmp_path: Path) -> None:
    """17 costly requests at once once took the 16-connection pool, and another client's
    cheap query got 503 after 30 s: now one client has at most half the pool."""
    pool = {"FRAISEQL_CONNECTIONS_POOL_SIZE": "4"}
    with serve(demo_dsn, tmp_path, extra_env=pool, max_request_s=4) as s:
        outcomes: list[int] = []

        def costly() -> None:
            outcomes.append(call(s, {"query": COSTLY}, source="127.0.0.2")[0])

        threads = [threading.Thread(target=costly) for _ in range(6)]
        for t in threads:
            t.start()
        until(lambda: len(active(demo_dsn)) >= 2, 10)
        started = time.monotonic()
        status, answer, _ = call(s, {"query": CHEAP}, source="127.0.0.3")
        waited = time.monotonic() - started
        assert (status, answer) == (200, {"data": {"users": [{"id": 1}]}})
        assert waited < 3, waited
        for t in threads:
            t.join(timeout=30)
        # Two at a time ran (half the pool) until their time was up; the others waited
        # their turn, holding no connection, and were told 429 after max_request_s.
        assert len(outcomes) == 6 and set(outcomes) <= {429, 503}, outcomes
        assert outcomes.count(503) >= 2 and outcomes.count(429) >= 1, outcomes


def test_health_is_degraded_while_the_pool_is_exhausted(demo_dsn: str, tmp_path: Path) -> None:
    env = {"FRAISEQL_CONNECTIONS_POOL_SIZE": "2"}
    with serve(demo_dsn, tmp_path, extra_env=env, max_request_s=6, max_client_requests=8) as s:
        threads = [threading.Thread(target=call, args=(s, {"query": COSTLY})) for _ in range(4)]
        for t in threads:
            t.start()
        until(lambda: len(active(demo_dsn)) >= 2, 10)
        time.sleep(0.5)  # the other two wait for a connection
        status, health, _ = call(s, method="GET", path="/health")
        assert status == 200 and health["status"] == "degraded", health
        for t in threads:
            t.join(timeout=30)
        status, health, _ = call(s, method="GET", path="/health")
        assert health["status"] == "healthy"


def test_one_client_s_half_open_heads_do_not_shut_others_out(demo_dsn: str, tmp_path: Path) -> None:
    """70 request heads never finished once made every client get 503 for 10 s."""
    with serve(demo_dsn, tmp_path, max_connections=32) as s:
        held = []
        refused = 0
        for _ in range(70):
            sock = socket.socket()
            sock.bind(("127.0.0.2", 0))
            sock.connect(("127.0.0.1", s.port))
            sock.sendall(b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and no more
            held.append(sock)
        time.sleep(0.3)
        for sock in held:
            sock.settimeout(0.05)
            try:
                if sock.recv(100).startswith(b"HTTP/1.1 503"):
                    refused += 1
            except OSError:
                pass
        assert refused >= 70 - 32  # past the limit, its own oldest unused ones are closed
        started = time.monotonic()
        status, _, _ = call(s, {"query": CHEAP}, source="127.0.0.3")
        assert status == 200 and time.monotonic() - started < 3
        for sock in held:
            sock.close()


def test_parsing_a_large_request_does_not_hold_other_clients(demo_dsn: str, tmp_path: Path) -> None:
    """A 200 KB document of 10,000 terms is parsed off the event loop: another client's
    answer does not wait for the parse."""
    terms = ", ".join(f"{{id: {{eq: {i}}}}}" for i in range(10_000))
    big = {"query": f"{{ users(where: {{_or: [{terms}]}}, limit: 1) {{ id }} }}"}
    with serve(demo_dsn, tmp_path, max_list_length=20_000) as s:
        durations: list[float] = []
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                started = time.monotonic()
                call(s, big, source="127.0.0.2")
                durations.append(time.monotonic() - started)

        worker = threading.Thread(target=loop)
        worker.start()
        try:
            until(lambda: len(durations) >= 1, 60)
            latencies = []
            for _ in range(20):
                started = time.monotonic()
                status, _, _ = call(s, method="GET", path="/nothing", source="127.0.0.3")
                latencies.append(time.monotonic() - started)
                assert status == 404
                time.sleep(0.05)
        finally:
            stop.set()
            worker.join(timeout=60)
        # Before: a 404 waited for the whole parse (a median of 350 ms for a 0.6 s parse).
        assert statistics.median(latencies) < 0.25 * statistics.median(durations), (
            latencies,
            durations,
        )


# ------------------------------------------------------------------ size


def test_sixteen_window_roots_are_stopped_at_the_result_limit(
    demo_dsn: str, tmp_path: Path
) -> None:
    limit = {"FRAISEQL_LIMITS_MAX_RESULT_MB": "8"}
    roots = " ".join(
        f"w{i}: sales_window(orderBy: [{{id: ASC}}]) {{ id customer_id region revenue row_number }}"
        for i in range(16)
    )
    with serve(demo_dsn, tmp_path, extra_env=limit) as s:
        status, answer, _ = call(s, {"query": f"{{ {roots} }}"})
        assert status == 413 and "max_result_mb = 8 MB" in message(answer)
        status, _, _ = call(s, {"query": CHEAP})
        assert status == 200


# ------------------------------------------------------------------ HTTP details


def test_a_cors_preflight_needs_no_token(demo_dsn: str, tmp_path: Path) -> None:
    page = "https://app.example"
    with serve(demo_dsn, tmp_path, token=TOKEN, allowed_origins=page) as s:
        status, _, headers = call(
            s,
            method="OPTIONS",
            headers={
                "Origin": page,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert status == 200 and headers["access-control-allow-origin"] == page
        status, _, headers = call(
            s,
            {"query": CHEAP},
            headers={"Origin": page, "Authorization": f"Bearer {TOKEN}"},
        )
        assert status == 200 and headers["access-control-allow-origin"] == page
        status, _, _ = call(s, {"query": CHEAP}, headers={"Origin": page})
        assert status == 401  # the request itself still needs the token


def test_a_cross_site_get_without_an_origin_runs_nothing(timed: Served, demo_dsn: str) -> None:
    """An <img src=".../graphql?query=…"> on another site: no Origin, but the browser's
    Sec-Fetch-Site says where it came from."""
    path = "/graphql?query=" + COSTLY.replace(" ", "%20").replace("{", "%7B").replace("}", "%7D")
    for site in ("cross-site", "same-site"):
        status, answer, _ = call(timed, method="GET", path=path, headers={"Sec-Fetch-Site": site})
        assert status == 403 and "another site" in message(answer)
    assert not active(demo_dsn)
    cheap = "/graphql?query=%7Busers(limit:1)%7Bid%7D%7D"
    for headers in ({"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}, {}):
        status, _, _ = call(timed, method="GET", path=cheap, headers=headers)
        assert status == 200, headers


def test_a_trailing_slash_is_a_json_404(timed: Served) -> None:
    status, answer, headers = call(timed, method="GET", path="/graphql/")
    assert status == 404 and "/graphql" in message(answer)
    assert headers["content-type"].startswith("application/json")


def test_an_arrow_answer_of_several_roots_is_refused_before_it_runs(
    timed: Served, demo_dsn: str
) -> None:
    two = COSTLY.replace("{ users", "{ a: users", 1).removesuffix(" }") + " b: users { id } }"
    started = time.monotonic()
    status, answer, _ = call(timed, {"query": two}, headers={"Accept": ARROW_STREAM})
    assert status == 406 and "one root field" in message(answer)
    assert time.monotonic() - started < 1 and not active(demo_dsn)


def test_an_arrow_answer_through_fragments_or_directives_is_checked_once_computed(
    timed: Served,
) -> None:
    arrow = {"Accept": ARROW_STREAM}
    fragments = (
        "{ ...F } fragment F on Query { a: users(limit: 1) { id } b: users(limit: 1) { id } }"
    )
    status, answer, _ = call(timed, {"query": fragments}, headers=arrow)
    assert status == 406 and "one root field" in message(answer)
    skipped = "{ a: users(limit: 1) { id } b: users(limit: 1) @skip(if: true) { id } }"
    status, _, headers = call(timed, {"query": skipped}, headers=arrow)
    assert status == 200 and headers["content-type"] == ARROW_STREAM


def test_every_field_skipped_is_an_empty_object(timed: Served) -> None:
    status, answer, _ = call(timed, {"query": "{ users(limit: 2) { name @skip(if: true) } }"})
    assert (status, answer) == (200, {"data": {"users": [{}, {}]}})
