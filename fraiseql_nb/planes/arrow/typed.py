"""Loaded Arrow columns as the arrow plane keeps them: Polars frames with exact decimals
(measures loaded as text become decimal128 of their scale) and low-cardinality text as
Categorical."""

from __future__ import annotations

import re
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from fraiseql_nb.errors import BackendError
from fraiseql_nb.schema.model import FactTable

__all__ = ["SAMPLE_ROWS", "declared_scale", "few_values", "scale_of", "to_frame"]

_MAX_SCALE = 30  # decimals that leave 8 of decimal128's 38 digits to the integer part
SAMPLE_ROWS = 20_000  # rows whose distinct values decide whether text becomes Categorical


def to_frame(
    table: pa.Table, fact: FactTable, *, exact_decimals: bool, categorical: bool = True
) -> pl.DataFrame:
    """Loaded Arrow columns as a Polars frame: exact decimals where asked, and text with
    few distinct values (at most one in two of the first rows) as Categorical."""
    if exact_decimals:
        table = _decimals(fact, table)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    if not categorical:
        return frame
    casts = [pl.col(name).cast(pl.Categorical) for name in few_values(frame)]
    return frame.with_columns(casts) if casts else frame


def few_values(frame: pl.DataFrame, without: frozenset[str] = frozenset()) -> list[str]:
    """The text columns (but ``without``) of few distinct values — at most one in two of
    the first :data:`SAMPLE_ROWS` rows — which the plane keeps as Categoricals."""
    head = frame.head(SAMPLE_ROWS)
    return [
        name
        for name, dtype in frame.schema.items()
        if dtype == pl.String
        and name not in without
        and head.height > 0
        and head[name].n_unique() <= max(head.height // 2, 1)
    ]


def _decimals(fact: FactTable, table: pa.Table) -> pa.Table:
    """Measures loaded as text (``exact_decimals``) become decimal128 of their scale."""
    for m in fact.measures:
        if (
            m.name in table.column_names
            and m.scalar == "Float"
            and pa.types.is_string(table[m.name].type)
        ):
            text = table[m.name]
            scale = scale_of(m.pg_type, text)
            if scale > _MAX_SCALE:
                raise BackendError(
                    f"exact_decimals: {m.name} holds values with {scale} decimals, more than"
                    f" 128-bit decimals hold next to their digits ({_MAX_SCALE}); turn"
                    " [arrow_backend] exact_decimals off, or run it on PostgreSQL"
                )
            column = pc.cast(text, pa.decimal128(38, scale))
            table = table.set_column(table.column_names.index(m.name), m.name, column)
    return table


def declared_scale(pg_type: str) -> int | None:
    """The scale of ``numeric(p,s)``; None for an unconstrained numeric."""
    match = re.search(r"numeric\(\d+,\s*(\d+)\)", pg_type)
    return int(match.group(1)) if match else None


def scale_of(pg_type: str, text: Any) -> int:
    """The scale of ``numeric(p,s)``; of an unconstrained numeric, the most decimals any
    loaded value has (so no value loses a digit)."""
    declared = declared_scale(pg_type)
    if declared is not None:
        return declared
    decimals = pc.struct_field(pc.extract_regex(text, r"\.(?P<d>\d+)$"), "d")
    digits = pc.max(pc.utf8_length(decimals))
    return max(int(digits.as_py() or 0), 0)
