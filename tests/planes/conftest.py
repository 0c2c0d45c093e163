"""SQL the analytics-plane tests share: rows appended to the demo fact table."""

from __future__ import annotations


def append_sales(n: int, offset: int = 1_000_000) -> str:
    """SQL appending copies of the first ``n`` sales, their ids moved up by ``offset``."""
    return (
        f"INSERT INTO tf_sales SELECT id + {offset}, customer_id, product_id, occurred_at,"
        " revenue, quantity, cost, discount, dimensions, date_info FROM tf_sales"
        f" WHERE id <= {n}"
    )
