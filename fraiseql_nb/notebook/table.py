"""Result tables people read: formatted cells, as HTML and as text. Pure: no I/O.

Polars' own display is for debugging (strings in quotes, a dtype row,
``7.1819e6`` for 7,181,891.44). Here every value is formatted once, the same
way for the notebook's HTML and the terminal's text: integers with thousands
separators (identifiers, ``id`` and ``*_id``, without), quarter buckets as
``2024-Q2``, floats to ten significant digits with one number of decimals per
column, decimals exact at their scale, dates and times in ISO order,
strings bare, nulls marked, nested values as compact JSON. Numbers are
right-aligned.

The HTML is self-contained (inline styles, no script), so it shows the same
in JupyterLab, a reopened or exported notebook, nbconvert HTML and GitHub.
"""

from __future__ import annotations

import datetime as dt
import decimal
import html
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from fraiseql_nb.language.aggregates import percentiles

__all__ = ["Column", "columns", "html_table", "text_table"]

SIGNIFICANT = 10  # digits a float shows (float64 holds ~15-17; sums carry noise below)
MAX_DECIMALS = 6
MAX_TEXT = 200  # characters of a cell shown (the whole value is in the tooltip)
MAX_TEXT_TERMINAL = 40
NULL = "null"


@dataclass(frozen=True)
class Column:
    """One column, formatted: its name, dtype, cells as text, and alignment."""

    name: str
    dtype: str
    cells: tuple[str | None, ...]  # None: a null
    numeric: bool


# Aggregates of a measure in its own unit that are not sums: shown with the sum's decimals.
_DERIVED = re.compile(
    r"(?P<measure>.+)_(" + "|".join(("avg", "stddev", "variance", *percentiles())) + ")"
)


def columns(
    frame: pl.DataFrame, significant: int = SIGNIFICANT, units: dict[str, str] | None = None
) -> list[Column]:
    """Every column of ``frame`` with its cells formatted (floats to ``significant``
    digits; an average, median, percentile or spread of a measure whose sum is shown
    too gets the sum's decimals, at least two: 476.96 beside 6,047,841.01, not
    476.959070; a column in another's unit, ``units`` — a lag of revenue — gets that
    column's decimals: 0.00 beside 76.88, not 0)."""
    caps: dict[str, int] = {}
    exact: dict[str, int] = {}
    if significant == SIGNIFICANT:  # regression mode keeps its digits: planes compare
        sums = {n[: -len("_sum")]: n for n in frame.columns if n.endswith("_sum")}
        for name in frame.columns:
            found = _DERIVED.fullmatch(name)
            if found and found["measure"] in sums and frame.schema[name].is_float():
                caps[name] = max(2, _shown_decimals(frame.get_column(sums[found["measure"]])))
        floats = {n for n in frame.columns if frame.schema[n].is_float()}
        for name, source in (units or {}).items():
            if name in floats and source in floats:
                exact[name] = _shown_decimals(frame.get_column(source))
    return [
        _column(frame.get_column(name), significant, caps.get(name), exact.get(name))
        for name in frame.columns
    ]


def _shown_decimals(series: pl.Series) -> int:
    if isinstance(series.dtype, pl.Decimal):
        return series.dtype.scale or 0
    if series.dtype.is_float():
        return _float_decimals(series.to_list(), SIGNIFICANT)
    return 0


def _column(
    series: pl.Series, significant: int, cap: int | None = None, exact: int | None = None
) -> Column:
    dtype = series.dtype
    values = series.to_list()
    numeric = dtype.is_numeric()
    if dtype.is_float():
        decimals = _float_decimals(values, significant) if exact is None else exact
        if cap is not None:
            decimals = min(decimals, cap)
        cells = tuple(None if v is None else _float(v, decimals, significant) for v in values)
    elif dtype.is_integer() and _is_key(series.name):
        cells = tuple(None if v is None else str(v) for v in values)  # an id, not a quantity
    elif dtype.is_integer():
        cells = tuple(None if v is None else f"{v:,}" for v in values)
    elif dtype == pl.Date and series.name.endswith("_quarter"):
        cells = tuple(None if v is None else f"{v.year}-Q{(v.month - 1) // 3 + 1}" for v in values)
    elif isinstance(dtype, pl.Decimal):
        cells = tuple(None if v is None else _decimal(v, dtype.scale) for v in values)
    else:
        cells = tuple(None if v is None else _other(v) for v in values)
    return Column(name=series.name, dtype=str(dtype), cells=cells, numeric=numeric)


def _is_key(name: str) -> bool:
    """An identifier column (``id``, ``customer_id``): its digits are not grouped."""
    return name == "id" or name.endswith("_id")


def _float_decimals(values: Sequence[Any], significant: int) -> int:
    """The decimals a column of floats needs: enough for ``significant`` digits of its
    values, without trailing zeros, at most six."""
    needed = 0
    for v in values:
        if v is None or not math.isfinite(v) or v == 0 or _scientific(v):
            continue
        whole = len(str(int(abs(v)))) if abs(v) >= 1 else 0
        places = max(0, min(MAX_DECIMALS, significant - whole))
        text = f"{abs(v):.{places}f}".rstrip("0")
        needed = max(needed, len(text.split(".")[1]) if "." in text else 0)
    return needed


def _scientific(v: float) -> bool:
    return abs(v) >= 1e15 or (v != 0 and abs(v) < 10**-MAX_DECIMALS)


def _float(v: float, decimals: int, significant: int) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    if _scientific(v):
        return f"{v:.{max(1, significant - 4)}g}"
    return f"{v:,.{decimals}f}"


def _decimal(v: decimal.Decimal, scale: int | None) -> str:
    return f"{v:,.{scale}f}" if scale is not None else f"{v:,}"


def _other(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dt.datetime):
        text = v.strftime("%Y-%m-%d %H:%M:%S")
        if v.microsecond:
            text += f".{v.microsecond:06d}".rstrip("0")
        if v.tzinfo is not None:
            offset = v.utcoffset()
            text += " UTC" if offset == dt.timedelta(0) else v.strftime(" %z")
        return text
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str, ensure_ascii=False, separators=(", ", ": "))
    return str(v)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------ HTML

_TABLE = "border-collapse:collapse;font-size:12.5px;font-variant-numeric:tabular-nums;margin:2px 0"
# Colours from JupyterLab's theme (dark or light), with fallbacks for other viewers.
_TH = (
    "position:sticky;top:0;background:var(--jp-layout-color1,#fff);"
    "color:var(--jp-ui-font-color0,inherit);text-align:left;padding:3px 10px;"
    "border-bottom:1px solid var(--jp-border-color1,#bbb);font-weight:600;white-space:nowrap"
)
_TD = (
    "padding:2px 10px;border-bottom:1px solid var(--jp-border-color2,#eee);"
    "vertical-align:top;white-space:nowrap"
)
_NULL = "color:#999;font-style:italic"


def html_table(cols: list[Column], caption: str = "", *, max_height: int = 420) -> str:
    """A scrollable table (sticky header) with a caption line under it."""
    head = "".join(
        f"<th title='{html.escape(c.dtype)}' style='{_TH};"
        f"{'text-align:right' if c.numeric else ''}'>{html.escape(c.name)}</th>"
        for c in cols
    )
    height = len(cols[0].cells) if cols else 0
    rows = []
    for i in range(height):
        cells = []
        for c in cols:
            value = c.cells[i]
            align = "text-align:right" if c.numeric else "text-align:left"
            if value is None:
                cells.append(f"<td style='{_TD};{align}'><span style='{_NULL}'>{NULL}</span></td>")
                continue
            shown = _shorten(value, MAX_TEXT)
            title = f" title='{html.escape(value)}'" if shown != value else ""
            cells.append(f"<td style='{_TD};{align}'{title}>{html.escape(shown)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    table = (
        f"<div class='fraiseql-table' style='max-height:{max_height}px;overflow:auto'>"
        f"<table style='{_TABLE}'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
    if caption:
        table += (
            "<div class='fq-caption' style='color:var(--jp-ui-font-color2,#666);"
            f"font-size:11.5px'>{html.escape(caption)}</div>"
        )
    return table


# ------------------------------------------------------------------ text


def text_table(cols: list[Column], caption: str = "") -> str:
    """The same table as aligned text (numbers right, the rest left)."""
    if not cols:
        return caption or "(no columns)"
    shown = [[_shorten(NULL if v is None else v, MAX_TEXT_TERMINAL) for v in c.cells] for c in cols]
    widths = [
        max(len(c.name), *(len(v) for v in cells)) if cells else len(c.name)
        for c, cells in zip(cols, shown, strict=True)
    ]

    def line(values: list[str]) -> str:
        parts = [
            v.rjust(w) if c.numeric else v.ljust(w)
            for v, w, c in zip(values, widths, cols, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line([c.name for c in cols]), "  ".join("─" * w for w in widths)]
    out += [line([cells[i] for cells in shown]) for i in range(len(shown[0]))]
    if caption:
        out.append(caption)
    return "\n".join(out)
