"""Introspection of the conventions real FraiseQL schemas use (tests/data/conventions.sql)."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

import fraiseql_nb as fq
from fraiseql_nb.query import parse_query
from fraiseql_nb.schema import Schema, introspect
from fraiseql_nb.schema.naming import entity_names
from fraiseql_nb.schema.summary import summary_html, summary_text
from tests.conftest import tenant_dsn


@pytest.fixture(scope="module")
def schema(conventions_dsn: str) -> Schema:
    with psycopg.connect(conventions_dsn) as conn:
        return introspect(conn)


def test_uuid_keys_and_integer_codes_on_a_fact_table(schema: Schema) -> None:
    orders = schema.fact("orders")
    assert orders is not None
    assert orders.id_column == "id"
    assert [m.name for m in orders.measures] == ["status_code", "amount", "quantity"]
    types = {c.name: (c.pg_type, c.scalar) for c in orders.filters}
    assert types["customer_id"] == ("uuid", "ID")
    assert types["product_id"] == ("uuid", "ID")
    assert types["channel"] == ("character varying(12)", "String")
    assert types["client_ip"] == ("inet", "String")
    # An integer-coded category can be grouped on, as well as summed; the id cannot.
    keys = [c.name for c in orders.key_columns]
    assert "status_code" in keys and "quantity" in keys and "id" not in keys
    assert {d.name for d in orders.dimensions} == {"region", "product_category", "product_size"}


def test_document_ids_that_differ_from_the_id_column(schema: Schema) -> None:
    user = schema.entity("users")
    assert user is not None
    assert (user.identity, user.id_type) == ("document", "uuid")
    assert user.field("id").type.json == "string"  # type: ignore[union-attr]
    shop = schema.entity("shops")
    assert shop is not None
    assert (shop.identity, shop.id_type) == ("column", "uuid")
    tag = schema.entity("tags")
    assert tag is not None
    # Documents without an id: the field reads the id column.
    assert tag.identity == "column"
    assert tag.field("id").column == "id"  # type: ignore[union-attr]


def test_an_empty_tv_projection_yields_to_its_v_view(schema: Schema) -> None:
    post = schema.entity("posts")
    assert post is not None
    assert post.relation == "v_post"
    assert post.sampled == 40
    assert {f.name for f in post.fields} >= {"id", "title", "sponsor", "owners", "tags"}
    [problem] = [p for p in schema.problems if p.relation == "public.tv_post"]
    assert problem.message == (
        "public.tv_post has no documents yet, so posts and post read public.v_post instead;"
        " reconnect once public.tv_post is filled to read it"
    )
    assert problem.queries == ()  # a note, not a refusal: posts works


def test_a_filled_tv_projection_serves_and_its_view_is_reported(scratch_dsn: str) -> None:
    with psycopg.connect(scratch_dsn) as conn:
        conn.execute(
            "CREATE TABLE tv_item (id int PRIMARY KEY, data jsonb NOT NULL);"
            """INSERT INTO tv_item VALUES (1, '{"id": 1, "sku": "a"}');"""
            """CREATE VIEW v_item AS SELECT 1 AS id, '{"id": 1, "name": "x"}'::jsonb AS data;"""
        )
        schema = introspect(conn)
    item = schema.entity("items")
    assert item is not None
    assert item.relation == "tv_item"
    assert [f.name for f in item.fields] == ["id", "sku"]
    assert [p.message for p in schema.problems] == [
        "public.v_item is not used: public.tv_item serves items and item"
        " (a tv_ projection table is read in preference to its v_ view)"
    ]


def test_documents_with_and_without_ids_make_the_column_the_id(schema: Schema) -> None:
    mixed = schema.entity("mixeds")
    assert mixed is not None
    assert mixed.identity == "column"
    assert mixed.field("id").column == "id"  # type: ignore[union-attr]
    assert (
        "public.v_mixed: some documents carry an id that differs from the id column and some"
        " carry none, so the id column is the id of every row"
    ) in [p.message for p in schema.problems]


def test_singular_and_plural_twins_are_one_entity(schema: Schema) -> None:
    pen = schema.entity("pens")
    assert pen is not None
    assert (pen.relation, pen.single_query) == ("tv_pens", "pen")
    assert [f.name for f in pen.fields] == ["id", "ink"]
    assert (
        "public.v_pen is not used: public.tv_pens serves pens and pen (a tv_ projection table"
        " is read in preference to its v_ view)"
    ) in [p.message for p in schema.problems]


def test_two_empty_twins_say_which_one_serves(scratch_dsn: str) -> None:
    with psycopg.connect(scratch_dsn) as conn:
        conn.execute(
            "CREATE TABLE tv_thing (id int PRIMARY KEY, data jsonb NOT NULL);"
            "CREATE VIEW v_thing AS SELECT id, data FROM tv_thing;"
        )
        schema = introspect(conn)
    assert [p.message for p in schema.problems] == [
        "public.v_thing is not used: public.tv_thing serves things and thing (a tv_ projection"
        " table is read in preference to its v_ view)",
        "public.tv_thing returned no documents to role postgres (empty, or hidden by row-level"
        " security): only its id can be queried; reconnect once it has documents to query"
        " their fields",
    ]


def test_a_dimension_named_like_a_column_is_left_out_not_the_table(
    schema: Schema, conventions_dsn: str
) -> None:
    events = schema.fact("events")
    assert events is not None
    assert {d.name for d in events.dimensions} == {"kind", "seen_on"}
    [note] = [p for p in schema.problems if p.relation == "public.tf_events"]
    assert note.queries == ()
    assert "dimension flag flattens to flag, which is already a column" in note.message
    with fq.connect(conventions_dsn) as s:
        r = s.execute("{ events_aggregate(groupBy: {flag: true}) { flag count } }")
        assert r.df.to_dicts() == [  # type: ignore[union-attr]
            {"flag": False, "count": 214},
            {"flag": True, "count": 215},
            {"flag": None, "count": 71},
        ]


def test_plural_view_names_and_typename_keys(schema: Schema, conventions_dsn: str) -> None:
    author = schema.entity("v_authors")
    assert author is not None
    assert (author.name, author.list_query, author.single_query) == ("Author", "authors", "author")
    assert [f.name for f in author.fields] == ["id", "name"]  # no "typename" field
    with fq.connect(conventions_dsn) as s:
        r = s.execute("{ authors(limit: 2) { __typename id name } }")
        assert r.to_dicts() == [
            {"__typename": "Author", "id": 1, "name": "Author 1"},
            {"__typename": "Author", "id": 2, "name": "Author 2"},
        ]
        assert s.execute("{ author(id: 3) { name } }").to_graphql() == {
            "data": {"author": {"name": "Author 3"}}
        }


@pytest.mark.parametrize(
    ("base", "names"),
    [
        ("user", ("User", "users", "user")),
        ("users", ("User", "users", "user")),
        ("categories", ("Category", "categories", "category")),
        ("boxes", ("Box", "boxes", "box")),
        ("order_items", ("OrderItem", "order_items", "order_item")),
        ("people", ("Person", "people", "person")),
        ("status", ("Status", "statuses", "status")),
        ("address", ("Address", "addresses", "address")),
        ("news", ("News", "news", "news_by_id")),
        ("movies", ("Movie", "movies", "movie")),
        ("caches", ("Cache", "caches", "cache")),
        ("aliases", ("Alias", "aliases", "alias")),
        ("heroes", ("Hero", "heroes", "hero")),
        ("wolves", ("Wolf", "wolves", "wolf")),
        # Names from FraiseQL's own examples, where a general-purpose inflector
        # (inflect 7.6) reads them worse: AfterDatum, todoes, Campu.
        ("after_data", ("AfterData", "after_data", "after_data_by_id")),
        ("cart_metadata", ("CartMetadata", "cart_metadata", "cart_metadata_by_id")),
        ("todo", ("Todo", "todos", "todo")),
        ("campus", ("Campus", "campuses", "campus")),
        ("order_item", ("OrderItem", "order_items", "order_item")),
        ("user_profile", ("UserProfile", "user_profiles", "user_profile")),
        ("oxen", ("Ox", "oxen", "ox")),
        ("phenomena", ("Phenomenon", "phenomena", "phenomenon")),
        ("deer", ("Deer", "deer", "deer_by_id")),
    ],
)
def test_entity_names_from_singular_and_plural_relations(
    base: str, names: tuple[str, str, str]
) -> None:
    assert entity_names(base) == names


def test_a_schema_file_can_rename_what_introspection_named(
    schema: Schema, conventions_dsn: str, tmp_path: Path
) -> None:
    path = tmp_path / "schema.json"
    schema.save(path)
    data = json.loads(path.read_text())
    author = next(e for e in data["entities"] if e["relation"] == "v_authors")
    author.update(name="Writer", list_query="writers", single_query="writer")
    path.write_text(json.dumps(data))
    with fq.connect(conventions_dsn, schema=str(path)) as s:
        assert s.execute("{ writer(id: 2) { __typename name } }").to_dicts() == [
            {"__typename": "Writer", "name": "Author 2"}
        ]
        with pytest.raises(fq.QueryError, match="authors"):
            s.execute("{ authors { id } }")


def test_an_entity_whose_documents_are_hidden_is_a_reported_problem(conventions_dsn: str) -> None:
    # Row-level security hides every invoice from a role with no tenant set.
    with psycopg.connect(tenant_dsn(conventions_dsn, None)) as conn:
        schema = introspect(conn)
    invoice = schema.entity("invoices")
    assert invoice is not None
    assert [f.name for f in invoice.fields] == ["id"]
    [problem] = [p for p in schema.problems if p.relation == "public.v_invoice"]
    assert problem.message == (
        "public.v_invoice returned no documents to role fq_tenant_reader (empty, or hidden by"
        " row-level security): only its id can be queried; reconnect once it has documents to"
        " query their fields"
    )
    with pytest.raises(
        fq.QueryError,
        match=r"Cannot query field 'total' on type 'Invoice'\. \(public\.v_invoice returned no documents",
    ):
        parse_query("{ invoices { total } }", schema)
    # With a tenant set, the same role sees its documents and their fields.
    with psycopg.connect(tenant_dsn(conventions_dsn, 2)) as conn:
        tenant = introspect(conn).entity("invoices")
    assert tenant is not None
    assert [f.name for f in tenant.fields] == ["id", "total", "tenant_id"]


def test_the_schema_reads_well(schema: Schema) -> None:
    text = summary_text(schema)
    assert text.startswith("Schema: 8 entities, 3 fact tables, 4 problems\n")
    assert (
        "  users, user(id)  ->  User  (public.v_user; id: the documents' own id (the uuid id"
        " column differs); 60 documents sampled)" in text
    )
    assert "      id: ID!\n      name: String!\n      rank: Int!\n" in text
    assert "      sponsor: PostSponsor\n          name: String!\n" in text
    assert "      owners: [PostOwner]!\n          role: String!\n          email: String!\n" in text
    assert "  orders_aggregate, orders_window  (public.tf_orders)" in text
    assert "      measures:     status_code Int, amount Float, quantity Int\n" in text
    assert "      group keys:   tenant_id, the dimensions and buckets\n" in text
    assert "(public.v_shop; id: the uuid id column; 5 documents sampled)" in text
    assert "occurred_at_{second,minute,hour,day,week,month,quarter,year}" in text
    assert "\nProblems\n  fact table public.tf_events: dimension flag flattens" in text
    assert "\n  public.tv_post has no documents yet" in text
    page = summary_html(schema)
    assert page.startswith("<div class='fraiseql-schema'><p><b>Schema</b>: 8 entities")
    assert "<code>users</code>, <code>user(id)</code> → <b>User</b>" in page
    assert "<th style='text-align:left'>group keys</th>" in page
    assert "<li>public.tv_post has no documents yet" in page
