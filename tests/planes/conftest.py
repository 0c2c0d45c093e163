"""Fact tables the analytics-plane tests share: a tiny demo and appended rows."""

from __future__ import annotations

import pytest

from fraiseql_nb import demo

TINY = demo.Counts(users=200, products=20, orders=50, sales=3_000)


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
