"""``fraiseql-nb serve`` against the GraphQL over HTTP specification, with real clients:
graphql-http's conformance audit (the specification's reference implementation, on
Node) and the Python ``gql`` client, which fetches the schema by introspection first."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from graphql import GraphQLError

from tests.conftest import REPO
from tests.web.serving import TOKEN, Served, graphql, message, post, request, serve

AUDIT = Path(__file__).parent / "http_audit"
DOC = REPO / "docs" / "http.md"
SERVED = "http://127.0.0.1:8000"
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


@pytest.fixture(scope="module")
def served(demo_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(demo_dsn, tmp_path_factory.mktemp("gql-http")) as s:
        yield s


@pytest.fixture(scope="module")
def guarded(demo_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(demo_dsn, tmp_path_factory.mktemp("gql-http-token"), token=TOKEN) as s:
        yield s


def _audit(url: str, token: str | None = None) -> list[dict[str, Any]]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js and npm are not installed: graphql-http's audit runs on Node")
    if not (AUDIT / "node_modules" / "graphql-http").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=AUDIT, check=True, timeout=600)
    env = {"PATH": str(Path(node).parent)}
    if token:
        env["AUDIT_TOKEN"] = token
    done = subprocess.run(
        [node, "audit.mjs", url],
        cwd=AUDIT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=True,
    )
    return list(json.loads(done.stdout))


@pytest.mark.parametrize("with_token", [False, True])
def test_the_graphql_over_http_audit_finds_nothing(
    served: Served, guarded: Served, with_token: bool
) -> None:
    server = guarded if with_token else served
    results = _audit(f"{server.url}/graphql", TOKEN if with_token else None)
    assert len(results) >= 61  # graphql-http 1.23: 61 audits
    failed = [r for r in results if r["status"] != "ok"]
    assert failed == [], json.dumps(failed, indent=1)


# ------------------------------------------------------------- media types, codes


def _post(served: Served, payload: Any, accept: str | None) -> tuple[int, Any, str]:
    status, body, ctype = post(f"{served.url}/graphql", payload, accept)
    return status, json.loads(body), ctype


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        ("application/graphql-response+json", "application/graphql-response+json"),
        (
            "application/graphql-response+json, application/json;q=0.9",
            "application/graphql-response+json",
        ),
        ("application/json, application/graphql-response+json;q=0.5", "application/json"),
    ],
)
def test_the_answer_comes_in_the_media_type_asked_for(
    served: Served, accept: str | None, media: str
) -> None:
    status, body, ctype = _post(served, {"query": "{ users(limit: 1) { id name } }"}, accept)
    assert (status, ctype) == (200, f"{media}; charset=utf-8")
    assert body == {"data": {"users": [{"id": 1, "name": "Émilie Martin"}]}}
    status, body, ctype = _post(served, {"query": "{ users { nme } }"}, accept)
    # A request error: 200 under application/json, 400 under the new media type.
    assert status == (200 if media == "application/json" else 400)
    assert ctype == f"{media}; charset=utf-8"
    assert "data" not in body
    assert body["errors"][0]["locations"] == [{"line": 1, "column": 11}]


def test_an_accept_header_naming_nothing_it_serves_is_a_406(served: Served) -> None:
    status, body, _ = _post(served, {"query": "{ __typename }"}, "text/html")
    assert status == 406
    assert "application/graphql-response+json" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"query": "{ __typename }", "variables": "x"}, "variables must be a JSON object"),
        ({"query": "{ __typename }", "extensions": [1]}, "extensions must be a JSON object"),
        ({"query": "{ __typename }", "operationName": 1}, "operationName must be a string"),
        ({"query": 1}, "'query' string"),
        ([], "'query' string"),
    ],
)
def test_parameters_of_the_wrong_type_are_400(served: Served, payload: Any, problem: str) -> None:
    status, answer = graphql(served, payload)
    assert status == 400
    assert problem in message(answer)


def test_null_parameters_are_as_if_absent(served: Served) -> None:
    payload = {"query": "{ __typename }", "variables": None, "operationName": None}
    payload["extensions"] = None
    assert graphql(served, payload) == (200, {"data": {"__typename": "Query"}})


def _get(served: Served, headers: dict[str, str] | None = None, **params: Any) -> Any:
    query = urllib.parse.urlencode(
        {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
    )
    return request(f"{served.url}/graphql?{query}", None, headers or {}, method="GET")


def test_get_runs_queries_with_variables_from_the_url(served: Served) -> None:
    status, answer = _get(
        served,
        query="query Top($n: Int) { users(limit: $n) { id } }",
        variables={"n": 2},
        operationName="Top",
    )
    assert (status, answer) == (200, {"data": {"users": [{"id": 1}, {"id": 2}]}})


def test_get_refuses_mutations_with_405(served: Served) -> None:
    status, answer = _get(served, query="mutation { __typename }")
    assert status == 405
    assert "POST" in message(answer)


def test_get_keeps_the_limits_and_the_token(served: Served, guarded: Served) -> None:
    aliases = " ".join(f"a{i}: __typename" for i in range(33))
    status, answer = _get(served, query=f"{{ {aliases} }}")
    assert status == 400 and "max_root_fields" in message(answer)
    status, answer = _get(guarded, query="{ users(limit: 1) { id } }")
    assert status == 401
    status, answer = _get(
        guarded, {"Authorization": f"Bearer {TOKEN}"}, query="{ users(limit: 1) { id } }"
    )
    assert (status, answer) == (200, {"data": {"users": [{"id": 1}]}})
    status, _ = _get(served, {"Host": "evil.example"}, query="{ __typename }")
    assert status == 400


# ------------------------------------------------------------------- gql client


def test_the_gql_client_fetches_the_schema_and_runs_queries(served: Served) -> None:
    from gql import Client, gql
    from gql.transport.exceptions import TransportQueryError
    from gql.transport.requests import RequestsHTTPTransport

    transport = RequestsHTTPTransport(url=f"{served.url}/graphql", timeout=30)
    client = Client(transport=transport, fetch_schema_from_transport=True)
    with client as session:
        # The schema came by introspection: gql validates queries against it locally.
        assert client.schema is not None
        assert sorted(client.schema.get_type("UserAddress").fields) == ["city", "country", "zip"]
        rows = session.execute(gql("{ users(limit: 2) { id name address { city } } }"))
        assert rows == {
            "users": [
                {"id": 1, "name": "Émilie Martin", "address": {"city": "Montréal"}},
                {"id": 2, "name": "Mateo Smith", "address": {"city": "Berlin"}},
            ]
        }
        request = gql(
            "query ($region: String) { sales_aggregate(where: {region: {eq: $region}}) { count } }"
        )
        request.variable_values = {"region": "EU"}
        totals = session.execute(request)
        expected = graphql(
            served,
            {"query": '{ sales_aggregate(where: {region: {eq: "EU"}}) { count } }'},
        )
        assert totals == expected[1]["data"] == {"sales_aggregate": [{"count": 37433}]}
        with pytest.raises(TransportQueryError) as info:
            session.execute(gql("{ users(limit: -1) { id } }"))
        errors = info.value.errors
        assert errors is not None and "limit must be 0 or more" in errors[0]["message"]
        with pytest.raises(GraphQLError, match="Cannot query field 'nme'"):
            session.execute(gql("{ users { nme } }"))  # refused by gql, from the schema


# ------------------------------------------------------------------ docs/http.md


def _doc_examples() -> list[tuple[str, str, str | None]]:
    """(language, code, the output shown after it) of each example calling the server."""
    found = _BLOCK.findall(DOC.read_text("utf-8"))
    examples = []
    for i, (language, code) in enumerate(found):
        if language in ("bash", "python") and f"{SERVED}/graphql" in code:
            after = found[i + 1] if i + 1 < len(found) else ("", "")
            examples.append((language, code, after[1] if after[0] in ("json", "text") else None))
    return examples


def test_the_http_docs_examples_run_as_written(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    examples = _doc_examples()
    assert len(examples) >= 8
    monkeypatch.chdir(tmp_path)
    for language, code, shown in examples:
        code = code.replace(SERVED, served.url)
        if language == "bash":
            done = subprocess.run(
                ["bash", "-c", code], capture_output=True, text=True, timeout=60, check=True
            )
            printed = done.stdout
        else:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(code, "docs/http.md example", "exec"), {})
            printed = out.getvalue()
        if shown is not None:
            assert printed.strip() == shown.strip(), code


def test_a_fraiseql_request_in_the_variables_gets_fraiseqls_rows(
    served: Served, demo_dsn: str
) -> None:
    """A FraiseQL client posts ``{ sales_aggregate }`` with the request in its variables:
    it gets the rows, under the root field, as FraiseQL answers them."""
    import psycopg

    request_vars = {
        "table": "tf_sales",
        "groupBy": {"region": True},
        "aggregates": [{"count": {}}, {"revenue_sum": {}}],
        "having": {"count_gte": 15000},
        "orderBy": {"count": "DESC"},
    }
    status, answer = graphql(served, {"query": "{ sales_aggregate }", "variables": request_vars})
    with psycopg.connect(demo_dsn) as conn:
        want = conn.execute(
            "SELECT dimensions ->> 'region', count(*), sum(revenue)::float8 FROM tf_sales"
            " GROUP BY 1 HAVING count(*) >= 15000 ORDER BY 2 DESC"
        ).fetchall()
    assert status == 200 and len(want) >= 2
    rows = answer["data"]["sales_aggregate"]
    assert [(r["region"], r["count"]) for r in rows] == [(w[0], w[1]) for w in want]
    assert [r["revenue_sum"] for r in rows] == pytest.approx([w[2] for w in want])
    status, answer = graphql(
        served, {"query": "{ sales_aggregate }", "variables": {**request_vars, "groupby": {}}}
    )
    assert status == 200 and "unknown key 'groupby'" in message(answer)
