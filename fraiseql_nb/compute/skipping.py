"""Which stored segments a query's filter can match, from each segment's statistics (its
columns' least and greatest values and NULLs, recorded when it was written). Pure.

A segment is skipped — never opened — when no row of it can pass the filter:
a comparison (``eq gt gte lt lte in isnull``) that its range of values rules
out, under ``and``/``or``; a text column of few distinct values in the segment
records them too, and is then judged on each of them (a segment of "books" and
"toys" cannot hold "food", which lies between them). Everything else (negations, text matching, JSON
paths, a column without statistics) keeps the segment. The comparisons are the
engine's own (the operator's Polars rendering, evaluated on the least and the
greatest value as the column's type), so a segment is skipped exactly when the
engine would have filtered out every row of it — never on a different reading
of a value.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import polars as pl

from fraiseql_nb.language.operators import OPERATORS
from fraiseql_nb.query.ir import And, Compare, Or, Where

__all__ = ["MAX_VALUES", "Stats", "bounds", "matching"]

#: One segment's statistics: rows, and per column [least, greatest, NULLs, kind], and for
#: text of at most MAX_VALUES distinct values in the segment their sorted list.
Stats = tuple[int, dict[str, list[Any]] | None]
MAX_VALUES = 32

#: Text bounds longer than this are not recorded (the meta stays small; the column is then
#: never skipped on).
_MAX_TEXT_BOUND = 256


def bounds(
    frame: pl.DataFrame, without: set[str] | frozenset[str] = frozenset()
) -> dict[str, list[Any]]:
    """Each column's ``[least, greatest, NULLs, kind]`` as JSON holds them — kind "i"
    integers, "f" floats, "d" decimals (as text), "s" text, "t" times (their physical
    integer); least and greatest None when every value is NULL — and text of at most
    :data:`MAX_VALUES` distinct values their sorted list after. Columns of other types,
    floats holding NaN or ±Infinity, long text and ``without`` are left out (not known)."""
    kinds: dict[str, str] = {}
    for name, dtype in frame.schema.items():
        if name in without:
            continue
        if dtype.is_integer():
            kinds[name] = "i"
        elif dtype.is_float():
            kinds[name] = "f"
        elif isinstance(dtype, pl.Decimal):
            kinds[name] = "d"
        elif dtype == pl.String:
            kinds[name] = "s"
        elif isinstance(dtype, (pl.Datetime, pl.Date)):
            kinds[name] = "t"
    if not kinds:
        return {}
    exprs = []
    for name, kind in kinds.items():
        col = pl.col(name).to_physical() if kind == "t" else pl.col(name)
        exprs += [
            col.min().alias(f"{name}\0min"),
            col.max().alias(f"{name}\0max"),
            pl.col(name).null_count().alias(f"{name}\0nulls"),
        ]
        if kind == "f":
            exprs.append(pl.col(name).is_finite().not_().any().alias(f"{name}\0odd"))
        if kind == "s":
            distinct = pl.col(name).drop_nulls().unique().head(MAX_VALUES + 1)
            exprs.append(distinct.implode().alias(f"{name}\0values"))
    row = frame.select(exprs).row(0, named=True)
    out: dict[str, list[Any]] = {}
    for name, kind in kinds.items():
        low, high = row[f"{name}\0min"], row[f"{name}\0max"]
        if kind == "f" and row[f"{name}\0odd"]:
            continue
        if kind == "d":
            low, high = (None if v is None else str(v) for v in (low, high))
        if kind == "s" and low is not None and max(len(low), len(high)) > _MAX_TEXT_BOUND:
            continue
        out[name] = [low, high, int(row[f"{name}\0nulls"]), kind]
        found = row.get(f"{name}\0values") or []
        short = all(len(v) <= _MAX_TEXT_BOUND for v in found)  # the meta stays small
        if kind == "s" and len(found) <= MAX_VALUES and short:
            out[name].append(sorted(found))
    return out


_RANGED = frozenset({"eq", "gt", "gte", "lt", "lte", "in"})
_MAX_IN = 256  # an ``in`` list longer than this is not checked value by value


def matching(
    where: Where | None, segments: list[Stats], dtypes: dict[str, Any], timezone: str
) -> list[bool]:
    """For each segment, whether a row of it may pass ``where`` (False: skip it)."""
    if not segments:
        return []
    keep = [rows > 0 for rows, _ in segments]
    if where is None:
        return keep
    try:
        found = _may(where, segments, dtypes, timezone)
    except Exception:  # noqa: BLE001 - a statistic the engine cannot read: read them all
        return keep
    return [k and f for k, f in zip(keep, found, strict=True)]


def _may(where: Where, segments: list[Stats], dtypes: dict[str, Any], timezone: str) -> list[bool]:
    every = [True] * len(segments)
    if isinstance(where, And):
        out = every
        for item in where.items:
            out = [
                a and b for a, b in zip(out, _may(item, segments, dtypes, timezone), strict=True)
            ]
        return out
    if isinstance(where, Or):
        if not where.items:
            return every
        out = [False] * len(segments)
        for item in where.items:
            out = [a or b for a, b in zip(out, _may(item, segments, dtypes, timezone), strict=True)]
        return out
    if not isinstance(where, Compare) or where.json is not None or where.is_list:
        return every
    name = where.path[0]
    dtype = dtypes.get(name)
    if dtype is None:
        return every
    known = [None if b is None else b.get(name) for _, b in segments]
    if where.op == "isnull" and isinstance(where.value, bool):
        return [
            True if k is None else (k[2] > 0 if where.value else k[2] < rows)
            for k, (rows, _) in zip(known, segments, strict=True)
        ]
    if where.op not in _RANGED:
        return every
    ranged = _in_range(where, name, known, dtype, timezone)
    if not any(k is not None and len(k) > 4 for k in known):
        return ranged
    valued = _among_values(where, name, known, dtype, timezone)
    return [a and b for a, b in zip(ranged, valued, strict=True)]


def _among_values(
    where: Compare, name: str, known: list[list[Any] | None], dtype: Any, timezone: str
) -> list[bool]:
    """Whether one of a segment's recorded values passes (True where none are recorded)."""
    owners = [i for i, k in enumerate(known) if k is not None and len(k) > 4 for _ in k[4]]
    values = [v for k in known if k is not None and len(k) > 4 for v in k[4]]
    passed = _test(where, pl.DataFrame([pl.Series(name, values, dtype=dtype)]), dtype, timezone)
    out = [k is None or len(k) <= 4 for k in known]
    for owner, ok in zip(owners, passed, strict=True):
        out[owner] = out[owner] or ok
    return out


def _in_range(
    where: Compare, name: str, known: list[list[Any] | None], dtype: Any, timezone: str
) -> list[bool]:
    """Whether some value between a segment's least and greatest may pass."""
    every = [True] * len(known)
    lows = _series(name, [None if k is None else k[0] for k in known], known, dtype)
    highs = _series(name, [None if k is None else k[1] for k in known], known, dtype)
    frame = pl.DataFrame([lows]), pl.DataFrame([highs])
    if where.op == "in":
        values = list(where.value) if isinstance(where.value, (list, tuple)) else [where.value]
        if len(values) > _MAX_IN:
            return every
        out = [False] * len(known)
        for value in values:
            one = dataclasses.replace(where, op="eq", value=value)
            out = [
                a or b
                for a, b in zip(out, _ranged(one, frame, known, dtype, timezone), strict=True)
            ]
        return out
    return _ranged(where, frame, known, dtype, timezone)


def _ranged(
    where: Compare,
    frames: tuple[pl.DataFrame, pl.DataFrame],
    known: list[list[Any] | None],
    dtype: Any,
    timezone: str,
) -> list[bool]:
    """``eq gt gte lt lte``: whether some value between a segment's least and greatest can
    pass (a segment of NULLs only cannot: a comparison with NULL is not true)."""
    lows, highs = frames
    if where.op == "eq":
        at_high = _test(dataclasses.replace(where, op="gte"), highs, dtype, timezone)
        at_low = _test(dataclasses.replace(where, op="lte"), lows, dtype, timezone)
        tested = [a and b for a, b in zip(at_high, at_low, strict=True)]
    elif where.op in ("gt", "gte"):
        tested = _test(where, highs, dtype, timezone)
    else:
        tested = _test(where, lows, dtype, timezone)
    return [True if k is None else t for k, t in zip(known, tested, strict=True)]


def _test(where: Compare, frame: pl.DataFrame, dtype: Any, timezone: str) -> list[bool]:
    operator = OPERATORS[where.op]
    assert operator.polars is not None
    name = where.path[0]
    expr = operator.polars(pl.col(name), where, dtype, timezone)
    return [bool(v) for v in frame.select(expr.fill_null(False)).to_series().to_list()]


def _series(name: str, values: list[Any], known: list[list[Any] | None], dtype: Any) -> pl.Series:
    """Least or greatest values as the column's type (NULL where a segment has none)."""
    kinds = {k[3] for k in known if k is not None}
    if kinds == {"t"}:
        physical = pl.Series(name, values, dtype=pl.Int64)
        return physical.cast(pl.Int32 if dtype == pl.Date else pl.Int64).cast(dtype)
    if kinds == {"d"}:
        decimals = [None if v is None else Decimal(v) for v in values]
        return pl.Series(name, decimals, dtype=dtype)
    return pl.Series(name, values, dtype=dtype)
