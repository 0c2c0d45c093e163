"""Formatted cells: pure (one test reads a window result from the database)."""

from __future__ import annotations

import datetime as dt

import polars as pl

import fraiseql_nb as fq
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


def test_a_column_in_another_s_unit_takes_its_decimals(session: fq.Session) -> None:
    # The first purchase of each customer has no previous one: the lag's default, 0, is
    # money like the revenue beside it.
    r = session.execute(
        """{ sales_window(partitionBy: [customer_id], orderBy: [{occurred_at: ASC}],
               limit: 4) { customer_id revenue row_number
               previous: lag(field: revenue, default: 0)
               last_three: running_sum(field: revenue, preceding: 2) } }""",
        backend="postgres",
    )
    assert isinstance(r, fq.Result)
    assert r.units == {"previous": "revenue", "last_three": "revenue"}
    assert r.df["previous"].to_list() == [0.0] * 4
    shown = {c.name: c.cells for c in columns(r.df, units=r.units)}
    assert shown["previous"] == ("0.00",) * 4
    decimals = {len(v.split(".")[1]) for v in shown["revenue"] if v and "." in v}
    assert decimals == {2} and {len(v.split(".")[1]) for v in shown["last_three"]} == {2}
    assert {c.name: c.cells for c in columns(r.df)}["previous"] == ("0",) * 4  # unit unknown
