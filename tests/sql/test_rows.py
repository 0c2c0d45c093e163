"""Row-query SQL: projection, ordering, paging; and what it returns from the demo data."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from fraiseql_nb.query import RowQuery, Selection, parse_query
from fraiseql_nb.schema import Schema
from fraiseql_nb.sql import Params, compile_row_query
from fraiseql_nb.sql.objects import build_object


def compile_text(
    text: str, schema: Schema, variables: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    q = parse_query(text, schema, variables).queries[0]
    assert isinstance(q, RowQuery)
    params = Params()
    entity = schema.entity(q.entity)
    assert entity is not None
    return compile_row_query(q, entity, params).as_string(None), params.values


def run(
    dsn: str, text: str, schema: Schema, variables: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    q = parse_query(text, schema, variables).queries[0]
    assert isinstance(q, RowQuery)
    params = Params()
    entity = schema.entity(q.entity)
    assert entity is not None
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute(compile_row_query(q, entity, params), params.values)]


# ------------------------------------------------------------------ the SQL


def test_projection_of_exactly_the_selection(schema: Schema) -> None:
    sql, params = compile_text("{ users { id who: name address { city } } }", schema)
    assert sql == (
        "SELECT json_build_object('id', (\"d\".\"data\" -> 'id'), 'who', (\"d\".\"data\" -> 'name'), "
        "'address', (CASE WHEN jsonb_typeof((\"d\".\"data\" -> 'address')) = 'object' THEN "
        "json_build_object('city', ((\"d\".\"data\" -> 'address') -> 'city')) END)) AS data "
        'FROM "public"."v_user" AS v CROSS JOIN LATERAL (SELECT v.data OFFSET 0) AS d'
    )  # no ORDER BY: nothing to order or page, so rows stream without a sort
    assert params == {}


def test_the_whole_document_is_sent_as_stored(schema: Schema) -> None:
    every = "id name email status age score created_at address { zip city country } tags last_ip"
    sql, _ = compile_text(f"{{ users {{ {every} }} }}", schema)
    assert sql == 'SELECT "v"."data" AS data FROM "public"."v_user" AS v'
    sql, _ = compile_text(f'{{ users(where: {{status: {{eq: "x"}}}}) {{ {every} }} }}', schema)
    assert sql.startswith(
        'SELECT "d"."data" AS data FROM "public"."v_user" AS v CROSS JOIN LATERAL'
    )
    renamed, _ = compile_text(
        every.replace("email", "mail: email").join(["{ users { ", " } }"]), schema
    )
    assert "json_build_object" in renamed


def test_order_limit_offset_and_collation(schema: Schema) -> None:
    sql, params = compile_text(
        "{ users(orderBy: [{name: DESC_NULLS_FIRST}, {address: {city: ASC}}, {age: DESC}],"
        ' limit: 10, offset: 20, collation: "C") { id } }',
        schema,
    )
    # The rows are picked (sorted, paged) first; their documents are built outside.
    assert sql.startswith(
        "SELECT json_build_object('id', (\"v\".\"data\" -> 'id')) AS data FROM (SELECT v.id,"
        ' "d"."data" AS data, ("d"."data" ->> \'name\') COLLATE "C" AS "k0",'
    )
    assert (
        'ORDER BY ("d"."data" ->> \'name\') COLLATE "C" DESC NULLS FIRST, '
        '("d"."data" -> \'address\' ->> \'city\') COLLATE "C" ASC NULLS LAST, '
        "(CASE WHEN jsonb_typeof((\"d\".\"data\" -> 'age')) = 'number'"
        ' THEN (("d"."data" -> \'age\'))::numeric END)'
        ' DESC NULLS LAST, "v"."id" ASC LIMIT (%(p1)s::bigint) OFFSET (%(p2)s::bigint)) AS v'
    ) in sql
    assert sql.endswith(
        'ORDER BY "v"."k0" COLLATE "C" DESC NULLS FIRST, "v"."k1" COLLATE "C" ASC NULLS LAST,'
        ' "v"."k2" DESC NULLS LAST, "v"."id" ASC'
    )
    assert params == {"p1": 10, "p2": 20}


def test_keyset_condition_follows_the_ordering(schema: Schema) -> None:
    sql, params = compile_text(
        "{ users(orderBy: {age: DESC}, limit: 5, after: 42) { id } }", schema
    )
    assert 'CROSS JOIN LATERAL (SELECT (CASE WHEN jsonb_typeof(("anchor"."data" -> \'age\'))' in sql
    assert 'WHERE "anchor"."id" = (%(p1)s::bigint)) AS "anchor"' in sql
    assert (
        '("anchor"."k0" IS NOT NULL AND (' in sql
    )  # NULLs last: a NULL anchor has nothing after it
    assert 'IS NOT DISTINCT FROM "anchor"."k0" AND "v"."id" > "anchor"."k_id"' in sql
    assert params == {"p1": 42, "p2": 5}
    plain, _ = compile_text("{ users(limit: 5, after: 42) { id } }", schema)
    assert 'WHERE "v"."id" > (%(p1)s::bigint) ORDER BY "v"."id" ASC' in plain


def test_single_query_and_typename(schema: Schema) -> None:
    sql, params = compile_text("{ order(id: 3) { __typename id } }", schema)
    assert "'__typename', 'Order'::text" in sql
    assert 'WHERE "v"."id" = (%(p1)s::bigint)' in sql
    assert params == {"p1": 3, "p2": 1}


def test_lists_of_objects_keep_element_order(schema: Schema) -> None:
    sql, _ = compile_text("{ orders { items { q: quantity } } }", schema)
    assert 'jsonb_array_elements(("d"."data" -> \'items\')) WITH ORDINALITY AS e(v, n)' in sql
    assert "ORDER BY e.n" in sql
    assert "'[]'::json" in sql


def test_wide_selections_avoid_the_function_argument_limit() -> None:
    selection = tuple(
        Selection(name=f"f{i}", key=f"k{i}", kind="scalar", scalar="Int") for i in range(60)
    )
    text = build_object(selection, psycopg.sql.Identifier("data")).as_string(None)
    # Two objects of at most 50 pairs, their texts joined: names stay literals (no
    # identifier, which PostgreSQL would cut at 63 bytes).
    assert text.startswith("('{' || substr(left((json_build_object('f0', ")
    assert text.count("json_build_object(") == 2 and text.count("'f") == 60
    assert ' AS "f' not in text


# ------------------------------------------------------- against the demo data


def test_rows_have_only_the_selected_fields_in_order(demo_dsn: str, demo_schema: Schema) -> None:
    out = run(demo_dsn, "{ users(limit: 3) { email id a: address { country city } } }", demo_schema)
    assert [list(d) for d in out] == [["email", "id", "a"]] * 3
    assert [d["id"] for d in out] == [1, 2, 3]
    assert list(out[0]["a"]) == ["country", "city"]


def test_nulls_sort_last_both_ways_and_paging_is_stable(demo_dsn: str, demo_schema: Schema) -> None:
    asc = run(demo_dsn, "{ users(orderBy: {age: ASC}) { id age } }", demo_schema)
    desc = run(demo_dsn, "{ users(orderBy: {age: DESC}) { id age } }", demo_schema)
    for ordered in (asc, desc):
        ages = [d["age"] for d in ordered]
        first_null = ages.index(None)
        assert all(a is None for a in ages[first_null:])
        assert all(a is not None for a in ages[:first_null])
    assert [d["age"] for d in asc[:3]] == [18, 18, 18]
    assert [d["age"] for d in desc[:3]] == [89, 89, 89]
    pages = [
        run(
            demo_dsn,
            f"{{ users(orderBy: {{age: ASC}}, limit: 100, offset: {o}) {{ id }} }}",
            demo_schema,
        )
        for o in range(0, 300, 100)
    ]
    assert [d["id"] for page in pages for d in page] == [d["id"] for d in asc[:300]]


def test_numbers_compare_as_numbers_and_times_as_times(demo_dsn: str, demo_schema: Schema) -> None:
    out = run(demo_dsn, "{ users(where: {age: {gte: 9, lt: 20}}) { age } }", demo_schema)
    assert out
    assert all(9 <= d["age"] < 20 for d in out)
    newest = run(
        demo_dsn,
        '{ users(where: {created_at: {gte: "2024-12-29T12:00:00+02:00"}}, orderBy: {created_at: ASC}) { created_at } }',
        demo_schema,
    )
    assert newest
    assert newest[0]["created_at"] >= "2024-12-29T10:00:00Z"
    assert newest[0]["created_at"] < "2024-12-29T11:00:00Z"


def test_nested_lists_and_single_lookup(demo_dsn: str, demo_schema: Schema) -> None:
    out = run(
        demo_dsn,
        "{ order(id: 1) { id items { product_name quantity } customer { name } } }",
        demo_schema,
    )
    assert out == [
        {
            "id": 1,
            "items": [{"product_name": "Classic Gadget 271", "quantity": 5}],
            "customer": {"name": "Παναγιώτης Johnson"},
        }
    ]
    assert run(demo_dsn, "{ user(id: 99999999) { id } }", demo_schema) == []


@pytest.mark.parametrize(
    "value",
    [
        "O'Brien",
        "x'); DROP TABLE tb_user; --",
        "/* comment */",
        "-- dash",
        "a\\b",
        "ü" * 10,
        "z" * 1_000_000,
    ],
)
def test_hostile_strings_are_data(demo_dsn: str, demo_schema: Schema, value: str) -> None:
    out = run(
        demo_dsn,
        "query ($v: String) { users(where: {_or: [{name: {eq: $v}}, {name: {contains: $v}}]}) { id } }",
        demo_schema,
        {"v": value},
    )
    if value == "O'Brien":
        assert len(out) > 100  # every name with O'Brien in it
    else:
        assert out == []
    with psycopg.connect(demo_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM tb_user").fetchone() == (10_000,)


def test_like_wildcards_in_user_text_match_literally(demo_dsn: str, demo_schema: Schema) -> None:
    assert run(demo_dsn, '{ users(where: {name: {contains: "%"}}) { id } }', demo_schema) == []
    assert run(demo_dsn, '{ users(where: {email: {contains: "_"}}) { id } }', demo_schema) == []
    assert (
        len(run(demo_dsn, '{ users(where: {email: {like: "user1_@%"}}) { id } }', demo_schema)) > 0
    )
