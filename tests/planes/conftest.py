"""Fact tables the analytics-plane tests share: a tiny demo, and a view slow to read."""

from __future__ import annotations

import psycopg
import pytest

from fraiseql_nb import demo

TINY = demo.Counts(users=200, products=20, orders=50, sales=3_000)
SLOW_ROWS = 600  # 10 ms a row: about 6 s to read whole


def append_sales(n: int, offset: int = 1_000_000) -> str:
    """SQL appending copies of the first ``n`` sales, their ids moved up by ``offset``."""
    return (
        f"INSERT INTO tf_sales SELECT id + {offset}, customer_id, product_id, occurred_at,"
        " revenue, quantity, cost, discount, dimensions, date_info FROM tf_sales"
        f" WHERE id <= {n}"
    )


@pytest.fixture
def tiny(scratch_dsn: str) -> str:
    """A database of its own with the tiny demo dataset."""
    demo.load(scratch_dsn, TINY)
    return scratch_dsn


@pytest.fixture
def slow_fact(scratch_dsn: str) -> str:
    """``tf_slow``: a fact view that takes ~6 s to read whole, but is quick filtered on id
    (the filter comes before the sleep)."""
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE VIEW tf_slow AS SELECT g::bigint AS id, g::float8 AS amount,"
            " (SELECT 1 FROM pg_sleep(0.01 + 0 * g))::int AS flag_id"
            f" FROM generate_series(1, {SLOW_ROWS}) AS g"
        )
    return scratch_dsn
