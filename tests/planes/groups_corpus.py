"""What is computed after the groups — calcs, windows over the grouped rows, share,
QUALIFY, limitPerGroup — over the demo tf_sales, each with the PostgreSQL it means written
by hand (window functions over a GROUP BY subquery, ``nullif`` divisions). Entries as in
tests/planes/fraiseql_corpus.py: (name, GraphQL, variables, SQL)."""

from __future__ import annotations

from typing import Any

S = "FROM tf_sales"
CAT = "(dimensions ->> 'category')"
REG = "(dimensions ->> 'region')"
CHAN = "(dimensions ->> 'channel')"
PRODUCT = "(dimensions -> 'product' ->> 'name')"
MONTH = "date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date"
C = 'COLLATE "C"'

GROUPS: list[tuple[str, str, dict[str, Any] | None, str]] = [
    (
        "calcs: margin, percent, average",
        '{ sales_aggregate(groupBy: {category: true}) { category revenue_sum cost_sum count margin: calc(expr: "revenue_sum - cost_sum") pct: calc(expr: "100 * (revenue_sum - cost_sum) / revenue_sum") aov: calc(expr: "revenue_sum / count") } }',
        None,
        f"SELECT cat, rs, cs, n, rs - cs, 100 * (rs - cs) / nullif(rs, 0), rs / nullif(n::float8, 0)"
        f" FROM (SELECT {CAT} AS cat, sum(revenue)::float8 AS rs, sum(cost)::float8 AS cs, count(*) AS n {S} GROUP BY 1) g"
        f" ORDER BY cat {C}",
    ),
    (
        "calc: division by zero and NULLs are NULL",
        '{ sales_aggregate(groupBy: {channel: true}, where: {discount: {isnull: true}}) { channel count discount_sum z: calc(expr: "count / (count - count)") d: calc(expr: "discount_sum + 1") k: calc(expr: "coalesce(discount_sum, -1) * 2") } }',
        None,
        f"SELECT ch, n, ds, n::float8 / nullif((n - n)::float8, 0), ds + 1, coalesce(ds, -1) * 2"
        f" FROM (SELECT {CHAN} AS ch, sum(discount)::float8 AS ds, count(*) AS n {S} WHERE discount IS NULL GROUP BY 1) g"
        f" ORDER BY ch {C} NULLS LAST",
    ),
    (
        "calc: functions",
        '{ sales_aggregate(groupBy: {region: true}) { region a: calc(expr: "abs(cost_sum - revenue_sum)") r: calc(expr: "round(revenue_avg, 1)") r0: calc(expr: "round(revenue_avg)") lo: calc(expr: "least(revenue_avg, cost_avg, 300)") hi: calc(expr: "greatest(revenue_avg, 450)") nz: calc(expr: "nullif(count, 12680)") revenue_avg cost_avg count revenue_sum cost_sum } }',
        None,
        f"SELECT reg, abs(cs - rs), round(ra::numeric, 1)::float8, round(ra::numeric, 0)::float8, least(ra, ca, 300), greatest(ra, 450), nullif(n::float8, 12680), ra, ca, n, rs, cs"
        f" FROM (SELECT {REG} AS reg, avg(revenue)::float8 AS ra, avg(cost)::float8 AS ca, count(*) AS n, sum(revenue)::float8 AS rs, sum(cost)::float8 AS cs {S} GROUP BY 1) g"
        f" ORDER BY reg {C}",
    ),
    (
        "period over period: lag and growth",
        '{ sales_aggregate(groupBy: {category: true, occurred_at_month: true}, where: {category: {in: ["books", "toys"]}, occurred_at: {gte: "2024-01-01T00:00:00Z", lt: "2024-07-01T00:00:00Z"}}) { category occurred_at_month revenue_sum prev: lag(field: revenue_sum, partitionBy: [category], orderBy: {occurred_at_month: ASC}) growth: calc(expr: "(revenue_sum - prev) / prev") } }',
        None,
        f"SELECT cat, m, rs, prev, (rs - prev) / nullif(prev, 0) FROM (SELECT *, lag(rs, 1) OVER (PARTITION BY cat ORDER BY m, cat {C}) AS prev"
        f" FROM (SELECT {CAT} AS cat, {MONTH} AS m, sum(revenue)::float8 AS rs {S}"
        f" WHERE {CAT} IN ('books', 'toys') AND occurred_at >= '2024-01-01T00:00:00Z' AND occurred_at < '2024-07-01T00:00:00Z' GROUP BY 1, 2) g) w"
        f" ORDER BY cat {C}, m",
    ),
    (
        "share of total and of partition",
        "{ sales_aggregate(groupBy: {region: true, channel: true}) { region channel revenue_sum s: share(field: revenue_sum, partitionBy: [region]) all: share(field: count) count } }",
        None,
        f"SELECT reg, ch, rs, rs / nullif(sum(rs) OVER (PARTITION BY reg), 0), n::float8 / nullif(sum(n::float8) OVER (), 0), n"
        f" FROM (SELECT {REG} AS reg, {CHAN} AS ch, sum(revenue)::float8 AS rs, count(*) AS n {S} GROUP BY 1, 2) g"
        f" ORDER BY reg {C}, ch {C} NULLS LAST",
    ),
    (
        "ranks with ties",
        "{ sales_aggregate(groupBy: {quantity: true}, where: {product_id: {lte: 3}}) { quantity count rk: rank(orderBy: {count: DESC}) dr: dense_rank(orderBy: {count: DESC}) rn: row_number(orderBy: {count: DESC}) pr: percent_rank(orderBy: {count: ASC}) cd: cume_dist(orderBy: {count: ASC}) nt: ntile(buckets: 3, orderBy: {count: DESC}) } }",
        None,
        "SELECT q, n, rank() OVER (ORDER BY n DESC), dense_rank() OVER (ORDER BY n DESC), row_number() OVER (ORDER BY n DESC, q),"
        " percent_rank() OVER (ORDER BY n), cume_dist() OVER (ORDER BY n), ntile(3) OVER (ORDER BY n DESC, q)"
        f" FROM (SELECT quantity AS q, count(*) AS n {S} WHERE product_id <= 3 GROUP BY 1) g ORDER BY q",
    ),
    (
        "top 3 per group (limitPerGroup)",
        "{ sales_aggregate(groupBy: {region: true, product_brand: true}, limitPerGroup: {partitionBy: [region], orderBy: [{revenue_sum: DESC}], limit: 3}) { region product_brand revenue_sum } }",
        None,
        f"SELECT reg, b, rs FROM (SELECT *, row_number() OVER (PARTITION BY reg ORDER BY rs DESC, reg {C}, b {C}) AS rn"
        f" FROM (SELECT {REG} AS reg, (dimensions -> 'product' ->> 'brand') AS b, sum(revenue)::float8 AS rs {S} GROUP BY 1, 2) g) t"
        f" WHERE rn <= 3 ORDER BY reg {C}, b {C}",
    ),
    (
        "limitPerGroup with ties on counts",
        "{ sales_aggregate(groupBy: {quantity: true, region: true}, where: {product_id: {lte: 2}}, limitPerGroup: {partitionBy: [region], orderBy: [{count: DESC}], limit: 2}, orderBy: [{region: ASC}, {count: DESC}]) { region quantity count } }",
        None,
        f"SELECT reg, q, n FROM (SELECT *, row_number() OVER (PARTITION BY reg ORDER BY n DESC, q, reg {C}) AS rn"
        f" FROM (SELECT quantity AS q, {REG} AS reg, count(*) AS n {S} WHERE product_id <= 2 GROUP BY 1, 2) g) t"
        f" WHERE rn <= 2 ORDER BY reg {C}, n DESC, q, reg {C}",
    ),
    (
        "having on a rank (QUALIFY) and on a count (HAVING)",
        '{ sales_aggregate(groupBy: {category: true, region: true}, having: {count: {gte: 2400}, field: "rk", lte: 2}) { category region count rk: rank(partitionBy: [category], orderBy: {count: DESC}) } }',
        None,
        f"SELECT cat, reg, n, rk FROM (SELECT *, rank() OVER (PARTITION BY cat ORDER BY n DESC) AS rk"
        f" FROM (SELECT {CAT} AS cat, {REG} AS reg, count(*) AS n {S} GROUP BY 1, 2 HAVING count(*) >= 2400) g) w"
        f" WHERE rk <= 2 ORDER BY reg {C}, cat {C}",
    ),
    (
        "running totals and frames",
        '{ sales_aggregate(groupBy: {occurred_at_month: true}, where: {occurred_at: {lt: "2023-07-01T00:00:00Z"}}) { occurred_at_month revenue_sum ytd: running_sum(field: revenue_sum, orderBy: {occurred_at_month: ASC}) avg3: running_avg(field: revenue_sum, orderBy: {occurred_at_month: ASC}, preceding: 2) n: running_count(orderBy: {occurred_at_month: ASC}) first: first_value(field: revenue_sum, orderBy: {occurred_at_month: ASC}) last: last_value(field: revenue_sum, orderBy: {occurred_at_month: ASC}) hi: running_max(field: revenue_sum, orderBy: {occurred_at_month: ASC}, preceding: 1, following: 1) } }',
        None,
        "SELECT m, rs, sum(rs) OVER (ORDER BY m ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),"
        " avg(rs) OVER (ORDER BY m ROWS BETWEEN 2 PRECEDING AND CURRENT ROW),"
        " count(*) OVER (ORDER BY m ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),"
        " first_value(rs) OVER (ORDER BY m ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING),"
        " last_value(rs) OVER (ORDER BY m ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING),"
        " max(rs) OVER (ORDER BY m ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING)"
        f" FROM (SELECT {MONTH} AS m, sum(revenue)::float8 AS rs {S} WHERE occurred_at < '2023-07-01T00:00:00Z' GROUP BY 1) g ORDER BY m",
    ),
    (
        "a window over a calc, ordered by a calc",
        '{ sales_aggregate(groupBy: {category: true}, orderBy: [{field: "margin", direction: DESC}]) { category margin: calc(expr: "revenue_sum - cost_sum") cum: running_sum(field: margin, orderBy: [{field: "margin", direction: DESC}]) revenue_sum cost_sum } }',
        None,
        f"SELECT cat, mg, sum(mg) OVER (ORDER BY mg DESC, cat {C} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW), rs, cs"
        f" FROM (SELECT *, rs - cs AS mg FROM (SELECT {CAT} AS cat, sum(revenue)::float8 AS rs, sum(cost)::float8 AS cs {S} GROUP BY 1) g) c"
        f" ORDER BY mg DESC, cat {C}",
    ),
    (
        "lead with a default, calc over a number key",
        '{ sales_aggregate(groupBy: {quantity: true}) { quantity count next: lead(field: count, orderBy: {quantity: ASC}, default: 0) units: calc(expr: "quantity * count") } }',
        None,
        f"SELECT q, n, lead(n, 1, 0) OVER (ORDER BY q), q::float8 * n FROM (SELECT quantity AS q, count(*) AS n {S} GROUP BY 1) g ORDER BY q",
    ),
    (
        "no group keys",
        '{ sales_aggregate { revenue_sum cost_sum m: calc(expr: "(revenue_sum - cost_sum) / revenue_sum") s: share(field: revenue_sum) } }',
        None,
        f"SELECT rs, cs, (rs - cs) / nullif(rs, 0), rs / nullif(rs, 0) FROM (SELECT sum(revenue)::float8 AS rs, sum(cost)::float8 AS cs {S}) g",
    ),
    (
        "empty groups",
        '{ sales_aggregate(groupBy: {region: true}, where: {region: {eq: "nowhere"}}) { region count c: calc(expr: "count * 2") r: rank(orderBy: {count: DESC}) } }',
        None,
        f"SELECT {REG}, count(*), count(*) * 2.0, 1 {S} WHERE {REG} = 'nowhere' GROUP BY 1",
    ),
    (
        "top N per group through the request format",
        "{ sales_aggregate }",
        {
            "groupBy": {"region": True, "category": True},
            "aggregates": [{"count": {}}],
            "orderBy": {"count": "DESC"},
            "limit": 4,
        },
        f"SELECT {REG}, {CAT}, count(*) {S} GROUP BY 1, 2 ORDER BY 3 DESC, {REG} {C}, {CAT} {C} LIMIT 4",
    ),
    (
        "top N per group by a calc",
        '{ sales_aggregate(groupBy: {region: true, category: true}, limitPerGroup: {partitionBy: [region], orderBy: [{field: "margin", direction: DESC}], limit: 1}) { region category margin: calc(expr: "revenue_sum - cost_sum") revenue_sum cost_sum } }',
        None,
        f"SELECT reg, cat, mg, rs, cs FROM (SELECT *, row_number() OVER (PARTITION BY reg ORDER BY mg DESC, reg {C}, cat {C}) AS rn"
        f" FROM (SELECT *, rs - cs AS mg FROM (SELECT {REG} AS reg, {CAT} AS cat, sum(revenue)::float8 AS rs, sum(cost)::float8 AS cs {S} GROUP BY 1, 2) g) c) t"
        f" WHERE rn = 1 ORDER BY reg {C}, cat {C}",
    ),
]
