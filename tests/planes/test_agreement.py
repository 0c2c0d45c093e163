"""The arrow and postgres planes are each other's oracle: same rows, same columns, same dtypes."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fraiseql_nb as fq
from tests.planes.corpus import AGGREGATES, WINDOWS, assert_same


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
def aggregate_queries(draw: Any) -> str:
    keys = draw(st.lists(st.sampled_from(GROUP_KEYS), max_size=3, unique=True))
    aggs = draw(st.lists(st.sampled_from(AGGS), min_size=1, max_size=4, unique=True))
    where = draw(st.sampled_from(FILTERS))
    args = []
    if where:
        args.append(f"where: {where}")
    if keys:
        args.append("groupBy: {" + ", ".join(f"{k}: true" for k in keys) + "}")
    if draw(st.booleans()):
        target = draw(st.sampled_from(aggs))
        args.append(
            f"having: {{{target}: {{gte: {draw(st.sampled_from([0, 1, 10, 100, 1000]))}}}}}"
        )
    if draw(st.booleans()):
        target = draw(st.sampled_from(aggs + keys))
        direction = draw(st.sampled_from(["ASC", "DESC", "ASC_NULLS_FIRST", "DESC_NULLS_FIRST"]))
        args.append(f"orderBy: {{{target}: {direction}}}")
        if draw(st.booleans()):
            args.append(f"limit: {draw(st.integers(0, 20))}")
    head = f"sales_aggregate({', '.join(args)})" if args else "sales_aggregate"
    return "{ " + head + " { " + " ".join(keys + aggs) + " } }"


def test_generated_aggregates_agree(session: fq.Session) -> None:
    @settings(
        max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(query=aggregate_queries())
    def check(query: str) -> None:
        pg, ar = both(session, query)
        assert_same(pg, ar, query)

    check()
