"""A readable view of health for ``%fraiseql health`` (the schema displays itself)."""

from __future__ import annotations

import html
import json

__all__ = ["HealthView"]


class HealthView(dict):  # type: ignore[type-arg]
    """``Session.health()``'s dict, shown as a status line and the details."""

    def __repr__(self) -> str:
        backends = ", ".join(f"{k} {v['status']}" for k, v in self["backends"].items())
        reason = f" — {self['reason']}" if self.get("reason") else ""
        return f"{self['status']} ({backends}){reason}\n" + json.dumps(self, indent=2, default=str)

    def _repr_html_(self) -> str:
        colour = {"healthy": "#2f855a", "degraded": "#b7791f", "unhealthy": "#c53030"}
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='color:{colour.get(v['status'], '#555')}'>{html.escape(v['status'])}</td>"
            f"<td style='text-align:left'><code>"
            f"{html.escape(json.dumps({x: y for x, y in v.items() if x != 'status'}, default=str))}"
            "</code></td></tr>"
            for k, v in self["backends"].items()
        )
        reason = f"<p>{html.escape(self['reason'])}</p>" if self.get("reason") else ""
        status = self["status"]
        return (
            f"<div><b style='color:{colour.get(status, '#555')}'>{html.escape(status)}</b>"
            f"{reason}<table>{rows}</table></div>"
        )
