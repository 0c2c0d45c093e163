"""How results look in a notebook: a badge, the table, then SQL | Metrics | Plan folded.

A result's mime bundle is ``text/plain`` (badge and an aligned text table,
for terminals) and ``text/html``: self-contained HTML — a formatted table
(:mod:`.table`), folded ``<details>`` sections — that needs no kernel, no
widget model, no style sheet and no script, so a saved, reopened, untrusted,
committed or exported notebook shows it as it was. In a running Jupyter
kernel (``%config FraiseQL.widgets``) the table is also an interactive grid
(:mod:`.grid`: a small script inside each result, nothing fetched), which
takes the plain table over wherever scripts run.

The core does not know about notebooks: :func:`register_formatters` tells
IPython how to show a :class:`~fraiseql_nb.Result`, a
:class:`~fraiseql_nb.Results` and a :class:`~fraiseql_nb.Schema` (its folded
HTML summary). ``%load_ext fraiseql_nb`` registers them, and so does
``import fraiseql_nb`` in a running IPython (Jupyter, a terminal), so the
Python API displays the same way without the magics.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import polars as pl

from fraiseql_nb.errors import FraiseQLError
from fraiseql_nb.notebook.grid import grid_data, grid_script, new_id
from fraiseql_nb.notebook.sqltext import format_sql
from fraiseql_nb.notebook.table import SIGNIFICANT, columns, html_table, text_table
from fraiseql_nb.planes import registry

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
    gridlimit: int = 1_000  # rows the interactive grid holds (they are stored with the result)
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
_GREY = "#555"  # introspection ("schema"), or a plane no longer registered


def _colour(plane: str) -> str:
    found = registry.get(plane)
    return found.colour if found is not None else _GREY


def badge_parts(result: Result) -> list[str]:
    """backend (and why, for analytics: "arrow loading 40%") · duration · rows · bytes ·
    cache hit/miss."""
    m = result.metrics
    rows = f"{m.rows:,} row{'' if m.rows == 1 else 's'}"
    if OPTIONS.regression:
        return [result.backend, rows]
    why = result.reason if result.kind != "rows" and result.reason not in _PLAIN_REASONS else ""
    if result.as_of is not None:  # trusted without a check: say as of when
        age = (dt.datetime.now(dt.timezone.utc) - result.as_of).total_seconds()
        when = result.as_of.astimezone().strftime("%H:%M:%S")
        why = f"as of {when}, {age:.1f} s ago"
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
    return html_table(columns(frame, OPTIONS.significant(), result.units), caption)


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
    cols = columns(frame, OPTIONS.significant(), result.units)
    return badge(result) + "\n" + text_table(cols, caption)


def _kv_table(rows: list[tuple[str, str]]) -> str:
    body = "".join(
        f"<tr><th style='text-align:left;padding:1px 12px 1px 0'>{html.escape(k)}</th>"
        f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
        for k, v in rows
    )
    return f"<table style='border-collapse:collapse;font-size:12.5px'>{body}</table>"


def badge_html(result: Result) -> str:
    parts = badge_parts(result)
    colour = _colour(result.backend)
    head = (
        f"<span style='background:{colour};color:#fff;border-radius:3px;padding:0 5px'>"
        f"{html.escape(parts[0])}</span>"
    )
    rest = " · ".join(html.escape(p) for p in parts[1:])
    return f"<div class='fraiseql-badge'><b>{html.escape(result.key)}</b> {head} {rest}</div>"


_NOTE = "<div style='color:var(--jp-ui-font-color2,#666);font-size:11.5px'>{}</div>"


def _sql_html(result: Result) -> str:
    """The statement sent; for an answer computed by the arrow or cluster plane, what it
    loaded (if anything) and the statement that answers the same on PostgreSQL."""
    pre = (
        "<pre class='fq-sql' style='white-space:pre-wrap;overflow-wrap:normal;font-size:12px;"
        "margin:0 0 4px 0'>{}</pre>"
    )

    if not result.postgres_sql:  # PostgreSQL answered: what it was sent
        return pre.format(html.escape(format_sql(result.sql) or "(nothing was sent)"))
    plane = f"the {result.backend} plane"
    parts = []
    if result.sql and not OPTIONS.regression:  # what it loads depends on what it held
        # A load statement is shown as sent: flat, one column list.
        parts += [_NOTE.format(f"{plane} loaded with:"), pre.format(html.escape(result.sql))]
    else:
        parts.append(_NOTE.format(f"computed by {plane} (Polars) on columns it had loaded"))
    parts += [
        _NOTE.format("the same answer, computed inside PostgreSQL:"),
        pre.format(html.escape(format_sql(result.postgres_sql))),
    ]
    return "".join(parts)


def _plan_rows(result: Result) -> list[tuple[str, str]]:
    rows = [("kind", result.kind), ("backend", result.backend)]
    return rows if OPTIONS.regression else [*rows, ("why", result.reason or "-")]


def _plan_html(result: Result) -> str:
    """Kind, plane and why; for an arrow or cluster answer, how it was computed (where
    the rows were, Polars' plan); then PostgreSQL's plan of the statement (for an arrow or
    cluster answer, of the one that answers the same there). Not in regression mode:
    a plan's costs follow the table's statistics."""
    out = _kv_table(_plan_rows(result))
    if OPTIONS.regression:
        return out
    engine = result.engine_plan()
    if engine:
        head, _, plan = engine.partition("\n")
        out += _NOTE.format(html.escape(f"computed by {head}"))
        if plan:
            out += (
                "<pre style='white-space:pre;font-size:12px;margin:0 0 6px 0'>"
                f"{html.escape(plan)}</pre>"
            )
    try:
        plan = result.plan()
    except FraiseQLError as exc:
        plan = f"(no plan: {exc})"
    if not plan:
        return out
    what = (
        "PostgreSQL's plan of the same answer:"
        if result.postgres_sql
        else "PostgreSQL's plan (EXPLAIN):"
    )
    return (
        out
        + _NOTE.format(what)
        + f"<pre style='white-space:pre;font-size:12px;margin:0'>{html.escape(plan)}</pre>"
    )


# ------------------------------------------------------------------ sections


def _sections(panels: list[tuple[str, str]]) -> str:
    """SQL, metrics and plan as folded sections (``<details>``): they open and close
    without a kernel, a script or a style sheet, so an untrusted notebook, GitHub and
    nbconvert show them as a live run does."""
    return "".join(
        f"<details class='fq-section' data-section='{html.escape(title)}'"
        " style='margin:2px 0'><summary style='cursor:pointer;font-size:12px;"
        f"color:var(--jp-ui-font-color2,#555)'>{html.escape(title)}</summary>"
        f"<div style='padding:4px 0 4px 14px'>{body}</div></details>"
        for title, body in panels
    )


def html_view(result: Result, *, grid: bool = False) -> str:
    """The badge, the table (the grid too when ``grid``), then SQL, Metrics and Plan
    folded under it."""
    table = grid_html(result) if grid else table_html(result)
    return (
        f"<div class='fraiseql-result'>{badge_html(result)}"
        f"<div class='fq-results'>{table}</div>"
        + _sections(
            [
                ("SQL", _sql_html(result)),
                ("Metrics", _kv_table(metrics_rows(result))),
                ("Plan", _plan_html(result)),
            ]
        )
        + "</div>"
    )


# ------------------------------------------------------------------ the grid


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
    """True in a running Jupyter kernel with interactive views on."""
    return OPTIONS.widgets and _in_kernel()


def grid_html(result: Result) -> str:
    """The plain table of the first page, with the rows the grid holds (its first
    ``gridlimit``) and the script that pages, sorts and searches them
    (:mod:`.grid`): where scripts do not run, the plain table stays."""
    frame = result.df.head(OPTIONS.gridlimit) if OPTIONS.gridlimit else result.df
    cols = columns(frame, OPTIONS.significant(), result.units)
    page = OPTIONS.displaylimit or 20
    first = [replace(c, cells=c.cells[:page]) for c in cols]
    _, caption = shown_rows(result)
    root = new_id()
    return (
        f"<div class='fq-grid' id='{root}' data-key='{html.escape(result.key)}'>"
        f"{html_table(first, caption)}"
        f"{grid_data(frame, cols, page, result.df.height)}{grid_script(root)}</div>"
    )


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
