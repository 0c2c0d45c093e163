"""The arrow and postgres planes are each other's oracle: same rows, same columns, same dtypes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fraiseql_nb as fq
from tests.planes.corpus import (
    AGGREGATES,
    HARD_AGGREGATES,
    IDS_GROUPED,
    IDS_PRICED,
    ODD_AGGREGATE,
    ORDERS_AGGREGATES,
    ORDERS_WINDOWS,
    WINDOWS,
    assert_same,
    orders_query,
)


def both(session: fq.Session, query: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    pg = session.execute(query, backend="postgres")
    ar = session.execute(query, backend="arrow")
    assert isinstance(pg, fq.Result) and isinstance(ar, fq.Result)
    assert (pg.backend, ar.backend) == ("postgres", "arrow")
    return pg.df, ar.df


def test_the_corpus_is_big_enough() -> None:
    assert len(AGGREGATES) + len(WINDOWS) >= 60


@pytest.mark.parametrize("query", AGGREGATES)
def test_aggregates_agree(session: fq.Session, query: str) -> None:
    pg, ar = both(session, query)
    assert_same(pg, ar, query)


@pytest.mark.parametrize("query", WINDOWS)
def test_windows_agree(session: fq.Session, query: str) -> None:
    pg, ar = both(session, query)
    assert_same(pg, ar, query)


def test_an_aggregate_without_keys_over_no_rows_is_one_row(session: fq.Session) -> None:
    pg, ar = both(
        session,
        '{ sales_aggregate(where: {category: {eq: "none"}}) { count revenue_sum revenue_avg } }',
    )
    assert (
        pg.to_dicts() == ar.to_dicts() == [{"count": 0, "revenue_sum": None, "revenue_avg": None}]
    )


def test_nulls_are_a_group_and_are_skipped_by_aggregates(session: fq.Session) -> None:
    pg, ar = both(
        session,
        "{ sales_aggregate(groupBy: {channel: true}, orderBy: {channel: ASC_NULLS_FIRST}) { channel count discount_count_distinct } }",
    )
    assert pg.to_dicts() == ar.to_dicts()
    assert pg["channel"][0] is None
    assert pg["discount_count_distinct"].max() == 4  # 0.05, 0.10, 0.15, 0.25: NULL is not counted


# ------------------------------------------------------------- generated

GROUP_KEYS = [
    "category",
    "region",
    "channel",
    "product_brand",
    "customer_id",
    "occurred_at_month",
    "occurred_at_week",
    "occurred_at_year",
]
AGGS = [
    "count",
    "revenue_sum",
    "revenue_avg",
    "revenue_min",
    "revenue_max",
    "revenue_stddev",
    "revenue_variance",
    "revenue_median",
    "revenue_p25",
    "revenue_p99",
    "quantity_sum",
    "discount_avg",
    "discount_sum",
    "cost_p75",
    "customer_id_count_distinct",
    "channel_count_distinct",
    "count_distinct",
    "category_string_agg",
    "region_array_agg",
]
FILTERS = [
    None,
    '{category: {in: ["books", "garden"]}}',
    '{occurred_at: {gte: "2024-03-01", lt: "2024-09-01"}}',
    "{customer_id: {lte: 500}}",
    "{channel: {isnull: true}}",
    "{discount: {isnull: false}, quantity: {gte: 2}}",
    '{_or: [{region: {eq: "APAC"}}, {revenue: {gt: 2000}}]}',
    '{_not: {product_brand: {in: ["Acme", "Globex"]}}}',
]


@st.composite
def aggregate_queries(
    draw: Any,
    root: str = "sales_aggregate",
    key_pool: list[str] = GROUP_KEYS,
    agg_pool: list[str] = AGGS,
    filters: list[str | None] = FILTERS,  # type: ignore[assignment]
) -> str:
    keys = draw(st.lists(st.sampled_from(key_pool), max_size=3, unique=True))
    aggs = draw(st.lists(st.sampled_from(agg_pool), min_size=1, max_size=4, unique=True))
    # Conditional aggregates (FILTER), selected by alias; tested and sorted by that alias.
    conditions = [f for f in filters if f]
    conditional = draw(
        st.lists(
            st.tuples(st.sampled_from(agg_pool), st.sampled_from(conditions)),
            max_size=2 if conditions else 0,
        )
    )
    selected = keys + aggs + [f"c{i}: {a}(filter: {f})" for i, (a, f) in enumerate(conditional)]

    # Numbers are tested and sorted (lists cannot be; text and truth are left out).
    def numeric(name: str) -> bool:
        return not name.endswith(("_agg", "_bool_and", "_bool_or"))

    testable = [a for a in aggs if numeric(a)]
    aliases = [f"c{i}" for i, (a, _) in enumerate(conditional) if numeric(a)]
    where = draw(st.sampled_from(filters))
    args = []
    if where:
        args.append(f"where: {where}")
    if keys:
        args.append("groupBy: {" + ", ".join(f"{k}: true" for k in keys) + "}")
    if (testable or aliases) and draw(st.booleans()):
        target = draw(st.sampled_from(testable + aliases))
        bound = draw(st.sampled_from([0, 1, 10, 100, 1000]))
        if target in aliases:
            args.append(f'having: {{field: "{target}", gte: {bound}}}')
        else:
            args.append(f"having: {{{target}: {{gte: {bound}}}}}")
    if (testable or aliases or keys) and draw(st.booleans()):
        target = draw(st.sampled_from(testable + aliases + keys))
        direction = draw(st.sampled_from(["ASC", "DESC", "ASC_NULLS_FIRST", "DESC_NULLS_FIRST"]))
        if target in aliases:
            args.append(f'orderBy: [{{field: "{target}", direction: {direction}}}]')
        else:
            args.append(f"orderBy: {{{target}: {direction}}}")
        if draw(st.booleans()):
            args.append(f"limit: {draw(st.integers(0, 20))}")
    head = f"{root}({', '.join(args)})" if args else root
    return "{ " + head + " { " + " ".join(selected) + " } }"


POST_KEYS = ["category", "region", "channel", "occurred_at_year", "quantity"]
POST_AGGS = ["count", "revenue_sum", "cost_sum", "revenue_avg", "quantity_max", "discount_sum"]


@st.composite
def post_queries(draw: Any) -> str:
    """Aggregates with calcs and windows over the grouped rows, share, QUALIFY and
    limitPerGroup (what is computed after the groups)."""
    keys = draw(st.lists(st.sampled_from(POST_KEYS), min_size=1, max_size=2, unique=True))
    aggs = draw(st.lists(st.sampled_from(POST_AGGS), min_size=1, max_size=3, unique=True))
    numbers = [*aggs, *(k for k in keys if k == "quantity")]
    term = st.one_of(st.sampled_from(numbers), st.sampled_from(["0", "1", "2.5", "100"]))
    op = st.sampled_from(["+", "-", "*", "/"])
    calcs: list[str] = []
    for i in range(draw(st.integers(0, 2))):
        a, b, c = draw(term), draw(term), draw(term)
        shape = draw(
            st.sampled_from(
                [
                    f"{a} {draw(op)} {b}",
                    f"({a} {draw(op)} {b}) {draw(op)} {c}",
                    f"round({a} {draw(op)} {b}, {draw(st.integers(-1, 3))})",
                    f"coalesce({a}, {b}) {draw(op)} nullif({c}, 0)",
                    f"least({a}, {b}) - greatest({b}, {c})",
                    f"-abs({a})",
                ]
            )
        )
        calcs.append(f"c{i}: calc(expr: {json.dumps(shape)})")
        numbers.append(f"c{i}")
    windows: list[str] = []
    for i in range(draw(st.integers(0, 2))):
        fn = draw(
            st.sampled_from(["rank", "row_number", "dense_rank", "lag", "running_sum", "share"])
        )
        parts = draw(st.lists(st.sampled_from(keys), max_size=1, unique=True))
        by = f", partitionBy: [{', '.join(parts)}]" if parts else ""
        target = draw(st.sampled_from(aggs))
        order = (
            f'orderBy: [{{field: "{target}", direction: {draw(st.sampled_from(["ASC", "DESC"]))}}}]'
        )
        field = draw(st.sampled_from(numbers))
        if fn == "share":
            windows.append(f"w{i}: share(field: {field}{by})")
        elif fn in ("lag", "running_sum"):
            windows.append(f"w{i}: {fn}(field: {field}, {order}{by})")
        else:
            windows.append(f"w{i}: {fn}({order}{by})")
    args = ["groupBy: {" + ", ".join(f"{k}: true" for k in keys) + "}"]
    ranked = [w.split(":")[0] for w in windows if "rank" in w or "row_number" in w]
    if ranked and draw(st.booleans()):
        args.append(f'having: {{field: "{ranked[0]}", lte: {draw(st.integers(1, 3))}}}')
    if draw(st.booleans()) and len(keys) > 1:
        target = draw(st.sampled_from(numbers))
        args.append(
            f"limitPerGroup: {{partitionBy: [{keys[0]}],"
            f' orderBy: [{{field: "{target}", direction: DESC}}], limit: {draw(st.integers(0, 3))}}}'
        )
    selected = keys + aggs + calcs + windows
    return "{ sales_aggregate(" + ", ".join(args) + ") { " + " ".join(selected) + " } }"


@pytest.mark.parametrize("queries", [aggregate_queries, post_queries], ids=["groups", "after"])
def test_generated_aggregates_agree(session: fq.Session, queries: Any) -> None:
    """Generated aggregates — and (``after``) calcs and windows over their groups."""

    @settings(
        max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(query=queries())
    def check(query: str) -> None:
        pg, ar = both(session, query)
        assert_same(pg, ar, query)

    check()


# ------------------------------------------- real conventions: tf_orders (uuid keys)


@pytest.fixture(scope="module")
def orders_session(conventions_dsn: str) -> Iterator[fq.Session]:
    s = fq.connect(conventions_dsn)
    yield s
    s.close()


@pytest.mark.parametrize("query", ORDERS_AGGREGATES + ORDERS_WINDOWS)
def test_uuid_keyed_facts_agree(orders_session: fq.Session, query: str) -> None:
    pg, ar = both(orders_session, orders_query(query))
    assert_same(pg, ar, query)
    auto = orders_session.execute(orders_query(query))
    assert isinstance(auto, fq.Result)
    assert auto.backend == "arrow"
    assert_same(pg, auto.df, query)


def test_uuid_filters_count_what_postgresql_counts(
    orders_session: fq.Session, conventions_dsn: str
) -> None:
    import psycopg

    customer = orders_query("CUSTOMER_1")
    with psycopg.connect(conventions_dsn) as conn:
        (expected,) = conn.execute(
            "SELECT count(*) FROM tf_orders WHERE customer_id = %s", (customer,)
        ).fetchone()  # type: ignore[misc]
    assert expected == 87
    for backend in ("arrow", "postgres", "auto"):
        for value in (customer, customer.upper(), customer.replace("-", "")):
            r = orders_session.execute(
                "query($c: ID!) { orders_aggregate(where: {customer_id: {eq: $c}}) { count } }",
                {"c": value},
                backend=backend,
            )
            assert r.df["count"].to_list() == [expected], (backend, value)


def test_columns_the_arrow_plane_does_not_load_are_declined(orders_session: fq.Session) -> None:
    query = "{ orders_aggregate(groupBy: {client_ip: true}) { client_ip count } }"
    with pytest.raises(
        fq.QueryError, match=r"arrow plane does not handle column client_ip \(type inet\)"
    ):
        orders_session.execute(query, backend="arrow")
    auto = orders_session.execute(query)
    pg = orders_session.execute(query, backend="postgres")
    assert isinstance(auto, fq.Result) and isinstance(pg, fq.Result)
    assert (auto.backend, auto.reason) == (
        "postgres",
        "arrow declines column client_ip (type inet)",
    )
    assert auto.df.to_dicts() == pg.df.to_dicts()
    assert auto.df["client_ip"].to_list()[:2] == ["10.1.0.0", "10.1.0.1"]
    assert sum(auto.df["count"]) == 2000


def test_bad_values_for_typed_columns_are_query_errors(orders_session: fq.Session) -> None:
    for query, message in [
        ('{ orders_aggregate(where: {customer_id: {eq: "42"}}) { count } }', "'42' is not a uuid"),
        (
            "{ orders_aggregate(where: {quantity: {eq: 70000}}) { count } }",
            "out of range for smallint",
        ),
        (
            '{ orders_window(orderBy: {id: ASC}) { id x: lag(field: customer_id, default: "x") } }',
            "default 'x' is not a uuid",
        ),
        (
            "{ orders_window(orderBy: {id: ASC}) { id x: lag(field: amount, default: true) } }",
            "default True is not a number",
        ),
        (
            "{ orders_window(orderBy: {id: ASC}) { id x: lag(field: occurred_at, default: 5) } }",
            "default 5 is not an ISO 8601 time",
        ),
    ]:
        for backend in ("arrow", "postgres", "auto"):
            with pytest.raises(fq.QueryError, match=message):
                orders_session.execute(query, backend=backend)


ORDER_KEYS = [
    "customer_id",
    "product_id",
    "status_code",
    "quantity",
    "ordered_on",
    "shipped_on",
    "is_gift",
    "channel",
    "client_ip",
    "region",
    "product_size",
    "shipped_on_week",
]
ORDER_AGGS = [
    "count",
    "amount_sum",
    "amount_median",
    "quantity_avg",
    "status_code_max",
    "customer_id_count_distinct",
    "product_id_count_distinct",
    "shipped_on_count_distinct",
    "is_gift_bool_and",
    "is_gift_bool_or",
    "channel_string_agg",
]
ORDER_FILTERS = [
    None,
    '{customer_id: {in: ["CUSTOMER_1", "CUSTOMER_2_UPPER"]}}',
    '{product_id: {neq: "PRODUCT_3"}}',
    "{product_id: {isnull: true}}",
    '{shipped_on: {lt: "2024-02-10"}}',
    "{shipped_on: {isnull: false}, is_gift: {eq: false}}",
    '{channel: {nin: ["web"]}}',
    "{channel: {isnull: true}}",
    "{quantity: {gte: 3}, status_code: {in: [1, 2]}}",
    '{_or: [{is_gift: {isnull: true}}, {client_ip: {eq: "10.1.2.3"}}]}',
]


def test_generated_queries_on_new_column_types_agree_or_decline(
    orders_session: fq.Session,
) -> None:
    @settings(
        max_examples=50, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(
        query=aggregate_queries("orders_aggregate", ORDER_KEYS, ORDER_AGGS, ORDER_FILTERS).map(
            orders_query
        )
    )
    def check(query: str) -> None:
        pg = orders_session.execute(query, backend="postgres")
        auto = orders_session.execute(query)
        assert isinstance(pg, fq.Result) and isinstance(auto, fq.Result)
        assert_same(pg.df, auto.df, query)
        if "client_ip" in query:
            assert auto.backend == "postgres"
            with pytest.raises(fq.QueryError, match="does not handle"):
                orders_session.execute(query, backend="arrow")
        else:
            assert auto.backend == "arrow"

    check()


def test_having_on_typed_keys_is_checked_like_where(orders_session: fq.Session) -> None:
    customer = orders_query("CUSTOMER_1")
    query = (
        "query($c: ID!) { orders_aggregate(groupBy: {customer_id: true},"
        " having: {customer_id: {eq: $c}}) { customer_id count } }"
    )
    for backend in ("arrow", "postgres", "auto"):
        for value in (customer, customer.upper()):
            r = orders_session.execute(query, {"c": value}, backend=backend)
            assert r.df.to_dicts() == [{"customer_id": customer, "count": 87}], backend  # type: ignore[union-attr]
        with pytest.raises(fq.QueryError, match=r"customer_id\.eq: 'nope' is not a uuid"):
            orders_session.execute(query, {"c": "nope"}, backend=backend)
        with pytest.raises(fq.QueryError, match="out of range for smallint"):
            orders_session.execute(
                "{ orders_aggregate(groupBy: {quantity: true}, having: {quantity: {eq: 70000}})"
                " { quantity count } }",
                backend=backend,
            )


EVENTS = [
    '{ events_aggregate(where: {at: {gte: "2024-03-31T02:30:00"}}) { count weight_sum } }',
    '{ events_aggregate(where: {at: {lt: "2024-04-02T10:00:00+05:00"}}) { count } }',
    "{ events_aggregate(groupBy: {at_day: true}, orderBy: {at_day: ASC}, limit: 4) { at_day count } }",
    "{ events_aggregate(groupBy: {kind: true, seen_on: true}, limit: 5) { kind seen_on count } }",
    '{ events_window(orderBy: {at: ASC}, limit: 6) { id at p: lag(field: at, default: "2020-01-01T00:00:00") n: lead(field: flag, default: false) } }',
    '{ events_window(where: {kind: {eq: "view"}}, orderBy: {id: ASC}, limit: 6) { id kind k: lag(field: kind, default: "none") s: lag(field: seen_on, offset: 2, default: "2000-01-01") } }',
]


@pytest.mark.parametrize("query", EVENTS)
def test_naive_timestamps_and_typed_defaults_agree(orders_session: fq.Session, query: str) -> None:
    pg, ar = both(orders_session, query)
    assert_same(pg, ar, query)
    assert pg.height > 0


def test_real_measures_are_declined(orders_session: fq.Session) -> None:
    query = "{ events_aggregate(where: {score: {eq: 1.1}}) { count score_sum } }"
    auto = orders_session.execute(query)
    assert isinstance(auto, fq.Result)
    assert (auto.backend, auto.reason) == ("postgres", "arrow declines column score (type real)")
    assert auto.df["count"].to_list() == [1]
    with pytest.raises(fq.QueryError, match=r"column score \(type real\)"):
        orders_session.execute(query, backend="arrow")


# ------------------------------------------- hard numbers: exact where PostgreSQL is


@pytest.mark.parametrize("memory_mb", [1024, 0], ids=["memory", "disk"])
def test_integer_sums_and_spreads_keep_postgresqls_precision(
    hard_dsn: str, memory_mb: int, store: Path
) -> None:
    """A bigint sum that cancels is exact (it was 0.0 in float64); a spread of large
    values is computed about their least value (it was off by 3e-4)."""
    config = {"arrow_backend": {"memory_mb": memory_mb}}
    with fq.connect(hard_dsn, config=config) as s:
        for query in HARD_AGGREGATES:
            pg, ar = both(s, query)
            assert_same(pg, ar, query)
        total = s.execute(HARD_AGGREGATES[0], backend="arrow").df
        assert total["big_sum"].to_list() == [6000.0]  # Σ g % 5: the big values add up to 1 - 1


@pytest.mark.parametrize(
    ("memory_mb", "said"),
    [(1024, "NaN or infinite values"), (0, "NaN or Infinity")],
    ids=["memory", "disk"],
)
def test_nan_and_infinite_floats_are_declined(
    hard_dsn: str, memory_mb: int, said: str, store: Path
) -> None:
    config = {"arrow_backend": {"memory_mb": memory_mb}}
    with fq.connect(hard_dsn, config=config) as s:
        with pytest.raises(fq.QueryError, match=f"amount.*{said}"):
            s.execute(ODD_AGGREGATE, backend="arrow")
        s.prefetch("odd", wait=True)
        auto = s.execute(ODD_AGGREGATE)
        assert isinstance(auto, fq.Result) and auto.backend == "postgres"
        assert said in auto.reason
        other = "{ odd_aggregate(groupBy: {k: true}) { k count quantity_sum } }"
        ar = s.execute(other, backend="arrow")  # the other columns are answered
        assert ar.df["count"].to_list() == [2, 2, 1]


@pytest.mark.parametrize("memory_mb", [1024, 0], ids=["memory", "disk"])
def test_json_numbers_float64_cannot_hold_are_declined(
    hard_dsn: str, memory_mb: int, store: Path
) -> None:
    """2^53 and 2^53 + 1 are two groups in PostgreSQL; as float64 they were one."""
    config = {"arrow_backend": {"memory_mb": memory_mb}}
    with fq.connect(hard_dsn, config=config) as s:
        with pytest.raises(fq.QueryError, match=r"ext_id.*NaN"):
            s.execute(IDS_GROUPED, backend="arrow")
        auto = s.execute(IDS_GROUPED)
        assert isinstance(auto, fq.Result) and auto.backend == "postgres"
        assert auto.df["count"].to_list() == [1, 2]
        pg, ar = both(s, IDS_PRICED)  # numbers float64 holds stay on the arrow plane
        assert_same(pg, ar, IDS_PRICED)
        assert ar["count"].to_list() == [1, 2]
