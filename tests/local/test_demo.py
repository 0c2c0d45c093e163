"""The demo dataset: FraiseQL conventions, contents, counts, determinism, safe reloads."""

from __future__ import annotations

import itertools

import psycopg
import pytest
from psycopg import sql

from fraiseql_nb.errors import BackendError, ConfigError
from fraiseql_nb.local import demo

TINY = demo.Counts(users=200, products=20, orders=100, sales=1_000)

# md5 of each table's rows (and each view's documents) in id order, for TINY.
# A change here means the generator no longer produces the same bytes: bump
# demo.GENERATOR_VERSION and update these on purpose, never by accident.
TINY_CHECKSUMS = {
    "tb_user": "dffd76f6c9588e94d673eb3be68890da",
    "tb_product": "e11795f6934f6976045d5d33dd0c6196",
    "tb_order": "5da72939230cb3545a6c20d167bf42e6",
    "tb_order_item": "a2c72e7d2ec5644cbb7dcaf5ae3db43a",
    "tf_sales": "07c63acecf9751a89e26e483e79defa9",
    "v_user": "cc5f25e079155e9d50546d895b8e4ae2",
    "v_product": "f5bcdb060e15550e22774a70bbf410be",
    "v_order": "fce17cfedae0786434d209dd98364ef9",
}

_ORDER = {"tb_order_item": "order_id, line"}


def checksums(dsn: str) -> dict[str, str]:
    """md5 of every demo table's rows and every view's documents, in key order."""
    out = {}
    with psycopg.connect(dsn) as conn:
        # Text forms of timestamps and floats must not depend on the session.
        conn.execute("SET timezone = 'UTC'; SET datestyle = 'ISO'; SET extra_float_digits = 1")
        for name in TINY_CHECKSUMS:
            column = "data" if name.startswith("v_") else "t"
            query = sql.SQL(
                "SELECT md5(string_agg({}::text, E'\\n' ORDER BY {})) FROM {} AS t"
            ).format(
                sql.SQL("t.data") if column == "data" else sql.SQL("t"),
                sql.SQL(_ORDER.get(name, "id")),
                sql.Identifier(name),
            )
            out[name] = conn.execute(query).fetchone()[0]
    return out


def scalar(dsn: str, query: str) -> object:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchone()[0]


# ---------------------------------------------------------------- conventions


def test_every_entity_view_exposes_id_and_jsonb_data(demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        rows = conn.execute(
            "SELECT table_name,"
            " array_agg(column_name || ':' || data_type ORDER BY ordinal_position)"
            " FROM information_schema.columns WHERE table_schema = 'public'"
            " AND (table_name LIKE 'v\\_%' OR table_name LIKE 'tv\\_%') GROUP BY table_name"
            " ORDER BY table_name"
        ).fetchall()
    assert dict(rows) == {
        "v_order": ["id:bigint", "data:jsonb"],
        "v_product": ["id:bigint", "data:jsonb"],
        "v_user": ["id:bigint", "data:jsonb"],
    }


def test_sales_fact_table_has_measures_filters_dimensions_and_calendar(demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        columns = {
            name: (kind, not_null)
            for name, kind, not_null in conn.execute(
                "SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute"
                " WHERE attrelid = 'public.tf_sales'::regclass AND attnum > 0"
                " AND NOT attisdropped ORDER BY attnum"
            )
        }
        indexed = {
            r[0]
            for r in conn.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
                " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
                " WHERE i.indrelid = 'public.tf_sales'::regclass"
            )
        }
    assert columns == {
        "id": ("bigint", True),
        # filter columns
        "customer_id": ("bigint", True),
        "product_id": ("bigint", True),
        "occurred_at": ("timestamp with time zone", True),
        # measures
        "revenue": ("numeric(12,2)", True),
        "quantity": ("integer", True),
        "cost": ("double precision", True),
        "discount": ("numeric", False),
        # dimensions and calendar
        "dimensions": ("jsonb", True),
        "date_info": ("jsonb", True),
    }
    assert {"id", "occurred_at", "customer_id", "product_id"} <= indexed


def test_sales_dimensions_and_calendar_hold_the_documented_keys(demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        dims = conn.execute(
            "SELECT DISTINCT jsonb_object_keys(dimensions) FROM tf_sales ORDER BY 1"
        ).fetchall()
        product = conn.execute(
            "SELECT DISTINCT jsonb_object_keys(dimensions->'product') FROM tf_sales ORDER BY 1"
        ).fetchall()
        bad_calendar = conn.execute(
            "SELECT count(*) FROM tf_sales, LATERAL (SELECT (occurred_at AT TIME ZONE 'UTC')::date"
            " AS d) v WHERE (date_info->>'date')::date <> v.d"
            " OR (date_info->>'week')::date <> date_trunc('week', v.d)::date"
            " OR extract(isodow FROM (date_info->>'week')::date) <> 1"
            " OR (date_info->>'month')::date <> date_trunc('month', v.d)::date"
            " OR (date_info->>'quarter')::date <> date_trunc('quarter', v.d)::date"
            " OR (date_info->>'year')::date <> date_trunc('year', v.d)::date"
        ).fetchone()
    assert [r[0] for r in dims] == ["category", "channel", "product", "region"]
    assert [r[0] for r in product] == ["brand", "name"]
    assert bad_calendar == (0,)


def test_documents_have_nulls_unicode_apostrophes_and_nesting(demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        stats = conn.execute(
            "SELECT count(*) FILTER (WHERE data->>'name' LIKE '%''%'),"
            " count(*) FILTER (WHERE data->>'name' ~ '[^\\x01-\\x7f]'),"
            " count(*) FILTER (WHERE data->'age' = 'null'),"
            " count(*) FILTER (WHERE data->'address' = 'null'),"
            " count(*) FILTER (WHERE jsonb_typeof(data->'tags') = 'array'),"
            " count(*) FILTER (WHERE jsonb_typeof(data->'score') = 'number'"
            "                    AND (data->>'score')::float8 <> floor((data->>'score')::float8)),"
            " count(DISTINCT data->>'status')"
            " FROM v_user"
        ).fetchone()
        order = conn.execute("SELECT data FROM v_order WHERE id = 1").fetchone()[0]
        null_discount = conn.execute(
            "SELECT count(*) FROM tf_sales WHERE discount IS NULL"
        ).fetchone()
        null_channel = conn.execute(
            "SELECT count(*) FROM tf_sales WHERE dimensions->'channel' = 'null'"
        ).fetchone()
    apostrophes, non_ascii, null_age, null_address, tag_arrays, fractional, statuses = stats
    assert apostrophes > 100
    assert non_ascii > 1000
    assert null_age > 100
    assert null_address > 100
    assert tag_arrays > 9000
    assert fractional > 9000
    assert statuses == 4
    assert set(order) == {"id", "status", "created_at", "total", "customer", "items"}
    assert set(order["customer"]) == {"id", "name"}
    assert order["items"]
    assert set(order["items"][0]) == {
        "product_id",
        "product_name",
        "quantity",
        "unit_price",
    }
    assert null_discount[0] > 10_000
    assert null_channel[0] > 1_000


def test_order_totals_match_their_items(demo_dsn: str) -> None:
    mismatches = scalar(
        demo_dsn,
        "SELECT count(*) FROM v_order WHERE (data->>'total')::numeric <> (SELECT"
        " sum((i->>'quantity')::int * (i->>'unit_price')::numeric)"
        " FROM jsonb_array_elements(data->'items') i)",
    )
    assert mismatches == 0


# ------------------------------------------------------------------- counts


def test_small_scale_has_the_documented_row_counts(demo_dsn: str) -> None:
    small = demo.SCALES["small"]
    with psycopg.connect(demo_dsn) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM v_user), (SELECT count(*) FROM v_product),"
            " (SELECT count(*) FROM v_order), (SELECT count(*) FROM tf_sales)"
        ).fetchone()
        assert demo.loaded_counts(conn) == small
    assert counts == (10_000, 500, 20_000, 100_000)
    assert counts == (small.users, small.products, small.orders, small.sales)


def test_scales_grow_to_the_benchmark_size() -> None:
    assert demo.SCALES["large"].users == 1_000_000
    assert demo.SCALES["large"].sales == 2_000_000
    sizes = [demo.SCALES[s] for s in ("small", "medium", "large")]
    assert all(a.users < b.users and a.sales < b.sales for a, b in itertools.pairwise(sizes))


def test_medium_scale_loads_its_row_counts(scratch_dsn: str) -> None:
    medium = demo.SCALES["medium"]
    report = demo.load(scratch_dsn, medium)
    assert report.scale == "medium"
    assert not report.skipped
    got = scalar(
        scratch_dsn,
        "SELECT array[(SELECT count(*) FROM tb_user), (SELECT count(*) FROM tb_product),"
        " (SELECT count(*) FROM tb_order), (SELECT count(*) FROM tf_sales)]",
    )
    assert got == [medium.users, medium.products, medium.orders, medium.sales]


@pytest.mark.slow
def test_large_scale_loads_its_row_counts(scratch_dsn: str) -> None:
    large = demo.SCALES["large"]
    demo.load(scratch_dsn, large)
    got = scalar(
        scratch_dsn, "SELECT array[(SELECT count(*) FROM v_user), (SELECT count(*) FROM tf_sales)]"
    )
    assert got == [large.users, large.sales]


# -------------------------------------------------------------- determinism


def test_same_counts_give_byte_identical_tables(server_dsn: str, scratch_dsn: str) -> None:
    demo.load(scratch_dsn, TINY)
    first = checksums(scratch_dsn)
    demo.load(scratch_dsn, TINY)  # a reload rebuilds everything from scratch
    assert checksums(scratch_dsn) == first
    assert first == TINY_CHECKSUMS


def test_small_scale_is_identical_across_databases(demo_dsn: str, scratch_dsn: str) -> None:
    demo.load(scratch_dsn, demo.SCALES["small"])
    assert checksums(scratch_dsn) == checksums(demo_dsn)


# ------------------------------------------------------------------ reloads


def test_if_missing_keeps_a_complete_load_and_redoes_other_counts(scratch_dsn: str) -> None:
    assert not demo.load(scratch_dsn, TINY, if_missing=True).skipped
    assert demo.load(scratch_dsn, TINY, if_missing=True).skipped
    other = demo.Counts(users=50, products=5, orders=10, sales=100)
    assert not demo.load(scratch_dsn, other, if_missing=True).skipped
    assert scalar(scratch_dsn, "SELECT count(*) FROM tf_sales") == 100


def test_zero_orders_and_sales_are_allowed(scratch_dsn: str) -> None:
    demo.load(scratch_dsn, demo.Counts(users=3, products=2, orders=0, sales=0))
    assert (
        scalar(
            scratch_dsn, "SELECT (SELECT count(*) FROM v_user) + (SELECT count(*) FROM tf_sales)"
        )
        == 3
    )


def test_refuses_to_replace_tables_it_did_not_create(scratch_dsn: str) -> None:
    with psycopg.connect(scratch_dsn) as conn:
        conn.execute("CREATE TABLE tb_user (id int); INSERT INTO tb_user VALUES (42)")
    with pytest.raises(BackendError, match="tb_user, not made by the demo loader"):
        demo.load(scratch_dsn, TINY)
    assert scalar(scratch_dsn, "SELECT array_agg(id) FROM tb_user") == [42]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("users", 0),
        ("products", -1),
        ("orders", -5),
        ("sales", 2.5),
        ("users", True),
        ("sales", 10**10),
    ],
)
def test_counts_out_of_range_are_config_errors(field: str, value: object) -> None:
    good = {"users": 1, "products": 1, "orders": 0, "sales": 0}
    with pytest.raises(ConfigError, match=field) as info:
        demo.Counts(**{**good, field: value})  # type: ignore[arg-type]
    assert info.value.key == field


def test_bad_database_names_are_refused_before_touching_the_server(server_dsn: str) -> None:
    with pytest.raises(ConfigError, match="not a plain identifier"):
        demo.ensure_database(server_dsn, 'x"; DROP DATABASE postgres; --')
