"""Sorting and paging computed rows as PostgreSQL sorts and pages them. Pure."""

from __future__ import annotations

import polars as pl

from fraiseql_nb.query.ir import OrderItem

__all__ = ["page", "sort_frame"]


def sort_frame(
    frame: pl.DataFrame,
    keys: list[tuple[str, OrderItem | None]],
    *,
    computed: frozenset[str] = frozenset(),
) -> pl.DataFrame:
    if not keys or frame.height == 0:
        return frame

    def key(name: str) -> pl.Expr:
        # Floats accumulated in another order (sums, averages, variances) carry float
        # rounding that PostgreSQL's arithmetic does not: equal values must tie, as they
        # do there. A min, max or percentile is the same float on both planes: rounding
        # it would make ties PostgreSQL does not make.
        if name in computed and frame.schema[name] == pl.Float64:
            return pl.col(name).round_sig_figs(12)
        return pl.col(name)

    return frame.sort(
        [key(k) for k, _ in keys],
        descending=[bool(o and o.descending) for _, o in keys],
        nulls_last=[not (o and o.nulls_first) for _, o in keys],
        maintain_order=True,
    )


def page(frame: pl.DataFrame, limit: int | None, offset: int | None) -> pl.DataFrame:
    start = offset or 0
    return frame.slice(start, limit) if (limit is not None or start) else frame
