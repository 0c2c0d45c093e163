"""Hand-written aggregate and window queries over the demo tf_sales: the agreement corpus."""

from __future__ import annotations

import math

import polars as pl

AGGREGATES = [
    # every aggregate, no group keys
    "{ sales_aggregate { count } }",
    "{ sales_aggregate { revenue_sum revenue_avg revenue_min revenue_max } }",
    "{ sales_aggregate { revenue_stddev revenue_variance quantity_stddev quantity_variance } }",
    "{ sales_aggregate { revenue_median revenue_p25 revenue_p75 revenue_p90 revenue_p95 revenue_p99 } }",
    "{ sales_aggregate { cost_sum cost_avg cost_median discount_sum discount_avg discount_p90 } }",
    "{ sales_aggregate { customer_id_count_distinct product_id_count_distinct category_count_distinct channel_count_distinct } }",
    "{ sales_aggregate { quantity_sum quantity_min quantity_max quantity_median } }",
    # one key of each kind
    "{ sales_aggregate(groupBy: {category: true}) { category count revenue_sum } }",
    "{ sales_aggregate(groupBy: {region: true}) { region revenue_avg quantity_sum } }",
    "{ sales_aggregate(groupBy: {channel: true}) { channel count discount_avg } }",  # NULL channel is a group
    "{ sales_aggregate(groupBy: {product_brand: true}) { product_brand revenue_max cost_min } }",
    "{ sales_aggregate(groupBy: {product_name: true}, orderBy: {revenue_sum: DESC}, limit: 10) { product_name revenue_sum } }",
    "{ sales_aggregate(groupBy: {customer_id: true}, orderBy: {count: DESC}, limit: 25) { customer_id count } }",
    "{ sales_aggregate(groupBy: {product_id: true}, orderBy: [{quantity_sum: DESC}, {product_id: ASC}], limit: 20) { product_id quantity_sum } }",
    # every bucket
    "{ sales_aggregate(groupBy: {occurred_at_day: true}, orderBy: {occurred_at_day: ASC}, limit: 40) { occurred_at_day count revenue_sum } }",
    "{ sales_aggregate(groupBy: {occurred_at_week: true}) { occurred_at_week count } }",
    "{ sales_aggregate(groupBy: {occurred_at_month: true}) { occurred_at_month revenue_sum revenue_median } }",
    "{ sales_aggregate(groupBy: {occurred_at_quarter: true}) { occurred_at_quarter revenue_p90 } }",
    "{ sales_aggregate(groupBy: {occurred_at_year: true}) { occurred_at_year count cost_sum } }",
    # several keys
    "{ sales_aggregate(groupBy: {category: true, region: true}) { category region count revenue_sum quantity_avg } }",
    "{ sales_aggregate(groupBy: {category: true, occurred_at_month: true}) { category occurred_at_month revenue_sum } }",
    "{ sales_aggregate(groupBy: {region: true, channel: true, occurred_at_year: true}) { region channel occurred_at_year count } }",
    "{ sales_aggregate(groupBy: {product_brand: true, category: true}, orderBy: {revenue_avg: DESC}) { product_brand category revenue_avg } }",
    # aliases and repeated fields
    "{ s: sales_aggregate(groupBy: {region: true}) { r: region n: count total: revenue_sum revenue_sum } }",
    # filters on every column kind
    '{ sales_aggregate(where: {occurred_at: {gte: "2024-01-01", lt: "2024-04-01"}}) { count revenue_sum } }',
    '{ sales_aggregate(where: {occurred_at: {gte: "2024-06-01T12:00:00+02:00"}}, groupBy: {occurred_at_year: true}) { occurred_at_year count } }',
    "{ sales_aggregate(where: {customer_id: {in: [1, 2, 3, 4, 5]}}, groupBy: {customer_id: true}) { customer_id count revenue_sum } }",
    "{ sales_aggregate(where: {product_id: {lte: 10}}) { count product_id_count_distinct } }",
    '{ sales_aggregate(where: {category: {eq: "books"}}, groupBy: {region: true}) { region count } }',
    '{ sales_aggregate(where: {category: {nin: ["books", "toys"]}}) { count } }',
    "{ sales_aggregate(where: {channel: {isnull: true}}) { count revenue_sum } }",
    "{ sales_aggregate(where: {channel: {isnull: false}}, groupBy: {channel: true}) { channel count } }",
    '{ sales_aggregate(where: {product_brand: {startswith: "A"}}, groupBy: {product_brand: true}) { product_brand count } }',
    '{ sales_aggregate(where: {product_name: {icontains: "LAMP"}}) { count revenue_avg } }',
    '{ sales_aggregate(where: {product_name: {like: "%Drone 1_"}}, groupBy: {product_name: true}) { product_name count } }',
    '{ sales_aggregate(where: {region: {regex: "^(EU|NA)$"}}, groupBy: {region: true}) { region count } }',
    "{ sales_aggregate(where: {revenue: {gt: 1000}}) { count revenue_min } }",
    "{ sales_aggregate(where: {discount: {isnull: true}}) { count discount_sum discount_avg } }",  # NULL measures: sum is NULL
    "{ sales_aggregate(where: {discount: {gte: 0.15}}, groupBy: {category: true}) { category discount_avg discount_count_distinct } }",
    "{ sales_aggregate(where: {quantity: {in: [1, 2]}, cost: {lt: 50}}) { count quantity_sum } }",
    '{ sales_aggregate(where: {_or: [{category: {eq: "books"}}, {region: {eq: "MEA"}}]}) { count } }',
    '{ sales_aggregate(where: {_not: {region: {in: ["EU", "NA"]}}}, groupBy: {region: true}) { region count } }',
    '{ sales_aggregate(where: {_and: [{revenue: {gt: 100}}, {_or: [{channel: {eq: "web"}}, {channel: {isnull: true}}]}]}) { count } }',
    # empty results
    '{ sales_aggregate(where: {category: {eq: "no such category"}}) { count revenue_sum revenue_avg revenue_median customer_id_count_distinct } }',
    "{ sales_aggregate(where: {category: {in: []}}, groupBy: {category: true}) { category count } }",
    '{ sales_aggregate(where: {occurred_at: {gte: "2030-01-01"}}, groupBy: {occurred_at_month: true}) { occurred_at_month count } }',
    # having
    "{ sales_aggregate(groupBy: {category: true}, having: {revenue_sum: {gt: 5000000}}) { category revenue_sum } }",
    "{ sales_aggregate(groupBy: {region: true, channel: true}, having: {count: {gte: 3000}}) { region channel count } }",
    '{ sales_aggregate(groupBy: {category: true}, having: {category: {neq: "books"}, revenue_avg: {lt: 500}}) { category revenue_avg } }',
    "{ sales_aggregate(groupBy: {product_brand: true}, having: {_or: [{count: {lt: 5900}}, {revenue_median: {gt: 250}}]}) { product_brand count revenue_median } }",
    "{ sales_aggregate(groupBy: {occurred_at_month: true}, having: {revenue_sum: {gt: 1e12}}) { occurred_at_month revenue_sum } }",
    # ordering and paging
    "{ sales_aggregate(groupBy: {category: true}, orderBy: {category: DESC}) { category count } }",
    "{ sales_aggregate(groupBy: {channel: true}, orderBy: {channel: ASC_NULLS_FIRST}) { channel count } }",
    "{ sales_aggregate(groupBy: {channel: true}, orderBy: {channel: DESC_NULLS_FIRST}) { channel count } }",
    "{ sales_aggregate(groupBy: {occurred_at_month: true}, orderBy: {revenue_sum: ASC}, limit: 5, offset: 3) { occurred_at_month revenue_sum } }",
    "{ sales_aggregate(groupBy: {region: true}, orderBy: {count: DESC}, limit: 0) { region count } }",
    "{ sales_aggregate(groupBy: {category: true}, offset: 5) { category count } }",
    # conditional aggregates (FILTER), by alias in having and orderBy
    '{ sales_aggregate(groupBy: {region: true}) { region count web: revenue_sum(filter: {channel: {eq: "web"}}) big: count(filter: {revenue: {gt: 500}}) } }',
    '{ sales_aggregate { books: revenue_avg(filter: {category: {eq: "books"}}) lo: revenue_min(filter: {quantity: {lte: 1}}) hi: revenue_max(filter: {quantity: {gte: 5}}) sd: revenue_stddev(filter: {region: {in: ["EU", "NA"]}}) v: quantity_variance(filter: {channel: {isnull: true}}) } }',
    '{ sales_aggregate(groupBy: {category: true}) { category med: revenue_median(filter: {region: {eq: "EU"}}) p90: revenue_p90(filter: {discount: {isnull: false}}) cd: customer_id_count_distinct(filter: {revenue: {gt: 900}}) } }',
    '{ sales_aggregate(groupBy: {category: true}, having: {field: "web", gt: 100000}, orderBy: [{field: "web", direction: DESC}]) { category web: revenue_sum(filter: {channel: {eq: "web"}}) } }',
    '{ sales_aggregate(groupBy: {channel: true}) { channel none: count(filter: {category: {eq: "no such category"}}) s: revenue_sum(filter: {category: {eq: "no such category"}}) } }',
    '{ sales_aggregate(groupBy: {region: true}, where: {revenue: {gt: 100}}) { region revenue_sum revenue_sum_web: revenue_sum(filter: {channel_eq: "web", _or: [{quantity: {gt: 2}}, {discount: {gt: 0.1}}]}) } }',
    # buckets of a time of day, and FraiseQL's groupBy form
    "{ sales_aggregate(groupBy: {occurred_at_hour: true}, orderBy: {count: DESC}, limit: 10) { occurred_at_hour count revenue_sum } }",
    '{ sales_aggregate(groupBy: {occurred_at: "minute"}, where: {revenue: {gt: 995}}) { occurred_at_minute count } }',
    '{ sales_aggregate(groupBy: {occurred_at_second: true}, where: {occurred_at: {lt: "2023-01-03"}}) { occurred_at_second revenue_sum } }',
    '{ sales_aggregate(groupBy: {occurred_at: "quarter", region: true}) { occurred_at_quarter region count } }',
    # FraiseQL's string, list and distinct aggregates (lists in the order of the fact's id)
    "{ sales_aggregate(groupBy: {customer_id: true}, where: {customer_id: {lte: 40}}) { customer_id count_distinct category_string_agg channel_string_agg channel_array_agg } }",
    "{ sales_aggregate(groupBy: {region: true}, where: {product_id: {eq: 7}}) { region product_name_json_agg quantity_jsonb_agg revenue_array_agg occurred_at_array_agg } }",
    '{ sales_aggregate(where: {customer_id: {lte: 5}}) { count_distinct web: category_string_agg(filter: {channel: {eq: "web"}}) ids: id_array_agg(filter: {revenue: {gt: 900}}) none: region_json_agg(filter: {region: {eq: "nowhere"}}) } }',
]

WINDOWS = [
    '{ sales_window(where: {region: {eq: "EU"}}, partitionBy: [category], orderBy: {occurred_at: ASC}, limit: 1000) {'
    " id category occurred_at revenue rn: row_number revenue_rank: rank(orderBy: {revenue: DESC})"
    " running_revenue: running_sum(field: revenue) revenue_ma7: running_avg(field: revenue, preceding: 6)"
    " prev_revenue: lag(field: revenue, offset: 1) } }",
    "{ sales_window(where: {customer_id: {lte: 20}}, partitionBy: [customer_id], orderBy: {occurred_at: ASC}) {"
    " id customer_id revenue n: row_number d: dense_rank(orderBy: {quantity: DESC}) pr: percent_rank(orderBy: {revenue: ASC})"
    " cd: cume_dist(orderBy: {quantity: ASC}) t: ntile(buckets: 3) } }",
    "{ sales_window(where: {product_id: {in: [3, 7]}}, partitionBy: [product_id], orderBy: {id: ASC}) {"
    " id product_id quantity nxt: lead(field: quantity, offset: 2, default: -1) prv: lag(field: discount)"
    " f: first_value(field: revenue) l: last_value(field: revenue) } }",
    "{ sales_window(where: {customer_id: {lt: 10}}, orderBy: [{revenue: DESC}], limit: 200) {"
    " id revenue r: rank dr: dense_rank rn: row_number } }",
    '{ sales_window(where: {category: {eq: "toys"}, occurred_at: {lt: "2023-03-01"}}, partitionBy: [region], orderBy: {occurred_at: ASC}) {'
    " id region discount s: running_sum(field: discount) c: running_count(field: discount) cr: running_count"
    " mn: running_min(field: cost, preceding: 2, following: 2) mx: running_max(field: cost, preceding: 0, following: 3) } }",
    "{ sales_window(where: {customer_id: {eq: 42}}) { id revenue tot: running_sum(field: revenue) n: running_count } }",
    "{ sales_window(where: {product_id: {eq: 11}}, partitionBy: [channel], orderBy: {occurred_at: DESC}) {"
    ' id channel occurred_at w: first_value(field: occurred_at, preceding: 1, following: 1) ch: lag(field: channel, default: "none") } }',
    "{ sales_window(where: {customer_id: {lte: 3}}, orderBy: {occurred_at: ASC}, offset: 5, limit: 10) {"
    " id customer_id avg3: running_avg(field: revenue, preceding: 2) t: ntile(buckets: 7) } }",
    '{ sales_window(where: {category: {eq: "nothing"}}, orderBy: {id: ASC}) { id rn: row_number } }',
]


def assert_same(a: pl.DataFrame, b: pl.DataFrame, what: str) -> None:
    """Same schema, rows and order; floats within 1e-9 relative."""
    assert a.schema == b.schema, what
    assert a.height == b.height, what
    for name in a.columns:
        x, y = a[name].to_list(), b[name].to_list()
        if a.schema[name] == pl.Float64:
            for i, (u, v) in enumerate(zip(x, y, strict=True)):
                assert (u is None) == (v is None), f"{what}: {name}[{i}] {u} != {v}"
                if u is not None:
                    assert math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-9), (
                        f"{what}: {name}[{i}] {u} != {v}"
                    )
        else:
            assert x == y, f"{what}: column {name} differs"


# ------------------------------------------------- conventions.sql: tf_orders
# uuid keys, an integer-coded category, nullable uuid/date/boolean/varchar
# columns, smallint, and inet (which the arrow plane declines).
ORDERS_AGGREGATES = [
    "{ orders_aggregate { count amount_sum quantity_avg status_code_max } }",
    "{ orders_aggregate(groupBy: {customer_id: true}) { customer_id count amount_sum } }",
    "{ orders_aggregate(groupBy: {product_id: true}, orderBy: {product_id: DESC_NULLS_FIRST}) { product_id count } }",
    "{ orders_aggregate(groupBy: {status_code: true}) { status_code count amount_avg } }",
    "{ orders_aggregate(groupBy: {status_code: true, is_gift: true}) { status_code is_gift count } }",
    "{ orders_aggregate(groupBy: {channel: true}) { channel count quantity_sum } }",
    "{ orders_aggregate(groupBy: {channel: true}, orderBy: {channel: DESC}) { channel count } }",
    "{ orders_aggregate(groupBy: {quantity: true, region: true}) { quantity region count } }",
    "{ orders_aggregate(groupBy: {ordered_on: true}, orderBy: {ordered_on: ASC}, limit: 10) { ordered_on count } }",
    "{ orders_aggregate(groupBy: {shipped_on_month: true}) { shipped_on_month count amount_sum } }",
    "{ orders_aggregate(groupBy: {product_category: true, product_size: true}) { product_category product_size count } }",
    "{ orders_aggregate { customer_id_count_distinct product_id_count_distinct shipped_on_count_distinct is_gift_count_distinct channel_count_distinct } }",
    '{ orders_aggregate(where: {customer_id: {eq: "CUSTOMER_1"}}) { count amount_sum } }',
    '{ orders_aggregate(where: {customer_id: {neq: "CUSTOMER_1"}}) { count } }',
    '{ orders_aggregate(where: {customer_id: {in: ["CUSTOMER_1", "CUSTOMER_2_UPPER"]}}, groupBy: {customer_id: true}) { customer_id count } }',
    '{ orders_aggregate(where: {customer_id: {nin: ["CUSTOMER_1"]}}) { count } }',
    '{ orders_aggregate(where: {customer_id: {eq: "NOBODY"}}) { count amount_sum } }',
    "{ orders_aggregate(where: {product_id: {isnull: true}}) { count } }",
    '{ orders_aggregate(where: {product_id: {neq: "PRODUCT_3"}}) { count } }',  # NULLs never match neq
    '{ orders_aggregate(where: {customer_id: {gt: "80000000-0000-0000-0000-000000000000"}}) { count } }',
    "{ orders_aggregate(where: {shipped_on: {isnull: true}}, groupBy: {status_code: true}) { status_code count } }",
    '{ orders_aggregate(where: {shipped_on: {gte: "2024-02-01"}}) { count } }',
    '{ orders_aggregate(where: {ordered_on: {lt: "2024-01-15"}, is_gift: {eq: true}}) { count } }',
    "{ orders_aggregate(where: {is_gift: {isnull: true}}) { count } }",
    "{ orders_aggregate(where: {is_gift: {neq: true}}) { count } }",
    '{ orders_aggregate(where: {channel: {in: ["web", "Web"]}}) { count } }',
    '{ orders_aggregate(where: {channel: {gt: "p"}}, groupBy: {channel: true}) { channel count } }',
    '{ orders_aggregate(where: {channel: {istartswith: "WE"}}) { count } }',
    '{ orders_aggregate(where: {channel: {icontains: "ecl"}}) { count } }',
    "{ orders_aggregate(where: {quantity: {in: [1, 5]}}, groupBy: {quantity: true}) { quantity count } }",
    "{ orders_aggregate(where: {status_code: {neq: 0}}, groupBy: {status_code: true}) { status_code count } }",
    # bool_and / bool_or over a nullable boolean (NULLs skipped; NULL where no value)
    "{ orders_aggregate(groupBy: {status_code: true}) { status_code is_gift_bool_and is_gift_bool_or channel_string_agg } }",
    '{ orders_aggregate { all: is_gift_bool_and(filter: {is_gift: {isnull: true}}) any: is_gift_bool_or(filter: {channel: {eq: "web"}}) gifts: channel_array_agg(filter: {is_gift: {eq: true}}) } }',
    "{ orders_aggregate(groupBy: {customer_id: true}, having: {count: {gt: 87}}) { customer_id count } }",
]

ORDERS_WINDOWS = [
    '{ orders_window(where: {customer_id: {eq: "CUSTOMER_1"}}, orderBy: {occurred_at: ASC}) {'
    " id customer_id occurred_at rn: row_number prev: lag(field: product_id) s: running_sum(field: amount) } }",
    "{ orders_window(where: {quantity: {eq: 2}}, partitionBy: [customer_id], orderBy: {occurred_at: DESC}, limit: 100) {"
    ' id customer_id channel r: rank(orderBy: {amount: DESC}) n: lead(field: channel, default: "none") } }',
    "{ orders_window(where: {status_code: {eq: 3}}, orderBy: [{shipped_on: ASC_NULLS_FIRST}], limit: 50) {"
    " id shipped_on is_gift f: first_value(field: shipped_on) c: running_count(field: amount) } }",
    "{ orders_window(where: {is_gift: {eq: true}}, partitionBy: [product_id], orderBy: {id: ASC}, limit: 80) {"
    " id product_id quantity d: dense_rank(orderBy: {quantity: DESC}) l: lag(field: quantity, default: 0) } }",
]


def orders_query(template: str) -> str:
    """Fill in the uuids of tests/data/conventions.sql (md5 of the generating text)."""
    import hashlib
    import uuid

    def md5(text: str) -> str:
        return str(uuid.UUID(hashlib.md5(text.encode()).hexdigest()))

    return (
        template.replace("CUSTOMER_1", md5("customer-1"))
        .replace("CUSTOMER_2_UPPER", md5("customer-2").upper())
        .replace("PRODUCT_3", md5("product-3"))
        .replace("NOBODY", "8ec4a1e4-6f2f-4f8f-b5a9-ca3d8a9d2c91")
    )


# ------------------------------------------------- hard numbers: tf_hard
# Values where float64 arithmetic loses what PostgreSQL keeps: bigints whose sum
# cancels (PostgreSQL adds integers exactly) and numeric values of 1e12 with a
# spread of 0.1 (numeric stddev is exact there); and tf_odd, float8 NaN and Infinity.
# The big values sit far apart, so
# that on the cluster (or from disk) they fall into different partitions. A low
# fillfactor spreads 3,000 rows over ~300 pages. (float8 values of 1e9 with a small
# spread are left out: PostgreSQL's own float8 spread accumulates in row order and is
# less exact than ours there — 1.7e-7 apart on these rows.)
HARD_TABLE = """
CREATE TABLE tf_hard (id bigint PRIMARY KEY, big bigint, amount numeric(20, 1),
                      dimensions jsonb NOT NULL) WITH (fillfactor = 10);
INSERT INTO tf_hard
SELECT g,
       CASE g WHEN 5 THEN 4611686018427387904 WHEN 2995 THEN -4611686018427387904
              WHEN 1500 THEN 4611686018427387000 WHEN 1501 THEN -4611686018427386999
              ELSE g % 5 END,
       1000000000000 + (g % 3) / 10.0,
       jsonb_build_object('k', (g % 3)::text)
FROM generate_series(1, 3000) AS g;
VACUUM ANALYZE tf_hard;
CREATE TABLE tf_odd (id bigint PRIMARY KEY, amount float8, quantity int,
                     dimensions jsonb NOT NULL);
INSERT INTO tf_odd VALUES (1, 1, 1, '{"k": "a"}'), (2, 'NaN', 1, '{"k": "a"}'),
    (3, 2, 1, '{"k": "b"}'), (4, 'Infinity', 1, '{"k": "b"}'), (5, 3, 1, '{"k": "c"}');
CREATE TABLE tf_ids (id bigint PRIMARY KEY, amount int, dimensions jsonb NOT NULL);
INSERT INTO tf_ids VALUES
    (1, 1, '{"ext_id": 9007199254740992, "price": 19.99}'),
    (2, 2, '{"ext_id": 9007199254740993, "price": 19.99}'),
    (3, 3, '{"ext_id": 9007199254740993, "price": 0.1}');
"""
#: JSON integers beyond what float64 holds: PostgreSQL keeps 2^53 and 2^53 + 1 apart.
IDS_GROUPED = "{ ids_aggregate(groupBy: {ext_id: true}) { ext_id count } }"
IDS_PRICED = "{ ids_aggregate(groupBy: {price: true}) { price count amount_sum } }"
#: PostgreSQL ranks NaN highest (Polars' max skips it) and carries NaN and infinity
#: through sums: the engine declines a float column holding any.
ODD_AGGREGATE = "{ odd_aggregate(groupBy: {k: true}) { k amount_max amount_sum } }"
HARD_AGGREGATES = [
    "{ hard_aggregate { count big_sum big_avg big_min big_max } }",
    "{ hard_aggregate { amount_stddev amount_variance amount_avg } }",
    "{ hard_aggregate(groupBy: {k: true}) { k count big_sum big_avg amount_stddev } }",
    "{ hard_aggregate(groupBy: {k: true}, having: {big_sum: {gt: 2000}}) { k big_sum } }",
]
