"""The row plane's SQL on stored documents: indexes a user made on document
expressions serve its filters, and a value of another JSON kind than the sample
showed costs no error and no wrong answer."""

from __future__ import annotations

import psycopg
import pytest

import fraiseql_nb as fq

THINGS = """
CREATE TABLE tv_thing (id bigint PRIMARY KEY, data jsonb NOT NULL);
INSERT INTO tv_thing SELECT g, jsonb_build_object(
    'id', g, 'kind', CASE WHEN g % 5000 = 0 THEN 'rare' ELSE 'common' END,
    'n', g % 100, 'title', 'thing ' || g)
FROM generate_series(1, 20000) g;
CREATE INDEX thing_kind ON tv_thing ((data ->> 'kind'));
CREATE INDEX thing_n ON tv_thing (((data ->> 'n')::bigint));
ANALYZE tv_thing;
"""


@pytest.fixture
def things(scratch_dsn: str) -> str:
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute(THINGS)
    return scratch_dsn


def test_an_expression_index_on_a_text_field_serves_its_filter(things: str) -> None:
    with fq.connect(things) as s:
        plan = s.explain('{ things(where: {kind: {eq: "rare"}}) { id title } }', plan=True)
        text = plan["things"].pg_plan
        assert "thing_kind" in text and ("Index Scan" in text or "Bitmap" in text), text
        r = s.execute('{ things(where: {kind: {eq: "rare"}}) { id title } }')
        assert isinstance(r, fq.Result)
        assert r.df["id"].to_list() == [5000, 10000, 15000, 20000]
        measured = s.explain('{ things(where: {kind: {eq: "rare"}}) { id } }', analyze=True)
        assert "actual time" in measured["things"].pg_plan


def test_an_expression_index_on_a_number_field_serves_its_filter(things: str) -> None:
    with fq.connect(things) as s:
        query = "{ things(where: {n: {eq: 7}}) { id n } }"
        text = s.explain(query, plan=True)["things"].pg_plan
        assert "thing_n" in text, text
        r = s.execute(query)
        assert isinstance(r, fq.Result) and r.df["id"].to_list()[:3] == [7, 107, 207]


def test_a_sorted_query_builds_the_documents_of_its_page_only(things: str) -> None:
    with fq.connect(things) as s:
        text = s.explain(
            "{ things(orderBy: [{title: DESC}], limit: 2) { id title } }", analyze=True
        )["things"].pg_plan
        # The outer scan (where documents are built) sees the 2 rows of the page.
        assert "Subquery Scan on v" in text and "rows=2" in text.split("\n")[0], text
        r = s.execute("{ things(orderBy: [{title: DESC}], limit: 2) { id title } }")
        assert isinstance(r, fq.Result)
        assert r.df.to_dicts() == [
            {"id": 9999, "title": "thing 9999"},
            {"id": 9998, "title": "thing 9998"},
        ]


def test_a_value_of_another_kind_beyond_the_sample_reads_as_null(things: str) -> None:
    with psycopg.connect(things, autocommit=True) as conn:
        conn.execute("DROP INDEX thing_n")  # it would refuse a string n, as the cast does
        conn.execute(
            'UPDATE tv_thing SET data = data || \'{"n": "many"}\' WHERE id = 15000;'
            "UPDATE tv_thing SET data = data || '{\"n\": null}' WHERE id = 15001"
        )
    with fq.connect(things, sample_size=10) as s:
        query = (
            "{ things(where: {n: {gte: 0}, id: {gte: 14999}}, orderBy: [{n: ASC}],"
            " limit: 3) { id n } }"
        )
        first = s.explain(query)["things"].sql["wire"]
        assert "::bigint" in first and "jsonb_typeof(" not in first.split("fq:kinds")[0]
        r = s.execute(query)  # PostgreSQL refuses the direct cast: checked form, no error
        assert isinstance(r, fq.Result)
        assert r.df["id"].to_list() == [15100, 15200, 15300]
        assert "jsonb_typeof" in r.sql and "jsonb_typeof" in s.explain(query)["things"].sql["wire"]
        nulls = s.execute("{ things(where: {id: {in: [15000, 15001]}}) { id n } }")
        assert isinstance(nulls, fq.Result)
        assert nulls.df["n"].to_list() == [None, None]


# ------------------------------------------------------------------ integers as int8

EDGES = """
CREATE TABLE tv_num (id bigint PRIMARY KEY, data jsonb NOT NULL);
INSERT INTO tv_num SELECT g, jsonb_build_object('id', g, 'n', (g * 37) % 2100)
FROM generate_series(1, 300) g;
"""
# What an expert's checked SQL reads: numbers exactly, anything else NULL.
CHECKED = "(CASE WHEN jsonb_typeof(data -> 'n') = 'number' THEN (data -> 'n')::numeric END)"
# GraphQL, then the same rows in checked SQL: WHERE, ORDER BY, LIMIT.
EDGE_QUERIES = [
    (
        "{ nums(where: {n: {gte: 2000}}, orderBy: [{n: DESC}], limit: 5) { id } }",
        f"{CHECKED} >= 2000",
        f"{CHECKED} DESC NULLS LAST, id",
        5,
    ),
    ("{ nums(where: {n: {lt: 40}}, limit: 4) { id } }", f"{CHECKED} < 40", "id", 4),
    (
        "{ nums(orderBy: [{n: DESC}], limit: 3) { id } }",
        "TRUE",
        f"{CHECKED} DESC NULLS LAST, id",
        3,
    ),
    ("{ nums(orderBy: [{n: ASC}], limit: 3) { id } }", "TRUE", f"{CHECKED} ASC NULLS LAST, id", 3),
    (
        "{ nums(where: {_not: {n: {lt: 2090}}}, limit: 4) { id } }",
        f"NOT ({CHECKED} < 2090)",
        "id",
        4,
    ),
    (
        "{ nums(where: {n: {in: [2001, 37, 2000]}}) { id } }",
        f"{CHECKED} IN (2001, 37, 2000)",
        "id",
        None,
    ),
    (
        "{ nums(orderBy: [{n: DESC_NULLS_FIRST}], limit: 3) { id } }",
        "TRUE",
        f"{CHECKED} DESC NULLS FIRST, id",
        3,
    ),
    (
        "{ nums(orderBy: [{n: DESC}], limit: 3, offset: 2) { id } }",
        "TRUE",
        f"{CHECKED} DESC NULLS LAST, id",
        "3 OFFSET 2",
    ),
    (
        "{ nums(where: {_or: [{n: {eq: 2001}}, {n: {gt: 2098}}]}, orderBy: [{n: ASC}]) { id } }",
        f"({CHECKED} = 2001 OR {CHECKED} > 2098)",
        f"{CHECKED} ASC NULLS LAST, id",
        None,
    ),
]


@pytest.mark.parametrize(
    "surprise",
    [
        "9223372036854775807",  # int8's largest: read as int8
        "-9223372036854775808",  # its smallest
        "9223372036854775808",  # one beyond: int8 refuses, numeric answers
        "1e20",
        "2000.5",  # a fraction where the sample saw integers
        "2001.0",
        '"2001"',  # a string holding an integer: int8 would read it, the check says no
        '"abc"',
        "true",
        "null",
    ],
)
def test_integers_read_as_int8_give_the_checked_answer_at_every_edge(
    scratch_dsn: str, surprise: str
) -> None:
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute(EDGES)  # type: ignore[arg-type]
        # Beyond the sample (the first 10 rows), two documents hold the surprise.
        conn.execute(
            "UPDATE tv_num SET data = jsonb_set(data, '{n}', %s::jsonb) WHERE id IN (150, 151)",
            (surprise,),
        )
        expected = {}
        for graphql, where, order, limit in EDGE_QUERIES:
            rows = conn.execute(
                f"SELECT id FROM tv_num WHERE {where} ORDER BY {order}"
                + (f" LIMIT {limit}" if limit else "")
            ).fetchall()
            expected[graphql] = [r[0] for r in rows]
    with fq.connect(scratch_dsn, sample_size=10) as s:
        assert s.schema.entity("nums").field("n").type.scalar == "Int"  # type: ignore[union-attr]
        first = s.explain(EDGE_QUERIES[0][0])["nums"].sql["wire"]
        assert "->> 'n'))::bigint" in first  # what the sample saw: integers
        for graphql, *_ in EDGE_QUERIES:
            for backend in ("wire", "postgres"):
                r = s.execute(graphql, backend=backend)
                assert isinstance(r, fq.Result)
                assert r.df["id"].to_list() == expected[graphql], (graphql, backend, r.sql)


def test_floats_compare_exactly_beyond_a_doubles_precision(scratch_dsn: str) -> None:
    """Float fields stay numeric: as float8, 0.1 and 0.10000000000000000001 are one value."""
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE tv_reading (id bigint PRIMARY KEY, data jsonb NOT NULL);"
            "INSERT INTO tv_reading VALUES (1, '{\"r\": 0.1}'), (2, '{\"r\": 0.10000000000000000001}'),"
            " (3, '{\"r\": 0.09999999999999999999}'), (4, '{\"r\": 0.5}')"
        )
    with fq.connect(scratch_dsn) as s:
        gt = s.execute("{ readings(where: {r: {gt: 0.1}}, orderBy: [{r: ASC}]) { id } }")
        assert isinstance(gt, fq.Result) and gt.df["id"].to_list() == [2, 4]
        eq = s.execute("{ readings(where: {r: {eq: 0.1}}) { id } }")
        assert isinstance(eq, fq.Result) and eq.df["id"].to_list() == [1]
        by = s.execute("{ readings(orderBy: [{r: DESC}], limit: 3) { id } }")
        assert isinstance(by, fq.Result) and by.df["id"].to_list() == [4, 2, 1]
