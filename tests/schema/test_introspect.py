"""Introspection of the demo database and of an unrelated layout."""

from __future__ import annotations

import psycopg
import pytest

import fraiseql_nb as fq
from fraiseql_nb.query import parse_query
from fraiseql_nb.schema import Schema, introspect


def test_demo_database_offers_the_expected_queries(demo_dsn: str) -> None:
    s = fq.connect(demo_dsn)
    assert s.schema.root_fields() == [
        "orders",
        "order",
        "products",
        "product",
        "users",
        "user",
        "sales_aggregate",
        "sales_window",
    ]
    assert s.schema.problems == ()
    sdl = fq.to_sdl(s.schema)
    for fragment in (
        "  users(\n    where: UserWhereInput\n    orderBy: [UserOrderByInput!]",
        "): [User!]!",
        "user(id: ID!): User",
        "sales_aggregate(where: SalesWhereInput, groupBy: SalesGroupByInput",
        "sales_window(where: SalesWhereInput, partitionBy: [SalesColumn!]",
        "input UserWhereInput",
        "input UserOrderByInput",
    ):
        assert fragment in sdl
    s.close()


def test_demo_entity_fields_and_types(demo_schema: Schema) -> None:
    user = demo_schema.entity("users")
    assert user is not None
    assert (user.name, user.relation, user.single_query, user.id_type) == (
        "User",
        "v_user",
        "user",
        "bigint",
    )
    types = {f.name: (f.type.kind, f.type.scalar, f.nullable) for f in user.fields}
    assert types == {
        "id": ("scalar", "ID", False),
        "name": ("scalar", "String", True),
        "email": ("scalar", "String", True),
        "status": ("scalar", "String", False),
        "age": ("scalar", "Int", True),
        "score": ("scalar", "Float", True),
        "created_at": ("scalar", "DateTime", False),
        "address": ("object", None, True),
        "tags": ("list", None, True),
        "last_ip": ("scalar", "String", True),
    }
    address = user.field("address")
    assert address is not None
    assert [f.name for f in address.type.fields] == ["zip", "city", "country"]
    order = demo_schema.entity("Order")
    assert order is not None
    items = order.field("items")
    assert items is not None
    assert items.type.item is not None
    assert {f.name for f in items.type.item.fields} == {
        "product_id",
        "product_name",
        "quantity",
        "unit_price",
    }
    assert order.field("customer").type.type_name == "OrderCustomer"  # type: ignore[union-attr]


def test_demo_fact_table(demo_schema: Schema) -> None:
    sales = demo_schema.fact("sales")
    assert sales is not None
    assert [(m.name, m.scalar) for m in sales.measures] == [
        ("revenue", "Float"),
        ("quantity", "Int"),
        ("cost", "Float"),
        ("discount", "Float"),
    ]
    assert [(c.name, c.scalar) for c in sales.filters] == [
        ("id", "BigInt"),
        ("customer_id", "BigInt"),
        ("product_id", "BigInt"),
        ("occurred_at", "DateTime"),
    ]
    assert {(d.name, d.path, d.scalar) for d in sales.dimensions} == {
        ("category", ("category",), "String"),
        ("region", ("region",), "String"),
        ("channel", ("channel",), "String"),
        ("product_name", ("product", "name"), "String"),
        ("product_brand", ("product", "brand"), "String"),
    }
    assert [(c.column, c.keys, c.serves) for c in sales.calendars] == [
        ("date_info", ("date", "week", "month", "quarter", "year"), "occurred_at")
    ]
    assert set(sales.buckets) == {
        f"occurred_at_{u}"
        for u in ("second", "minute", "hour", "day", "week", "month", "quarter", "year")
    }
    assert sales.calendar_for("occurred_at", "month") is not None


@pytest.fixture
def odd_layout(scratch_dsn: str) -> str:
    """A database laid out differently from the demo, with some broken relations."""
    with psycopg.connect(scratch_dsn) as conn:
        conn.execute(
            """
            CREATE SCHEMA shop;
            CREATE TABLE shop.tv_box (id uuid PRIMARY KEY, data jsonb NOT NULL);
            INSERT INTO shop.tv_box VALUES
              ('00000000-0000-0000-0000-000000000001', '{"label": "a", "size": {"w": 1, "h": 2.5}}'),
              ('00000000-0000-0000-0000-000000000002', '{"label": "b", "size": {"w": 3, "h": 4}}');
            CREATE VIEW shop.v_category AS SELECT 7::int AS id, '{"title": "t"}'::jsonb AS data;
            CREATE VIEW shop.v_broken AS SELECT 1 AS id, 'not json'::text AS data;
            CREATE TABLE shop.tf_clicks (
                id bigint, page_id int, event_date date, ms float8, weight numeric,
                data jsonb, day_info jsonb);
            INSERT INTO shop.tf_clicks VALUES
              (1, 10, '2024-03-05', 12.5, 1, '{"device": {"os": {"name": "ios", "v": 17}}}',
               '{"date": "2024-03-05", "month": "2024-03-01"}');
            CREATE TABLE shop.tf_nomeasure (id bigint, user_id bigint, dimensions jsonb);
            CREATE TABLE shop.tf_twodims (id bigint, amount int, dimensions jsonb, data jsonb);
            """
        )
    return scratch_dsn


def test_an_unrelated_layout_is_introspected(odd_layout: str) -> None:
    with psycopg.connect(odd_layout) as conn:
        schema = introspect(conn, schemas=["shop"], sample_size=10)
    assert schema.root_fields() == [
        "boxes",
        "box",
        "categories",
        "category",
        "clicks_aggregate",
        "clicks_window",
    ]
    box = schema.entity("boxes")
    assert box is not None
    assert box.id_type == "uuid"
    assert box.field("id").type.json == "string"  # type: ignore[union-attr]
    size = box.field("size")
    assert size is not None
    assert {(f.name, f.type.scalar) for f in size.type.fields} == {("w", "Int"), ("h", "Float")}
    clicks = schema.fact("clicks")
    assert clicks is not None
    assert [m.name for m in clicks.measures] == ["ms", "weight"]
    assert [c.name for c in clicks.filters] == ["id", "page_id", "event_date"]
    assert sorted((d.name, d.path) for d in clicks.dimensions) == [
        ("device_os_name", ("device", "os", "name")),
        ("device_os_v", ("device", "os", "v")),
    ]
    assert [(c.column, c.keys, c.serves) for c in clicks.calendars] == [
        ("day_info", ("date", "month"), "event_date")
    ]
    messages = {p.relation: p.message for p in schema.problems}
    assert set(messages) == {"shop.v_broken", "shop.tf_nomeasure", "shop.tf_twodims"}
    assert "needs columns id and data jsonb" in messages["shop.v_broken"]
    assert "has no measures" in messages["shop.tf_nomeasure"]
    assert "two candidate dimension columns (dimensions and data)" in messages["shop.tf_twodims"]

    # Asking for a broken relation says why, naming it.
    with pytest.raises(fq.QueryError, match="tf_twodims has two candidate dimension columns"):
        parse_query("{ twodims_aggregate { count } }", schema)
    with pytest.raises(fq.QueryError, match=r"shop\.v_broken is not an entity view"):
        parse_query("{ brokens { id } }", schema)
    # And what works, works.
    doc = parse_query("{ boxes(where: {size: {h: {gt: 3}}}) { label } }", schema)
    assert doc.keys() == ["boxes"]


def test_search_path_is_the_default_scope(odd_layout: str) -> None:
    with psycopg.connect(odd_layout) as conn:
        assert introspect(conn).root_fields() == []  # nothing in public
        conn.execute("SET search_path = shop, public")
        assert "boxes" in introspect(conn).root_fields()


def test_sample_size_bounds_what_is_read(odd_layout: str) -> None:
    with psycopg.connect(odd_layout) as conn:
        conn.execute("INSERT INTO shop.tv_box VALUES (gen_random_uuid(), '{\"label\": 5}')")
        one = introspect(conn, schemas=["shop"], sample_size=1).entity("boxes")
        every = introspect(conn, schemas=["shop"], sample_size=100).entity("boxes")
    assert one is not None
    assert every is not None
    assert (one.sampled, every.sampled) == (1, 3)
    assert one.field("label").type.scalar == "String"  # type: ignore[union-attr]
    assert every.field("label").type.scalar == "JSON"  # type: ignore[union-attr]


def test_connect_validates_its_arguments(demo_dsn: str) -> None:
    with pytest.raises(fq.ConfigError, match="sample_size"):
        fq.connect(demo_dsn, sample_size=0)
    with pytest.raises(fq.BackendError, match="password=\\*\\*\\*"):
        fq.connect("host=127.0.0.1 port=1 password=hunter2 connect_timeout=2")


def test_the_saved_demo_schema_matches_the_demo_database(demo_schema: Schema) -> None:
    """tests/data/demo_schema.json (used by the pure tests) must not drift."""
    from dataclasses import replace

    from tests.conftest import SCHEMA_FILE

    saved = Schema.load(SCHEMA_FILE)
    assert replace(saved, collations=()) == replace(demo_schema, collations=())
