"""How results look in a notebook: a badge, then tabs Results | SQL | Metrics | Plan.

A result's mime bundle is ``text/plain`` (badge and an aligned text table,
for terminals) and ``text/html``: self-contained HTML — tabs made of radio
buttons and CSS, a formatted table (:mod:`.table`) — that needs no kernel
and no widget model, so a saved, reopened, committed or exported notebook
shows it as it was. In a running Jupyter kernel (``%config FraiseQL.widgets``)
the table is also an interactive grid (itables, offline: its JavaScript
comes with the notebook, never from the network), which replaces the plain
table wherever scripts run and leaves it in place where they do not.

The core does not know about notebooks: :func:`register_formatters` tells
IPython how to show a :class:`~fraiseql_nb.Result`, a
:class:`~fraiseql_nb.Results` and a :class:`~fraiseql_nb.Schema` (its folded
HTML summary). ``%load_ext fraiseql_nb`` registers them, and so does
``import fraiseql_nb`` in a running IPython (Jupyter, a terminal), so the
Python API displays the same way without the magics.
"""

from __future__ import annotations

import html
import itertools
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from fraiseql_nb.notebook.table import SIGNIFICANT, columns, html_table, text_table

if TYPE_CHECKING:
    from fraiseql_nb.result import Result, Results

__all__ = [
    "OPTIONS",
    "Options",
    "badge",
    "html_view",
    "mimebundle",
    "register_formatters",
    "results_mimebundle",
    "text",
]


@dataclass
class Options:
    """Display settings; the magic keeps them in step with ``%config FraiseQL``."""

    displaylimit: int = 20  # rows of the plain table and the text (0: all)
    widgets: bool = True  # the interactive grid in a running Jupyter kernel
    gridlimit: int = 10_000  # rows the interactive grid holds
    # Regression mode: what varies from run to run (durations, bytes, cache hits, why
    # a plane ran) is left out, floats are shown to ``float_digits`` digits.
    regression: bool = False
    float_digits: int = 12

    def significant(self) -> int:
        """Digits a float shows: ``float_digits`` in regression mode, else ten."""
        return self.float_digits if self.regression else SIGNIFICANT


OPTIONS = Options()


def human_bytes(n: int) -> str:
    """1234567 -> '1.2 MB' (powers of 1000, as network and disk figures are)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def duration(ms: float) -> str:
    return f"{ms:.1f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


# Reasons that say nothing the badge does not already say.
_PLAIN_REASONS = ("", "row query", "cached", "requested")
_COLOURS = {
    "wire": "#2b6cb0",
    "arrow": "#2f855a",
    "cluster": "#b7791f",
    "postgres": "#6b46c1",
    "schema": "#555",
}


def badge_parts(result: Result) -> list[str]:
    """backend (and why, for analytics: "arrow loading 40%") · duration · rows · bytes ·
    cache hit/miss."""
    m = result.metrics
    rows = f"{m.rows:,} row{'' if m.rows == 1 else 's'}"
    if OPTIONS.regression:
        return [result.backend, rows]
    why = result.reason if result.kind != "rows" and result.reason not in _PLAIN_REASONS else ""
    if result.storage == "disk":
        why = "from disk" if why in ("", "from disk") else f"from disk; {why}"
    plane = result.backend
    if result.cluster is not None:
        w, p = result.cluster["workers"], result.cluster["partitions"]
        plane = (
            f"cluster · {w} worker{'' if w == 1 else 's'} · {p} partition{'' if p == 1 else 's'}"
        )
    parts = [
        f"{plane} ({why})" if why else plane,
        duration(m.duration_ms),
        rows,
        human_bytes(m.bytes),
    ]
    if m.cache_hit is not None:
        parts.append("cache hit" if m.cache_hit else "cache miss")
    return parts


def badge(result: Result) -> str:
    return f"{result.key}: " + " · ".join(badge_parts(result))


def shown_rows(result: Result, limit: int | None = None) -> tuple[pl.DataFrame, str]:
    """The rows to show, and the caption: how many there are, and why not all are shown."""
    frame = result.df
    limit = OPTIONS.displaylimit if limit is None else limit
    total = frame.height
    if limit and total > limit:
        caption = f"showing {limit:,} of {total:,} rows; the whole result is in .df"
        frame = frame.head(limit)
    else:
        caption = f"{total:,} row{'' if total == 1 else 's'}"
    limited = result.limited
    if limited is not None and total >= limited:
        caption += f" (the query was limited to {limited:,} rows: --limit / FraiseQL.autolimit)"
    return frame, caption


def table_html(result: Result) -> str:
    """The shown rows as a formatted, self-contained HTML table with its caption."""
    frame, caption = shown_rows(result)
    return html_table(columns(frame, OPTIONS.significant()), caption)


def metrics_rows(result: Result) -> list[tuple[str, str]]:
    m = result.metrics
    if OPTIONS.regression:
        return [
            ("root field", result.key),
            ("kind", result.kind),
            ("backend", result.backend),
            ("rows", f"{m.rows:,}"),
        ]
    return [
        ("root field", result.key),
        ("kind", result.kind),
        ("backend", result.backend),
        ("why", result.reason or "-"),
        ("duration", duration(m.duration_ms)),
        ("time to first row", "-" if m.ttfr_ms is None else duration(m.ttfr_ms)),
        ("rows", f"{m.rows:,}"),
        ("bytes received", f"{m.bytes:,}"),
        ("result size", f"{m.result_bytes:,}"),
        ("cache", "-" if m.cache_hit is None else ("hit" if m.cache_hit else "miss")),
    ]


def text(result: Result) -> str:
    frame, caption = shown_rows(result)
    return badge(result) + "\n" + text_table(columns(frame, OPTIONS.significant()), caption)


def _kv_table(rows: list[tuple[str, str]]) -> str:
    body = "".join(
        f"<tr><th style='text-align:left;padding:1px 12px 1px 0'>{html.escape(k)}</th>"
        f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
        for k, v in rows
    )
    return f"<table style='border-collapse:collapse;font-size:12.5px'>{body}</table>"


def badge_html(result: Result) -> str:
    parts = badge_parts(result)
    colour = _COLOURS.get(result.backend, "#555")
    head = (
        f"<span style='background:{colour};color:#fff;border-radius:3px;padding:0 5px'>"
        f"{html.escape(parts[0])}</span>"
    )
    rest = " · ".join(html.escape(p) for p in parts[1:])
    return f"<div class='fraiseql-badge'><b>{html.escape(result.key)}</b> {head} {rest}</div>"


def _sql_html(result: Result) -> str:
    if OPTIONS.regression and result.backend == "arrow":
        # What the arrow plane sends depends on what it loaded before.
        sql = "(the arrow plane: computed in Polars on loaded columns; regression mode)"
    else:
        sql = result.sql or "(nothing was sent: answered from the cache)"
    return f"<pre style='white-space:pre-wrap;font-size:12px;margin:0'>{html.escape(sql)}</pre>"


def _plan_rows(result: Result) -> list[tuple[str, str]]:
    rows = [("kind", result.kind), ("backend", result.backend)]
    return rows if OPTIONS.regression else [*rows, ("why", result.reason or "-")]


# ------------------------------------------------------------------ tabs

_ids = itertools.count()
_TAB_CSS = """
.fq-tabs > input {{position:absolute;opacity:0;pointer-events:none}}
.fq-tabs > label {{display:inline-block;padding:2px 12px;margin-right:2px;cursor:pointer;
  border:1px solid #ccc;border-bottom:none;border-radius:4px 4px 0 0;font-size:12px;
  background:#f4f4f4;color:#333}}
.fq-tabs > .fq-panel {{display:none;border-top:1px solid #ccc;padding:6px 0}}
{checked}
"""


def _tabs(panels: list[tuple[str, str]]) -> str:
    """Tabs of radio buttons and CSS: they switch without a kernel or a script. Where
    styles are dropped (some viewers), every panel shows, one after the other."""
    group = f"fq{uuid.uuid4().hex[:8]}{next(_ids)}"
    checked = "\n".join(
        f"#{group}-{i}:checked ~ #{group}-p{i} {{display:block}}"
        f" #{group}-{i}:checked + label {{background:#fff;font-weight:600}}"
        for i in range(len(panels))
    )
    parts = [f"<style>{_TAB_CSS.format(checked=checked)}</style><div class='fq-tabs'>"]
    for i, (title, _) in enumerate(panels):
        mark = " checked='checked'" if i == 0 else ""
        parts.append(
            f"<input type='radio' name='{group}' id='{group}-{i}'{mark}>"
            f"<label for='{group}-{i}' class='fq-tab'>{html.escape(title)}</label>"
        )
    for i, (title, body) in enumerate(panels):
        parts.append(
            f"<div class='fq-panel' id='{group}-p{i}' data-tab='{html.escape(title)}'>{body}</div>"
        )
    parts.append("</div>")
    return "".join(parts)


def html_view(result: Result, *, grid: bool = False) -> str:
    """The badge above tabs: Results (the table; the grid too when ``grid``) | SQL |
    Metrics | Plan."""
    table = grid_html(result) if grid else table_html(result)
    return (
        f"<div class='fraiseql-result'>{badge_html(result)}"
        + _tabs(
            [
                ("Results", table),
                ("SQL", _sql_html(result)),
                ("Metrics", _kv_table(metrics_rows(result))),
                ("Plan", _kv_table(_plan_rows(result))),
            ]
        )
        + "</div>"
    )


# ------------------------------------------------------------------ the grid

_grid_ready = False  # the grid's JavaScript was sent with an output of this kernel


def _in_kernel() -> bool:
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def widgets_active() -> bool:
    """True in a running Jupyter kernel with interactive views on and ipywidgets installed
    (for live views: progress, the explorer's controls)."""
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return OPTIONS.widgets and _in_kernel()


def grid_active() -> bool:
    """True in a running Jupyter kernel with interactive views on and itables installed."""
    try:
        import itables  # noqa: F401
    except ImportError:
        return False
    return OPTIONS.widgets and _in_kernel()


def grid_html(result: Result) -> str:
    """The interactive grid (sort, search, scroll through up to ``gridlimit`` rows), with the
    plain table inside it as what shows where scripts do not run."""
    from itables.javascript import (
        generate_init_offline_itables_html,
        get_itable_arguments,
        html_table_from_template,
    )

    global _grid_ready
    frame = result.df.head(OPTIONS.gridlimit) if OPTIONS.gridlimit else result.df
    cols = columns(frame, OPTIONS.significant())
    # The grid shows the same formatted cells as the plain table; it sorts numbers by
    # value (DataTables reads "1,234.5" as a number).
    shown = pl.DataFrame(
        {c.name: ["" if v is None else v for v in c.cells] for c in cols},
        schema={c.name: pl.String for c in cols},
    )
    table_id = f"fq-grid-{uuid.uuid4().hex[:12]}"
    args = get_itable_arguments(
        shown,
        table_id=table_id,
        connected=False,
        showIndex=False,
        show_dtypes=False,
        classes="display compact nowrap",
        style="table-layout:auto;width:auto;margin:0;caption-side:bottom",
        maxBytes=0,
        maxRows=0,
        lengthMenu=[10, 25, 100, 1000],
        pageLength=min(OPTIONS.displaylimit or 25, 25),
        columnDefs=[
            {"className": "dt-right", "targets": [i for i, c in enumerate(cols) if c.numeric]},
            {"className": "dt-left", "targets": [i for i, c in enumerate(cols) if not c.numeric]},
        ],
    )
    args.pop("dt_url", None)
    args.pop("connected", None)
    args.pop("display_logo_when_loading", None)
    _, caption = shown_rows(result)
    if OPTIONS.gridlimit and result.df.height > OPTIONS.gridlimit:
        caption += f"; the grid holds the first {OPTIONS.gridlimit:,}"
    fallback = table_html(result)
    out = html_table_from_template(
        table_id=table_id,
        dt_url="",
        connected=False,
        display_logo_when_loading=False,
        kwargs=args,
        fallback_html=fallback,
    )
    if not _grid_ready:
        # Once per kernel: the grid's JavaScript travels in this output, so the
        # notebook works offline and in exported HTML.
        import itables

        bundle = Path(itables.__file__).parent / "html" / "dt_bundle.js"
        init = generate_init_offline_itables_html(bundle)
        # Without its noscript hint: where scripts do not run, the plain table shows.
        out = init.split('<div style="vertical-align:middle', 1)[0] + out
        _grid_ready = True
    return out + f"<div style='color:#666;font-size:11.5px'>{html.escape(caption)}</div>"


# ------------------------------------------------------------------ bundles


def mimebundle(result: Result) -> dict[str, Any]:
    return {"text/plain": text(result), "text/html": html_view(result, grid=grid_active())}


def results_mimebundle(results: Results) -> dict[str, Any]:
    items = list(results.values())
    grid = grid_active()
    return {
        "text/plain": "\n\n".join(text(r) for r in items),
        "text/html": "".join(html_view(r, grid=grid) for r in items),
    }


def register_formatters(shell: Any) -> None:
    """Tell IPython's display formatters how to show results and schemas (idempotent)."""
    from fraiseql_nb.result import Result, Results
    from fraiseql_nb.schema.model import Schema
    from fraiseql_nb.schema.summary import summary_html, summary_text

    formatter = shell.display_formatter
    formatter.mimebundle_formatter.for_type(Result, mimebundle)
    formatter.mimebundle_formatter.for_type(Results, results_mimebundle)
    formatter.formatters["text/html"].for_type(Schema, summary_html)
    # IPython's plain-text printer calls (obj, printer, cycle).
    formatter.formatters["text/plain"].for_type(
        Schema, lambda schema, printer, _cycle: printer.text(summary_text(schema))
    )
