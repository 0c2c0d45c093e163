"""FraiseQL's own query forms, each with the PostgreSQL it means written by hand: the
compatibility corpus. Written from FraiseQL's source (its operator table, aggregate and
window parsers, e2e tests) and its analytics docs, over the demo database (users, tf_sales).

Each entry: (name, GraphQL text, variables or None, hand-written SQL). The SQL returns the
rows the query must answer, in order, its columns in the selection's order.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

import psycopg

U = "FROM v_user"
S = "FROM tf_sales"
REGION = "(dimensions ->> 'region')"
CATEGORY = "(dimensions ->> 'category')"
CHANNEL = "(dimensions ->> 'channel')"
AGE = "(data ->> 'age')::int"
NAME = "(data ->> 'name')"

ROWS: list[tuple[str, str, dict[str, Any] | None, str]] = [
    # Hasura-style operators, as FraiseQL's docs write them
    (
        "_eq",
        '{ users(where: {status: {_eq: "banned"}}, orderBy: {id: ASC}, limit: 5) { id name } }',
        None,
        f"SELECT id, {NAME} {U} WHERE data ->> 'status' = 'banned' ORDER BY id LIMIT 5",
    ),
    (
        "_neq",
        '{ users(where: {status: {_neq: "active"}}, orderBy: {id: ASC}, limit: 5) { id status } }',
        None,
        f"SELECT id, data ->> 'status' {U} WHERE data ->> 'status' <> 'active' ORDER BY id LIMIT 5",
    ),
    (
        "_gt",
        "{ users(where: {age: {_gt: 85}}, orderBy: {id: ASC}, limit: 5) { id age } }",
        None,
        f"SELECT id, {AGE} {U} WHERE {AGE} > 85 ORDER BY id LIMIT 5",
    ),
    (
        "_gte _lte",
        "{ users(where: {age: {_gte: 30, _lte: 31}}, orderBy: {id: ASC}, limit: 5) { id age } }",
        None,
        f"SELECT id, {AGE} {U} WHERE {AGE} BETWEEN 30 AND 31 ORDER BY id LIMIT 5",
    ),
    (
        "_lt",
        "{ users(where: {age: {_lt: 19}}, orderBy: {id: DESC}, limit: 5) { id age } }",
        None,
        f"SELECT id, {AGE} {U} WHERE {AGE} < 19 ORDER BY id DESC LIMIT 5",
    ),
    (
        "_in",
        '{ users(where: {status: {_in: ["banned", "pending"]}}, orderBy: {id: ASC}, limit: 5) { id status } }',
        None,
        f"SELECT id, data ->> 'status' {U} WHERE data ->> 'status' IN ('banned', 'pending') ORDER BY id LIMIT 5",
    ),
    (
        "_nin",
        '{ users(where: {status: {_nin: ["active", "inactive"]}}, orderBy: {id: ASC}, limit: 5) { id status } }',
        None,
        f"SELECT id, data ->> 'status' {U} WHERE data ->> 'status' NOT IN ('active', 'inactive') ORDER BY id LIMIT 5",
    ),
    (
        "_is_null",
        "{ users(where: {age: {_is_null: true}}, orderBy: {id: ASC}, limit: 5) { id } }",
        None,
        f"SELECT id {U} WHERE data ->> 'age' IS NULL ORDER BY id LIMIT 5",
    ),
    # FraiseQL's operator table: names, aliases, negations, camelCase
    (
        "ne",
        '{ users(where: {status: {ne: "active"}}, orderBy: {id: ASC}, limit: 3) { id } }',
        None,
        f"SELECT id {U} WHERE data ->> 'status' <> 'active' ORDER BY id LIMIT 3",
    ),
    (
        "notin",
        '{ users(where: {status: {notin: ["active"]}}, orderBy: {id: ASC}, limit: 3) { id } }',
        None,
        f"SELECT id {U} WHERE data ->> 'status' <> 'active' ORDER BY id LIMIT 3",
    ),
    (
        "is_null",
        "{ users(where: {email: {is_null: true}}, orderBy: {id: ASC}, limit: 3) { id } }",
        None,
        f"SELECT id {U} WHERE data ->> 'email' IS NULL ORDER BY id LIMIT 3",
    ),
    (
        "is_not_null",
        "{ users(where: {age: {is_not_null: true}}, orderBy: {id: ASC}, limit: 3) { id } }",
        None,
        f"SELECT id {U} WHERE data ->> 'age' IS NOT NULL ORDER BY id LIMIT 3",
    ),
    (
        "isNull",
        "{ users(where: {age: {isNull: true}}, orderBy: {id: DESC}, limit: 3) { id } }",
        None,
        f"SELECT id {U} WHERE data ->> 'age' IS NULL ORDER BY id DESC LIMIT 3",
    ),
    (
        "nlike",
        '{ users(where: {name: {nlike: "A%"}}, orderBy: {id: ASC}, limit: 5) { id name } }',
        None,
        f"SELECT id, {NAME} {U} WHERE NOT ({NAME} LIKE 'A%') ORDER BY id LIMIT 5",
    ),
    (
        "nilike",
        '{ users(where: {email: {nilike: "%EXAMPLE.COM"}}, orderBy: {id: ASC}, limit: 5) { id email } }',
        None,
        f"SELECT id, data ->> 'email' {U} WHERE NOT (data ->> 'email' ILIKE '%EXAMPLE.COM') ORDER BY id LIMIT 5",
    ),
    (
        "nregex",
        '{ users(where: {status: {nregex: "^(active|inactive)$"}}, orderBy: {id: ASC}, limit: 5) { id status } }',
        None,
        f"SELECT id, data ->> 'status' {U} WHERE NOT (data ->> 'status' ~ '^(active|inactive)$') ORDER BY id LIMIT 5",
    ),
    (
        "startsWith",
        '{ users(where: {email: {startsWith: "user1"}}, orderBy: {id: ASC}, limit: 5) { id } }',
        None,
        f"SELECT id {U} WHERE starts_with(data ->> 'email', 'user1') ORDER BY id LIMIT 5",
    ),
    (
        "isnotnull",
        "{ users(where: {email: {isnotnull: true}}, orderBy: {id: DESC}, limit: 5) { id email } }",
        None,
        f"SELECT id, data ->> 'email' {U} WHERE data ->> 'email' IS NOT NULL ORDER BY id DESC LIMIT 5",
    ),
    # orderBy forms
    (
        "orderBy {field, direction}",
        '{ users(where: {score: {isnull: false}}, orderBy: [{field: "score", direction: DESC}, {field: "id"}], limit: 4) { id score } }',
        None,
        f"SELECT id, (data ->> 'score')::float8 {U} WHERE data ->> 'score' IS NOT NULL ORDER BY (data ->> 'score')::numeric DESC, id LIMIT 4",
    ),
    (
        "orderBy {x: DESC}",
        "{ users(orderBy: {id: DESC}, limit: 3) { id } }",
        None,
        f"SELECT id {U} ORDER BY id DESC LIMIT 3",
    ),
]

AGGS: list[tuple[str, str, dict[str, Any] | None, str]] = [
    # flattened where and having, orderBy forms
    (
        "having flattened",
        "{ sales_aggregate(groupBy: {region: true}, having: {count_gte: 20000, revenue_sum_gt: 1}) { region count revenue_sum } }",
        None,
        f'SELECT {REGION}, count(*), sum(revenue)::float8 {S} GROUP BY 1 HAVING count(*) >= 20000 AND sum(revenue) > 1 ORDER BY {REGION} COLLATE "C"',
    ),
    (
        "where flattened",
        '{ sales_aggregate(where: {customer_id_eq: 5, occurred_at_gte: "2024-01-01T00:00:00Z"}) { count revenue_sum } }',
        None,
        f"SELECT count(*), sum(revenue)::float8 {S} WHERE customer_id = 5 AND occurred_at >= '2024-01-01T00:00:00Z'",
    ),
    (
        "where flattened negation",
        '{ sales_aggregate(groupBy: {region: true}, where: {region_ne: "EU", revenue_notin: [1, 2]}) { region count } }',
        None,
        f"SELECT {REGION}, count(*) {S} WHERE {REGION} <> 'EU' AND revenue NOT IN (1, 2) GROUP BY 1 ORDER BY {REGION} COLLATE \"C\"",
    ),
    (
        "orderBy field/direction",
        '{ sales_aggregate(groupBy: {category: true}, orderBy: [{field: "revenue_sum", direction: DESC}], limit: 3) { category revenue_sum } }',
        None,
        f'SELECT {CATEGORY}, sum(revenue)::float8 {S} GROUP BY 1 ORDER BY 2 DESC, {CATEGORY} COLLATE "C" LIMIT 3',
    ),
    (
        "orderBy object",
        "{ sales_aggregate(groupBy: {channel: true}, orderBy: {count: DESC}) { channel count } }",
        None,
        f'SELECT {CHANNEL}, count(*) {S} GROUP BY 1 ORDER BY 2 DESC, {CHANNEL} COLLATE "C" NULLS LAST',
    ),
    (
        "_in in fact where",
        '{ sales_aggregate(where: {region: {_in: ["EU", "NA"]}}, groupBy: {region: true}) { region count } }',
        None,
        f"SELECT {REGION}, count(*) {S} WHERE {REGION} IN ('EU', 'NA') GROUP BY 1 ORDER BY {REGION} COLLATE \"C\"",
    ),
    (
        "_nin in having",
        '{ sales_aggregate(groupBy: {region: true}, having: {region: {_nin: ["EU"]}}) { region count } }',
        None,
        f"SELECT {REGION}, count(*) {S} GROUP BY 1 HAVING {REGION} NOT IN ('EU') ORDER BY {REGION} COLLATE \"C\"",
    ),
    # conditional aggregates (FraiseQL's analytics docs)
    (
        "filter: sums by payment",
        '{ sales_aggregate(groupBy: {region: true}) { region count revenue_sum web: revenue_sum(filter: {channel: {_eq: "web"}}) store: revenue_sum(filter: {channel: {_eq: "store"}}) } }',
        None,
        f"SELECT {REGION}, count(*), sum(revenue)::float8, (sum(revenue) FILTER (WHERE {CHANNEL} = 'web'))::float8, (sum(revenue) FILTER (WHERE {CHANNEL} = 'store'))::float8 {S} GROUP BY 1 ORDER BY {REGION} COLLATE \"C\"",
    ),
    (
        "filter: count, by alias",
        '{ sales_aggregate(groupBy: {category: true}, having: {field: "big", gt: 3000}, orderBy: [{field: "big", direction: DESC}]) { category big: count(filter: {revenue: {gt: 500}}) } }',
        None,
        f'SELECT {CATEGORY}, count(*) FILTER (WHERE revenue > 500) {S} GROUP BY 1 HAVING count(*) FILTER (WHERE revenue > 500) > 3000 ORDER BY 2 DESC, {CATEGORY} COLLATE "C"',
    ),
    (
        "filter: median, distinct",
        '{ sales_aggregate(groupBy: {region: true}) { region med: revenue_median(filter: {quantity: {gte: 3}}) buyers: customer_id_count_distinct(filter: {category: {eq: "books"}}) } }',
        None,
        f"SELECT {REGION}, (percentile_cont(0.5) WITHIN GROUP (ORDER BY revenue) FILTER (WHERE quantity >= 3))::float8, count(DISTINCT customer_id) FILTER (WHERE {CATEGORY} = 'books') {S} GROUP BY 1 ORDER BY {REGION} COLLATE \"C\"",
    ),
    (
        "filter: none pass",
        '{ sales_aggregate { n: count(filter: {region: {eq: "nowhere"}}) s: revenue_avg(filter: {region: {eq: "nowhere"}}) } }',
        None,
        f"SELECT count(*) FILTER (WHERE {REGION} = 'nowhere'), (avg(revenue) FILTER (WHERE {REGION} = 'nowhere'))::float8 {S}",
    ),
    # time buckets
    (
        "groupBy string day",
        '{ sales_aggregate(groupBy: {occurred_at: "day"}, orderBy: {occurred_at_day: ASC}, limit: 5) { occurred_at_day count } }',
        None,
        f"SELECT (occurred_at AT TIME ZONE 'UTC')::date, count(*) {S} GROUP BY 1 ORDER BY 1 LIMIT 5",
    ),
    (
        "hour",
        '{ sales_aggregate(groupBy: {occurred_at_hour: true}, where: {occurred_at: {lt: "2023-01-03T00:00:00Z"}}) { occurred_at_hour count revenue_sum } }',
        None,
        f"SELECT date_trunc('hour', occurred_at, 'UTC'), count(*), sum(revenue)::float8 {S} WHERE occurred_at < '2023-01-03T00:00:00Z' GROUP BY 1 ORDER BY 1",
    ),
    (
        "groupBy string minute",
        '{ sales_aggregate(groupBy: {occurred_at: "minute"}, where: {revenue: {gt: 1900}}, orderBy: {occurred_at_minute: DESC}, limit: 5) { occurred_at_minute count } }',
        None,
        f"SELECT date_trunc('minute', occurred_at, 'UTC'), count(*) {S} WHERE revenue > 1900 GROUP BY 1 ORDER BY 1 DESC LIMIT 5",
    ),
    (
        "second (keys in the schema's order)",
        '{ sales_aggregate(groupBy: {occurred_at_second: true, region: true}, where: {occurred_at: {lt: "2023-01-02T00:00:00Z"}}) { occurred_at_second region count } }',
        None,
        f"SELECT date_trunc('second', occurred_at, 'UTC'), {REGION}, count(*) {S} WHERE occurred_at < '2023-01-02T00:00:00Z' GROUP BY 1, 2 ORDER BY {REGION} COLLATE \"C\", 1",
    ),
    (
        "groupBy string month",
        '{ sales_aggregate(groupBy: {occurred_at: "month", category: true}, where: {category: {eq: "toys"}}, limit: 4) { occurred_at_month category revenue_sum } }',
        None,
        f"SELECT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date, {CATEGORY}, sum(revenue)::float8 {S} WHERE {CATEGORY} = 'toys' GROUP BY 1, 2 ORDER BY 1, {CATEGORY} COLLATE \"C\" LIMIT 4",
    ),
    # FraiseQL's aggregates
    (
        "count_distinct bare",
        "{ sales_aggregate(groupBy: {category: true}) { category count_distinct } }",
        None,
        # FraiseQL counts the first dimension (here region: the schema's first, as sampled)
        f'SELECT {CATEGORY}, count(DISTINCT {REGION}) {S} GROUP BY 1 ORDER BY {CATEGORY} COLLATE "C"',
    ),
    (
        "string_agg",
        "{ sales_aggregate(groupBy: {customer_id: true}, where: {customer_id: {lte: 3}}) { customer_id category_string_agg } }",
        None,
        f"SELECT customer_id, string_agg({CATEGORY}, ', ' ORDER BY id) {S} WHERE customer_id <= 3 GROUP BY 1 ORDER BY 1",
    ),
    (
        "array_agg",
        "{ sales_aggregate(groupBy: {customer_id: true}, where: {customer_id: {lte: 3}}) { customer_id channel_array_agg quantity_array_agg } }",
        None,
        f"SELECT customer_id, array_agg({CHANNEL} ORDER BY id), array_agg(quantity ORDER BY id) {S} WHERE customer_id <= 3 GROUP BY 1 ORDER BY 1",
    ),
    (
        "json_agg jsonb_agg",
        "{ sales_aggregate(where: {customer_id: {eq: 9}}) { region_json_agg revenue_jsonb_agg } }",
        None,
        f"SELECT array_agg({REGION} ORDER BY id), array_agg(revenue::float8 ORDER BY id) {S} WHERE customer_id = 9",
    ),
    (
        "string_agg filtered",
        '{ sales_aggregate(where: {customer_id: {lte: 2}}) { web: category_string_agg(filter: {channel: {eq: "web"}}) } }',
        None,
        f"SELECT string_agg({CATEGORY}, ', ' ORDER BY id) FILTER (WHERE {CHANNEL} = 'web') {S} WHERE customer_id <= 2",
    ),
    # the variables-only request (FraiseQL's runtime format)
    (
        "request: aggregate",
        "{ sales_aggregate }",
        {
            "table": "tf_sales",
            "groupBy": {"category": True, "occurred_at": "month"},
            "aggregates": [{"count": {}}, {"revenue_sum": {}}],
            "having": {"revenue_sum_gt": 90000},
            "orderBy": {"revenue_sum": "DESC"},
            "limit": 5,
        },
        f"SELECT {CATEGORY}, date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date, count(*), sum(revenue)::float8 {S} GROUP BY 1, 2 HAVING sum(revenue) > 90000 ORDER BY 4 DESC, {CATEGORY} COLLATE \"C\", 2 LIMIT 5",
    ),
    (
        "request: where, offset",
        "query { sales_aggregate }",
        {
            "table": "tf_sales",
            "where": {"region_eq": "EU", "quantity_gte": 5},
            "groupBy": {"channel": True},
            "aggregates": [{"count": {}}, {"revenue_avg": {}}],
            "orderBy": {"channel": "asc"},
            "limit": 2,
            "offset": 1,
        },
        f"SELECT {CHANNEL}, count(*), avg(revenue)::float8 {S} WHERE {REGION} = 'EU' AND quantity >= 5 GROUP BY 1 ORDER BY {CHANNEL} COLLATE \"C\" NULLS LAST LIMIT 2 OFFSET 1",
    ),
]

WINDOWS: list[tuple[str, str, dict[str, Any] | None, str]] = [
    (
        "window orderBy field/direction",
        '{ sales_window(where: {customer_id: {eq: 4}}, orderBy: [{field: "id", direction: ASC}]) { id revenue rank(partitionBy: [region], orderBy: [{field: "revenue", direction: DESC}]) } }',
        None,
        f"SELECT id, revenue::float8, rank() OVER (PARTITION BY {REGION} ORDER BY revenue DESC) {S} WHERE customer_id = 4 ORDER BY id",
    ),
    (
        "window flattened where",
        "{ sales_window(where: {customer_id_lte: 2}, orderBy: {id: DESC}) { id running_sum(field: revenue, orderBy: {id: ASC}) } }",
        None,
        f"SELECT id, (sum(revenue) OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW))::float8 {S} WHERE customer_id <= 2 ORDER BY id DESC",
    ),
    (
        "request: window",
        "{ sales_window }",
        {
            "table": "tf_sales",
            "select": [
                {"type": "filter", "name": "id", "alias": "id"},
                {"type": "dimension", "path": "category", "alias": "cat"},
                {"type": "measure", "name": "revenue", "alias": "revenue"},
            ],
            "windows": [
                {
                    "function": {"type": "row_number"},
                    "alias": "rn",
                    "partitionBy": [{"type": "dimension", "path": "category"}],
                    "orderBy": [{"field": "revenue", "direction": "DESC"}],
                },
                {
                    "function": {"type": "running_sum", "measure": "revenue"},
                    "alias": "total",
                    "orderBy": [{"field": "id", "direction": "ASC"}],
                    "frame": {
                        "frame_type": "ROWS",
                        "start": {"type": "n_preceding", "n": 1},
                        "end": {"type": "current_row"},
                    },
                },
                {
                    "function": {"type": "lag", "field": "revenue", "offset": 1, "default": 0},
                    "alias": "prev",
                    "orderBy": [{"field": "id"}],
                },
            ],
            "where": {"customer_id_eq": 6},
            "orderBy": [{"field": "id", "direction": "ASC"}],
        },
        f"SELECT id, {CATEGORY}, revenue::float8, row_number() OVER (PARTITION BY {CATEGORY} ORDER BY revenue DESC, id),"
        f" (sum(revenue) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW))::float8,"
        f" lag(revenue::float8, 1, 0) OVER (ORDER BY id) {S} WHERE customer_id = 6 ORDER BY id",
    ),
]

CORPUS = ROWS + AGGS + WINDOWS


def expected(dsn: str, statement: str) -> list[tuple[Any, ...]]:
    """The hand-written SQL's rows, in the session's time zone (UTC), numbers as floats."""
    with psycopg.connect(dsn) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        return [tuple(_plain(v) for v in row) for row in conn.execute(statement).fetchall()]  # type: ignore[arg-type]


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def same_rows(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]], what: str) -> None:
    """Equal rows; floats within 1e-9 relative; times equal as instants."""
    assert len(got) == len(want), f"{what}: {len(got)} rows, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert len(g) == len(w), f"{what}: row {i} has {len(g)} columns, expected {len(w)}"
        for j, (a, b) in enumerate(zip(g, w, strict=True)):
            assert _equal(a, b), f"{what}: row {i} column {j}: {a!r} != {b!r}"


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return a == b
    return bool(a == b)


def check_entry(
    session: Any, dsn: str, backend: str, name: str, query: str, variables: Any, statement: str
) -> None:
    """``query`` answered on ``backend`` is what the hand-written ``statement`` returns (an
    entry may find no row only when its name says it is about empty groups)."""
    import fraiseql_nb as fq

    want = expected(dsn, statement)
    assert want or "empty" in name, f"{name}: no row: the test could not fail"
    result = session.execute(query, variables, backend=backend)
    assert isinstance(result, fq.Result) and result.backend == backend
    same_rows(result.df.rows(), want, name)
