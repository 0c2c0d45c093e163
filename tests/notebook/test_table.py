"""Formatted cells: pure."""

from __future__ import annotations

import datetime as dt

import polars as pl

from fraiseql_nb.notebook.table import columns


def cells(frame: pl.DataFrame, significant: int = 10) -> dict[str, tuple[str | None, ...]]:
    return {c.name: c.cells for c in columns(frame, significant)}


def test_averages_of_a_shown_sum_take_its_decimals_ids_and_quarters_read_as_such() -> None:
    frame = pl.DataFrame(
        {
            "customer_id": [9348, 12],
            "occurred_at_quarter": [dt.date(2023, 4, 1), None],
            "revenue_sum": [6047841.01, 123.5],
            "revenue_avg": [476.959070123, 12.3456789],
            "quantity_sum": [38337, 12],
            "quantity_avg": [3.1234567, 2.0],
            "other_avg": [1.23456789, 2.0],
        }
    )
    shown = cells(frame)
    assert shown["customer_id"] == ("9348", "12")
    assert shown["occurred_at_quarter"] == ("2023-Q2", None)
    assert shown["revenue_sum"] == ("6,047,841.01", "123.50")
    assert shown["revenue_avg"] == ("476.96", "12.35")
    assert shown["quantity_avg"] == ("3.12", "2.00")  # an integer sum: two decimals
    assert shown["other_avg"] == ("1.234568", "2.000000")  # no sum beside it
    # Regression mode keeps every digit it compares.
    assert cells(frame, 12)["revenue_avg"][0] == "476.959070"
