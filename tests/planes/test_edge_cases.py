"""Edge cases found by review: on each, the arrow plane agrees with PostgreSQL or
declines (and ``auto`` answers what PostgreSQL answers); bad input is a QueryError."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

import fraiseql_nb as fq
from fraiseql_nb.pg.conninfo import mask_dsn

EDGE_TABLE = """
CREATE TABLE tf_edge (
    id bigint PRIMARY KEY,
    name text,
    price numeric(12, 2),
    ratio float8,
    at timestamptz,
    day date
);
INSERT INTO tf_edge VALUES
    (1, 'sun', 0.10, 0.1, '2024-01-01 10:00+00', '2024-01-01'),
    (2, 'ſun', 0.20, 0.2, '2024-01-02 10:00+00', '2024-01-02'),
    (3, 'Kelvin', 1.00, 1e300, '2024-02-01 10:00+00', '2024-02-01'),
    (4, 'İstanbul', 2.50, 1.5, '2024-03-01 10:00+00', '2024-03-01'),
    (5, 'Über', NULL, NULL, NULL, NULL),
    (6, 'a\\b', 9999999999.99, 0.3, '2024-03-31 23:30+00', '2024-03-31');
CREATE TABLE tf_endless (id bigint PRIMARY KEY, amount float8, at timestamptz);
INSERT INTO tf_endless VALUES (1, 1, '-infinity'), (2, 2, '2024-01-01'), (3, 3, 'infinity');
"""


@pytest.fixture(scope="module")
def edge_dsn(server_dsn: str) -> Iterator[str]:
    from fraiseql_nb.local import demo

    name = "fq_edge_cases"
    dsn = demo.ensure_database(server_dsn, name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS tf_edge, tf_endless")
        conn.execute(EDGE_TABLE)
    yield dsn
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def edge(edge_dsn: str) -> Iterator[fq.Session]:
    with fq.connect(edge_dsn) as s:
        yield s


def outcome(session: fq.Session, query: str, backend: str) -> Any:
    """The rows a plane answers, or the QueryError's class when the query is refused."""
    try:
        result = session.execute(query, backend=backend)
    except fq.QueryError as exc:
        return ("QueryError", "does not compute" in str(exc))
    assert isinstance(result, fq.Result)
    return result.df.to_dicts()


DISAGREEMENTS = [
    # Case folding: ſ folds to s for Polars, not for PostgreSQL's lower(); İ lowers to i.
    '{ edge_aggregate(where: {name: {icontains: "s"}}) { count } }',
    '{ edge_aggregate(where: {name: {istartswith: "i"}}) { count } }',
    '{ edge_aggregate(where: {name: {iregex: "^k"}}) { count } }',
    '{ edge_aggregate(where: {name: {icontains: "Ü"}}) { count } }',
    # Regular expressions the two engines read differently, or one refuses.
    '{ edge_aggregate(where: {name: {regex: "\\\\<sun"}}) { count } }',
    '{ edge_aggregate(where: {name: {regex: "a**"}}) { count } }',
    '{ edge_aggregate(where: {name: {regex: "(?i)sun"}}) { count } }',
    '{ edge_aggregate(where: {name: {regex: "u{1000}"}}) { count } }',
    '{ edge_aggregate(where: {name: {like: "a\\\\\\\\b"}}) { count } }',
    # Decimals compare exactly; values with more digits than the column are left to PG.
    "{ edge_aggregate(where: {price: {eq: 0.1}}) { count } }",
    "{ edge_aggregate(where: {price: {eq: 0.101}}) { count } }",
    "{ edge_aggregate(where: {price: {lt: 1e38}}) { count } }",
    "{ edge_aggregate(where: {price: {in: [0.2, 2.5]}}) { count price_sum } }",
    # float8 measures sum as float8.
    "{ edge_aggregate { ratio_sum ratio_min ratio_max } }",
    # A time beyond year 9999 in UTC: PostgreSQL holds it, Polars does not.
    '{ edge_aggregate(where: {at: {lt: "9999-12-31T23:59:59-01:00"}}) { count } }',
    # Buckets come from the time column (UTC) on both planes.
    "{ edge_aggregate(groupBy: {at_month: true}, orderBy: {at_month: ASC}) { at_month count } }",
    "{ edge_aggregate(groupBy: {day_month: true}, orderBy: {day_month: ASC}) { day_month count } }",
    # ±infinity timestamps: outside what Polars holds, so arrow declines.
    "{ endless_aggregate { count amount_sum } }",
    "{ endless_aggregate(groupBy: {at_year: true}, orderBy: {at_year: ASC}) { at_year count } }",
]


@pytest.mark.parametrize("query", DISAGREEMENTS)
def test_arrow_agrees_or_declines_and_auto_answers_like_postgres(
    edge: fq.Session, query: str
) -> None:
    pg = outcome(edge, query, "postgres")
    ar = outcome(edge, query, "arrow")
    auto = outcome(edge, query, "auto")
    assert ar == pg or ar == ("QueryError", True), (query, pg, ar)
    assert auto == pg or (pg[0] == "QueryError" and auto[0] == "QueryError"), (query, pg, auto)
    assert pg[0] != "QueryError" or "regex" in query, f"{query} is refused by PostgreSQL too"


def test_the_folding_cases_really_differ_between_engines(edge: fq.Session) -> None:
    """Guards the test above: without declining, arrow would count ſun."""
    r = edge.execute('{ edge_aggregate(where: {name: {icontains: "s"}}) { count } }')
    assert isinstance(r, fq.Result)
    assert r.backend == "postgres" and r.df["count"][0] == 2  # sun, İstanbul
    with pytest.raises(fq.QueryError, match="fold to ASCII differently"):
        edge.execute(
            '{ edge_aggregate(where: {name: {icontains: "s"}}) { count } }', backend="arrow"
        )


def test_decimal_equality_is_exact_on_arrow(edge: fq.Session) -> None:
    r = edge.execute("{ edge_aggregate(where: {price: {eq: 0.1}}) { count } }", backend="arrow")
    assert isinstance(r, fq.Result) and r.df["count"][0] == 1


@pytest.mark.parametrize(
    ("query", "variables", "fragment"),
    [
        (
            '{ edge_aggregate(where: {at: {gt: "2024-01-01T00:00:00+16:00"}}) { count } }',
            None,
            "offset",
        ),
        (
            "query($v: Float) { edge_aggregate(where: {ratio: {gt: $v}}) { count } }",
            {"v": 10**5000},
            "v",
        ),
        ('{ edge_aggregate(where: {name: {eq: "\\ud800"}}) { count } }', None, "unicode"),
    ],
)
def test_values_no_plane_can_hold_are_query_errors(
    edge: fq.Session, query: str, variables: dict[str, Any] | None, fragment: str
) -> None:
    for backend in ("auto", "arrow", "postgres"):
        with pytest.raises(fq.QueryError) as info:
            edge.execute(query, variables, backend=backend)
        assert fragment in str(info.value).lower() or fragment in str(info.value)


def test_more_columns_than_postgresql_returns_is_a_query_error(edge: fq.Session) -> None:
    fields = " ".join(f"c{i}: count" for i in range(1700))
    with pytest.raises(fq.QueryError) as info:
        edge.execute(f"{{ edge_aggregate {{ {fields} }} }}", backend="postgres")
    assert "1664" in str(info.value) or "too many" in str(info.value)


def test_three_thousand_alternatives_answer_like_postgres(edge: fq.Session) -> None:
    items = ", ".join(f"{{id: {{eq: {i}}}}}" for i in range(3000))
    query = f"{{ edge_aggregate(where: {{_or: [{items}]}}) {{ count }} }}"
    counts = {b: edge.execute(query, backend=b).df["count"][0] for b in ("arrow", "postgres")}
    assert counts == {"arrow": 6, "postgres": 6}


def test_bad_arguments_to_the_api_are_clear_errors(edge: fq.Session, edge_dsn: str) -> None:
    with pytest.raises(fq.ConfigError, match="backend"):
        edge.explain("{ edge_aggregate { count } }", backend="duckdb")
    with pytest.raises(fq.ConfigError):
        fq.connect(edge_dsn, config=5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://u:Sekr3t%zz@/db?host=/tmp",
        "postgresql+psycopg://u:Sekr3t!@/db?host=/tmp",
        "POSTGRESQL://u:Sekr3t@h/db",
        "postgresql://u:Sekr3t@@h/db",
        "host=/tmp dbname=db password='Sekr3t",
        "host=/tmp dbname=db password = Sekr3t",
        "host=/tmp sslpassword=Sekr3t dbname=db",
        "postgresql:///db?password=Sekr3t&host=/tmp",
    ],
)
def test_masked_dsns_hold_no_password(dsn: str) -> None:
    assert "Sekr3t" not in mask_dsn(dsn)
    with pytest.raises(fq.FraiseQLError) as info:
        fq.connect(dsn)
    assert "Sekr3t" not in str(info.value)


@pytest.mark.parametrize("backend", ["arrow", "postgres", "auto"])
def test_typename_is_answered_in_aggregates_and_windows(edge: fq.Session, backend: str) -> None:
    query = "{ edge_aggregate(where: {id: {lt: 3}}) { count t: __typename price_sum } }"
    for _ in range(2):  # the second answer may come from a cache
        r = edge.execute(query, backend=backend)
        assert isinstance(r, fq.Result)
        assert r.df.columns == ["count", "t", "price_sum"]
        assert r.to_graphql()["data"]["edge_aggregate"][0]["t"] == "EdgeAggregate"
    w = edge.execute(
        "{ edge_window(orderBy: {id: ASC}, limit: 2) { __typename id row_number } }",
        backend=backend,
    )
    assert isinstance(w, fq.Result)
    assert w.to_dicts() == [
        {"__typename": "EdgeWindowRow", "id": 1, "row_number": 1},
        {"__typename": "EdgeWindowRow", "id": 2, "row_number": 2},
    ]
    with pytest.raises(fq.QueryError, match="selects nothing but __typename"):
        edge.execute("{ edge_aggregate { __typename } }", backend=backend)


@pytest.mark.parametrize(("backend", "node"), [("arrow", "Seq Scan"), ("postgres", "Aggregate")])
def test_explain_shows_the_plan_of_what_the_plane_sends(
    edge: fq.Session, backend: str, node: str
) -> None:
    plan = edge.explain("{ edge_aggregate { count } }", backend=backend, plan=True)
    assert plan["edge_aggregate"].backend == backend
    assert node in plan["edge_aggregate"].pg_plan
    assert "actual time" not in plan["edge_aggregate"].pg_plan
