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
CREATE INDEX thing_n ON tv_thing ((NULLIF(data -> 'n', 'null')::numeric));
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
        assert "NULLIF" in first and "jsonb_typeof" not in first  # the sample saw numbers
        r = s.execute(query)  # PostgreSQL refuses the direct cast: checked form, no error
        assert isinstance(r, fq.Result)
        assert r.df["id"].to_list() == [15100, 15200, 15300]
        assert "jsonb_typeof" in r.sql and "jsonb_typeof" in s.explain(query)["things"].sql["wire"]
        nulls = s.execute("{ things(where: {id: {in: [15000, 15001]}}) { id n } }")
        assert isinstance(nulls, fq.Result)
        assert nulls.df["n"].to_list() == [None, None]
