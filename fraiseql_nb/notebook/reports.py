"""Readable views for ``%fraiseql health`` and ``%fraiseql metrics`` (the schema displays
itself)."""

from __future__ import annotations

import html
from typing import Any

import polars as pl

__all__ = ["HealthView", "QueryLogView"]

_COLOUR = {"healthy": "#2f855a", "degraded": "#b7791f", "unhealthy": "#c53030"}


def _value(key: str, value: Any) -> str:
    """One figure as people read it: bytes in kB/MB, counts with separators, rates in %."""
    from fraiseql_nb.notebook.display import human_bytes

    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, int) and "bytes" in key:
        return human_bytes(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float) and "rate" in key:
        return f"{value:.0%}"
    if isinstance(value, float):
        return f"{value:,.3g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_value(k, v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def _details(backend: dict[str, Any]) -> list[tuple[str, str]]:
    return [(k, _value(k, v)) for k, v in backend.items() if k != "status"]


class HealthView(dict):  # type: ignore[type-arg]
    """``Session.health()``'s dict, shown as a status line and one line per plane."""

    def __repr__(self) -> str:
        reason = f" — {self['reason']}" if self.get("reason") else ""
        lines = [f"{self['status']}{reason}"]
        for name, backend in self["backends"].items():
            details = "; ".join(f"{k}: {v}" for k, v in _details(backend))
            lines.append(f"  {name:<9}{backend['status']:<10}{details}".rstrip())
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left;padding:1px 12px 1px 0'>{html.escape(name)}</th>"
            f"<td style='color:{_COLOUR.get(b['status'], '#555')};padding:1px 12px 1px 0'>"
            f"{html.escape(b['status'])}</td><td style='text-align:left'>"
            + "; ".join(f"{html.escape(k)}: {html.escape(v)}" for k, v in _details(b))
            + "</td></tr>"
            for name, b in self["backends"].items()
        )
        reason = f"<p>{html.escape(self['reason'])}</p>" if self.get("reason") else ""
        status = self["status"]
        return (
            f"<div><b style='color:{_COLOUR.get(status, '#555')}'>{html.escape(status)}</b>"
            f"{reason}<table style='font-size:12.5px'>{rows}</table></div>"
        )


class QueryLogView(pl.DataFrame):
    """The query log: a Polars DataFrame (``.filter``, ``.select`` … return plain frames),
    shown as a formatted table — no dtype row, durations to a tenth of a millisecond."""

    def _table(self) -> tuple[Any, str]:
        from fraiseql_nb.notebook.table import columns

        shown = self.with_columns(pl.selectors.float().round(1))
        n = self.height
        return columns(shown), f"{n:,} quer{'y' if n == 1 else 'ies'} (newest last)"

    def _repr_html_(self) -> str:
        from fraiseql_nb.notebook.table import html_table

        return html_table(*self._table())

    def __repr__(self) -> str:
        from fraiseql_nb.notebook.table import text_table

        return text_table(*self._table())
