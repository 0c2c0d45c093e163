"""Row queries on real FraiseQL conventions: one identity for ids, nested filters, RLS.

Every query runs on both row planes (``wire`` streaming and the plain
buffered ``postgres`` path) and is compared with hand-written SQL.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

import fraiseql_nb as fq
from tests.conftest import tenant_dsn

PLANES = ["wire", "postgres"]


@pytest.fixture(scope="module")
def s(conventions_dsn: str) -> Iterator[fq.Session]:
    session = fq.connect(conventions_dsn)
    yield session
    session.close()


def md5_uuid(text: str) -> str:
    return str(uuid.UUID(hashlib.md5(text.encode()).hexdigest()))


def sql_column(dsn: str, query: str, *params: Any) -> list[Any]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute(query, params or None).fetchall()]


def rows(s: fq.Session, query: str, backend: str, variables: dict[str, Any] | None = None) -> Any:
    r = s.execute(query, variables, backend=backend)
    assert isinstance(r, fq.Result)
    assert r.backend == backend
    return r.to_graphql()["data"]


# ---------------------------------------------------------------- identity


@pytest.mark.parametrize("backend", PLANES)
def test_the_id_a_result_shows_finds_its_row_again(s: fq.Session, backend: str) -> None:
    listed = rows(s, "{ users(orderBy: {rank: DESC}, limit: 3) { id name } }", backend)["users"]
    # rank 6, ties broken on the id the documents show (text order)
    assert [u["id"] for u in listed] == ["user-13", "user-20", "user-27"]
    for user in listed:
        found = rows(
            s, "query($id: ID!) { user(id: $id) { id name } }", backend, {"id": user["id"]}
        )
        assert found["user"] == user
        where = rows(
            s,
            "query($id: ID!) { users(where: {id: {eq: $id}}) { id } }",
            backend,
            {"id": user["id"]},
        )
        assert where["users"] == [{"id": user["id"]}]
    # The view's uuid column is not the id these documents show: it finds nothing.
    assert rows(s, f'{{ user(id: "{md5_uuid("user-13")}") {{ id }} }}', backend) == {"user": None}


@pytest.mark.parametrize("backend", PLANES)
def test_keyset_pages_follow_document_ids(
    s: fq.Session, conventions_dsn: str, backend: str
) -> None:
    expected = sql_column(
        conventions_dsn,
        "SELECT data->>'id' FROM v_user ORDER BY (data->>'rank')::int, data->>'id'",
    )
    r = s.execute("{ users(orderBy: {rank: ASC}, limit: 7) { id } }", backend=backend)
    seen: list[str] = []
    while r is not None:
        seen += r.df["id"].to_list()
        r = r.next_page()
    assert seen == expected
    after = rows(s, '{ users(orderBy: {rank: ASC}, after: "user-7", limit: 2) { id } }', backend)
    assert [u["id"] for u in after["users"]] == expected[expected.index("user-7") + 1 :][:2]
    plain = rows(s, '{ users(after: "user-57", limit: 5) { id } }', backend)
    assert [u["id"] for u in plain["users"]] == [
        "user-58",
        "user-59",
        "user-6",
        "user-60",
        "user-7",
    ]


@pytest.mark.parametrize("backend", PLANES)
def test_documents_without_ids_show_the_id_column(s: fq.Session, backend: str) -> None:
    assert rows(s, "{ tags(limit: 2) { id label } }", backend) == {
        "tags": [{"id": 1, "label": "tag 1"}, {"id": 2, "label": "tag 2"}]
    }
    assert rows(s, "{ tag(id: 5) { id label } }", backend) == {"tag": {"id": 5, "label": "tag 5"}}
    assert rows(s, "{ tags(where: {id: {in: [2, 7]}}, orderBy: {id: DESC}) { id } }", backend) == {
        "tags": [{"id": 7}, {"id": 2}]
    }
    r = s.execute("{ tags(limit: 3, after: 6) { id } }", backend=backend)
    assert r.df["id"].to_list() == [7, 8]
    assert s.execute("{ tags { id label } }", backend=backend).df.height == 8  # type: ignore[union-attr]


@pytest.mark.parametrize("backend", PLANES)
def test_uuid_ids_are_checked_before_any_sql(s: fq.Session, backend: str) -> None:
    shop = md5_uuid("shop-2")
    assert rows(s, f'{{ shop(id: "{shop.upper()}") {{ id name }} }}', backend) == {
        "shop": {"id": shop, "name": "Shop 2"}
    }
    before = s.query_log.height
    for query, message in [
        ('{ shop(id: "not-a-uuid") { id } }', "id: 'not-a-uuid' is not a uuid"),
        ("{ shop(id: 42) { id } }", "id: '42' is not a uuid"),
        ('{ shops(after: "x", limit: 1) { id } }', "after: 'x' is not a uuid"),
        ("{ tag(id: 99999999999) { id } }", "out of range for integer"),
    ]:
        with pytest.raises(fq.QueryError, match=message) as info:
            s.execute(query, backend=backend)
        assert info.value.line == 1
    # Refused while parsing: nothing was sent to the database.
    assert set(s.query_log["kind"][before:].to_list()) == {"invalid"}


# ----------------------------------------------------------------- filters


@pytest.mark.parametrize("backend", PLANES)
def test_isnull_on_a_nested_object(s: fq.Session, conventions_dsn: str, backend: str) -> None:
    for flag, condition in [("true", "IS NULL"), ("false", "IS NOT NULL")]:
        expected = sql_column(
            conventions_dsn,
            f"SELECT id FROM v_post WHERE (data->>'sponsor') {condition} ORDER BY id",
        )
        got = rows(
            s,
            f"{{ posts(where: {{sponsor: {{isnull: {flag}}}}}, orderBy: {{id: ASC}}) {{ id }} }}",
            backend,
        )
        assert [p["id"] for p in got["posts"]] == expected
        assert len(expected) in (13, 27)


@pytest.mark.parametrize("backend", PLANES)
def test_any_element_of_a_list_of_objects(
    s: fq.Session, conventions_dsn: str, backend: str
) -> None:
    expected = sql_column(
        conventions_dsn,
        "SELECT id FROM v_post WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(data->'owners') e"
        " WHERE e->>'email' = 'o1@example.org' AND e->>'role' = 'lead') ORDER BY id",
    )
    got = rows(
        s,
        '{ posts(where: {owners: {any: {email: {eq: "o1@example.org"}, role: {eq: "lead"}}}},'
        " orderBy: {id: ASC}) { id owners { email role } } }",
        backend,
    )
    assert [p["id"] for p in got["posts"]] == expected == [1, 6, 11, 16, 21, 26, 31, 36]
    assert all({"email": "o1@example.org", "role": "lead"} in p["owners"] for p in got["posts"])
    # Combined with the list's own operators, and negated.
    some = rows(
        s,
        '{ posts(where: {owners: {len_gt: 1, any: {role: {eq: "member"}}},'
        ' _not: {owners: {any: {email: {startswith: "o0"}}}}}) { id } }',
        backend,
    )
    expected = sql_column(
        conventions_dsn,
        "SELECT id FROM v_post WHERE jsonb_array_length(data->'owners') > 1 AND NOT EXISTS"
        " (SELECT 1 FROM jsonb_array_elements(data->'owners') e WHERE e->>'email' LIKE 'o0%')",
    )
    assert sorted(p["id"] for p in some["posts"]) == sorted(expected)
    assert expected


# ------------------------------------------------------- row-level security


def test_row_level_security_by_a_session_setting(conventions_dsn: str) -> None:
    counts = {}
    for tenant in (1, 2, None):
        dsn = tenant_dsn(conventions_dsn, tenant)
        with psycopg.connect(dsn) as conn:
            (invoices,) = conn.execute("SELECT count(*) FROM v_invoice").fetchone()  # type: ignore[misc]
            (billed,) = conn.execute("SELECT count(*) FROM tf_billing").fetchone()  # type: ignore[misc]
        with fq.connect(dsn) as s:
            # Nothing visible without a tenant: only the id is known then.
            selection = "id total" if tenant is not None else "id"
            for backend in PLANES:
                got = s.execute(f"{{ invoices {{ {selection} }} }}", backend=backend)
                assert got.df.height == invoices  # type: ignore[union-attr]
            for backend in ("arrow", "postgres", "auto"):
                agg = s.execute(
                    "{ billing_aggregate(groupBy: {tenant_id: true}) { tenant_id count amount_sum } }",
                    backend=backend,
                )
                assert sum(agg.df["count"]) == billed, (tenant, backend)  # type: ignore[union-attr]
                assert agg.df["tenant_id"].to_list() == ([tenant] if tenant else [])  # type: ignore[union-attr]
        counts[tenant] = (invoices, billed)
    assert counts == {1: (30, 1000), 2: (30, 1000), None: (0, 0)}


@pytest.mark.parametrize("backend", PLANES)
def test_id_filters_read_the_id_column_when_it_is_the_id(s: fq.Session, backend: str) -> None:
    shop = md5_uuid("shop-4")
    for value in (shop, shop.upper(), shop.replace("-", "")):
        got = rows(s, f'{{ shops(where: {{id: {{eq: "{value}"}}}}) {{ id name }} }}', backend)
        assert got == {"shops": [{"id": shop, "name": "Shop 4"}]}
    with pytest.raises(fq.QueryError, match=r"id\.in: 'nope' is not a uuid"):
        s.execute(
            f'{{ shops(where: {{id: {{in: ["{shop}", "nope"]}}}}) {{ id }} }}', backend=backend
        )
    ordered = rows(s, "{ shops(orderBy: {id: DESC}, limit: 2) { id } }", backend)["shops"]
    newest = sorted(md5_uuid(f"shop-{i}") for i in range(1, 6))[::-1]
    assert [r["id"] for r in ordered] == newest[:2]
    assert '"v"."id" =' in s.explain("{ posts(where: {id: {eq: 3}}) { id } }").plans[0].sql["wire"]


@pytest.mark.parametrize("backend", PLANES)
def test_rows_without_a_document_id_are_paged_too(s: fq.Session, backend: str) -> None:
    r = s.execute("{ mixeds(limit: 7) { id name } }", backend=backend)
    seen: list[int] = []
    while r is not None:
        seen += r.df["id"].to_list()
        r = r.next_page()
    assert seen == list(range(1, 26))
    assert rows(s, "{ mixed(id: 5) { id name } }", backend) == {"mixed": {"id": 5, "name": "x5"}}


@pytest.mark.parametrize("backend", PLANES)
def test_isnull_needs_a_value_and_says_on_what(s: fq.Session, backend: str) -> None:
    with pytest.raises(fq.QueryError, match=r"^sponsor\.isnull needs a value, got null"):
        s.execute("{ posts(where: {sponsor: {isnull: null}}) { id } }", backend=backend)
