"""How results look in a notebook: a badge, the table, then SQL, metrics and plan.

Every result carries ``text/plain`` and ``text/html`` (terminal IPython,
nbconvert, GitHub), and in a running Jupyter kernel with widgets enabled
also a widget view: the badge above a Tab of Results | SQL | Metrics | Plan.
The options (:data:`OPTIONS`) are set through ``%config FraiseQL.*``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from fraiseql_nb.result import Result, Results

__all__ = ["OPTIONS", "Options", "badge", "mimebundle", "result_widget"]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@dataclass
class Options:
    """Display settings; the magic keeps them in step with ``%config FraiseQL``."""

    displaylimit: int = 20  # rows shown of a result (0: all)
    widgets: bool = True  # add the widget view in a Jupyter kernel


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


def badge_parts(result: Result) -> list[str]:
    """backend (and why, for analytics: "arrow loading 40%") · duration · rows · bytes ·
    cache hit/miss."""
    m = result.metrics
    why = result.reason if result.kind != "rows" and result.reason not in _PLAIN_REASONS else ""
    parts = [
        f"{result.backend} ({why})" if why else result.backend,
        duration(m.duration_ms),
        f"{m.rows:,} row{'' if m.rows == 1 else 's'}",
        human_bytes(m.bytes),
    ]
    if m.cache_hit is not None:
        parts.append("cache hit" if m.cache_hit else "cache miss")
    return parts


def badge(result: Result) -> str:
    return f"{result.key}: " + " · ".join(badge_parts(result))


def shown_rows(result: Result) -> tuple[pl.DataFrame, str]:
    """The rows to show, and a note when they are not all of them."""
    frame = result.df
    limit = OPTIONS.displaylimit
    notes = []
    limited = result.limited
    if limited is not None and frame.height >= limited:
        notes.append(f"the query was limited to {limited:,} rows (--limit / FraiseQL.autolimit)")
    if limit and frame.height > limit:
        notes.append(
            f"showing {limit:,} of {frame.height:,} rows; the whole result is in .df"
            " (%config FraiseQL.displaylimit = 0 shows all)"
        )
        frame = frame.head(limit)
    return frame, "; ".join(notes)


def _table_text(frame: pl.DataFrame) -> str:
    with pl.Config(tbl_rows=max(frame.height, 1), tbl_cols=-1, fmt_str_lengths=60):
        return str(frame)


def _table_html(frame: pl.DataFrame) -> str:
    with pl.Config(tbl_rows=max(frame.height, 1), tbl_cols=-1, fmt_str_lengths=60):
        return frame._repr_html_()


def table_html(result: Result) -> str:
    """The shown rows as an HTML table, with the truncation note if any."""
    frame, note = shown_rows(result)
    return _table_html(frame) + (f"<p><i>{html.escape(note)}</i></p>" if note else "")


def metrics_rows(result: Result) -> list[tuple[str, str]]:
    m = result.metrics
    rows = [
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
    return rows


def text(result: Result) -> str:
    frame, note = shown_rows(result)
    out = [badge(result), _table_text(frame)]
    if note:
        out.append(f"({note})")
    return "\n".join(out)


def _kv_table(rows: list[tuple[str, str]]) -> str:
    body = "".join(
        f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
        f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
        for k, v in rows
    )
    return f"<table>{body}</table>"


def badge_html(result: Result) -> str:
    parts = badge_parts(result)
    colour = {"wire": "#2b6cb0", "arrow": "#2f855a", "postgres": "#6b46c1"}.get(
        result.backend, "#555"
    )
    head = (
        f"<span style='background:{colour};color:#fff;border-radius:3px;padding:0 5px'>"
        f"{html.escape(parts[0])}</span>"
    )
    rest = " · ".join(html.escape(p) for p in parts[1:])
    return f"<div class='fraiseql-badge'><b>{html.escape(result.key)}</b> {head} {rest}</div>"


def _sql_html(result: Result) -> str:
    return f"<pre>{html.escape(result.sql or '(nothing was sent: answered from the cache)')}</pre>"


def _plan_html(result: Result) -> str:
    return _kv_table(
        [
            ("kind", result.kind),
            ("backend", result.backend),
            ("why", result.reason or "-"),
        ]
    )


def html_view(result: Result) -> str:
    return (
        f"<div class='fraiseql-result'>{badge_html(result)}{table_html(result)}"
        f"<details><summary>SQL</summary>{_sql_html(result)}</details>"
        f"<details><summary>Metrics</summary>{_kv_table(metrics_rows(result))}</details>"
        "</div>"
    )


def result_widget(result: Result) -> Any:
    """The badge above a Tab: Results | SQL | Metrics | Plan."""
    import ipywidgets as w

    tab = w.Tab(
        children=[
            w.HTML(table_html(result)),
            w.HTML(_sql_html(result)),
            w.HTML(_kv_table(metrics_rows(result))),
            w.HTML(_plan_html(result)),
        ]
    )
    tab.titles = ("Results", "SQL", "Metrics", "Plan")
    return w.VBox([w.HTML(badge_html(result)), tab])


def widgets_active() -> bool:
    """True in a running Jupyter kernel with widgets enabled and ipywidgets installed."""
    if not OPTIONS.widgets:
        return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def mimebundle(result: Result) -> dict[str, Any]:
    bundle: dict[str, Any] = {"text/plain": text(result), "text/html": html_view(result)}
    if widgets_active():
        view = result_widget(result)._repr_mimebundle_()
        if view and WIDGET_VIEW in view:
            bundle[WIDGET_VIEW] = view[WIDGET_VIEW]
    return bundle


def results_mimebundle(results: Results) -> dict[str, Any]:
    items = list(results.values())
    bundle: dict[str, Any] = {
        "text/plain": "\n\n".join(text(r) for r in items),
        "text/html": "".join(html_view(r) for r in items),
    }
    if widgets_active():
        import ipywidgets as w

        view = w.VBox([result_widget(r) for r in items])._repr_mimebundle_()
        if view and WIDGET_VIEW in view:
            bundle[WIDGET_VIEW] = view[WIDGET_VIEW]
    return bundle
