"""The HTTP endpoints through a real uvicorn on loopback."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pyarrow as pa
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

import fraiseql_nb as fq
from fraiseql_nb.local import demo
from fraiseql_nb.web.http import ARROW_STREAM, create_app
from tests.web.serving import post


@pytest.fixture(scope="module")
def base_url(demo_dsn: str) -> Iterator[str]:
    with fq.connect(demo_dsn) as session, serving(session) as url:
        yield url


@contextmanager
def serving(session: fq.Session) -> Iterator[str]:
    """Serve ``session`` with uvicorn on a free loopback port."""
    config = uvicorn.Config(create_app(session), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.read(), resp.headers.get("content-type", "")
    except urllib.error.HTTPError as err:
        return err.code, err.read(), err.headers.get("content-type", "")


def test_graphql_answers_like_a_graphql_server(base_url: str) -> None:
    status, body, _ = post(
        f"{base_url}/graphql",
        {
            "query": "query ($n: Int) { users(limit: $n) { id name } sales_aggregate { count } }",
            "variables": {"n": 2},
        },
    )
    assert status == 200
    assert json.loads(body) == {
        "data": {
            "users": [{"id": 1, "name": "Émilie Martin"}, {"id": 2, "name": "Mateo Smith"}],
            "sales_aggregate": [{"count": 100000}],
        }
    }


def test_operation_name_and_backend_extension(base_url: str) -> None:
    body = {
        "query": "query A { users(limit: 1) { id } } query B { sales_aggregate { count } }",
        "operationName": "B",
        "extensions": {"backend": "postgres"},
    }
    status, out, _ = post(f"{base_url}/graphql", body)
    assert (status, json.loads(out)) == (200, {"data": {"sales_aggregate": [{"count": 100000}]}})


def test_arrow_stream_when_asked(base_url: str) -> None:
    status, body, ctype = post(
        f"{base_url}/graphql",
        {"query": "{ sales_aggregate(groupBy: {region: true}) { region count } }"},
        accept=ARROW_STREAM,
    )
    assert status == 200
    assert ctype == ARROW_STREAM
    table = pa.ipc.open_stream(body).read_all()
    assert table.column_names == ["region", "count"]
    assert sum(table["count"].to_pylist()) == 100_000
    status, _, _ = post(
        f"{base_url}/graphql",
        {"query": "{ a: users(limit: 1) { id } b: users(limit: 1) { id } }"},
        accept=ARROW_STREAM,
    )
    assert status == 406


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        # GraphQL request errors: 200 with errors under application/json (the spec's SHOULD)
        ({"query": "{ users { nme } }"}, 200, "Cannot query field 'nme' on type 'User'"),
        ({"query": "{ users(limit: -1) { id } }"}, 200, "limit must be 0 or more"),
        ({"query": "mutation { users { id } }"}, 200, "not supported"),
        (
            {"query": "{ users { id } }", "extensions": {"backend": "duck"}},
            200,
            "backend must be one of",
        ),
        # Requests that are not GraphQL-over-HTTP requests at all: 400
        ({"nothing": 1}, 400, "'query' string"),
        (b"not json", 400, "not valid JSON"),
    ],
)
def test_bad_requests_get_graphql_errors(
    base_url: str, body: Any, status: int, message: str
) -> None:
    got, out, _ = post(f"{base_url}/graphql", body)
    assert got == status
    assert "data" not in json.loads(out)
    errors = json.loads(out)["errors"]
    assert message in errors[0]["message"]
    if body == {"query": "{ users { nme } }"}:
        assert errors[0]["locations"] == [{"line": 1, "column": 11}]


def test_health_ready_and_metrics(base_url: str) -> None:
    status, body, _ = get(f"{base_url}/health")
    assert status == 200
    assert json.loads(body)["status"] == "healthy"
    status, body, _ = get(f"{base_url}/ready")
    assert (status, json.loads(body)["ready"]) == (200, True)
    status, body, ctype = get(f"{base_url}/metrics")
    assert status == 200
    assert ctype.startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(body.decode())}
    assert {
        "fraiseql_queries",
        "fraiseql_pool_connections",
        "fraiseql_query_duration_seconds",
    } <= names


def test_a_database_failure_is_a_503_without_the_password(
    scratch_dsn: str, server_dsn: str
) -> None:
    demo.load(scratch_dsn, demo.Counts(users=5, products=2, orders=3, sales=10))
    secret = "hunter2-not-shown"
    # The embedded server trusts local connections: the password is carried but unused.
    dsn = f"{scratch_dsn} password={secret}"
    with fq.connect(dsn) as session, serving(session) as url:
        query = {"query": "{ users(limit: 1) { id } }"}
        assert post(f"{url}/graphql", query)[:2] == (200, b'{"data":{"users":[{"id":1}]}}')
        name = psycopg.conninfo.conninfo_to_dict(scratch_dsn)["dbname"]
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            conn.execute(
                psycopg.sql.SQL("DROP DATABASE {} WITH (FORCE)").format(
                    psycopg.sql.Identifier(name)
                )
            )
        status, body, _ = post(f"{url}/graphql", query)
        assert status == 503
        assert secret not in body.decode()
        errors = json.loads(body)["errors"]
        assert len(errors) == 1 and errors[0]["message"]
        status, body, _ = get(f"{url}/health")
        assert status == 503
        health = json.loads(body)
        assert health["status"] == "unhealthy"
        # Statuses only, to a client without the token: no socket path, database, role.
        assert health["backends"]["wire"] == {"status": "unhealthy"}
        assert secret not in body.decode() and name not in body.decode()
        assert "socket" not in body.decode()
        status, body, _ = get(f"{url}/ready")
        assert (status, json.loads(body)) == (503, {"ready": False})
        metrics = get(f"{url}/metrics")[1].decode()
        assert secret not in metrics
        assert 'outcome="error"' in metrics


def test_uuid_keys_cross_http_as_text_in_json_and_arrow(conventions_dsn: str) -> None:
    query = "{ orders_aggregate(groupBy: {customer_id: true}, limit: 2) { customer_id count } }"
    with fq.connect(conventions_dsn) as session, serving(session) as url:
        expected = session.execute(query, backend="postgres").df.to_dicts()  # type: ignore[union-attr]
        status, body, _ = post(f"{url}/graphql", {"query": query})
        assert status == 200
        assert json.loads(body)["data"]["orders_aggregate"] == expected
        status, body, content_type = post(f"{url}/graphql", {"query": query}, accept=ARROW_STREAM)
        assert (status, content_type) == (200, ARROW_STREAM)
        table = pa.ipc.open_stream(body).read_all()
        assert pa.types.is_large_string(table.schema.field("customer_id").type)  # Polars' text
        assert table.to_pylist() == expected
    assert len(expected[0]["customer_id"]) == 36
