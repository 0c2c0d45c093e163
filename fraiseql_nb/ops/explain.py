"""What a query would do, without doing it: plan kind, plane and reason, SQL, estimates."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Explanation", "Plan"]


@dataclass(frozen=True)
class Plan:
    """One root field's plan."""

    key: str
    kind: str  # rows | aggregate | window
    backend: str  # the plane the router chose
    reason: str
    sql: dict[str, str] = field(default_factory=dict)  # plane -> statement it would send
    estimate: dict[str, Any] = field(default_factory=dict)
    # PostgreSQL's EXPLAIN of the statement the chosen plane sends (explain(plan=True)).
    pg_plan: str = ""

    def text(self) -> str:
        lines = [f"{self.key}: {self.kind} query → {self.backend} ({self.reason})"]
        for k, v in self.estimate.items():
            lines.append(f"  estimate {k}: {_show(v)}")
        for plane, text in self.sql.items():
            lines.append(f"  {plane}: {text}")
        if self.pg_plan:
            lines.append("  PostgreSQL plan:")
            lines += [f"    {line}" for line in self.pg_plan.splitlines()]
        return "\n".join(lines)


@dataclass(frozen=True)
class Explanation:
    """The plans of every root field of a document, in order."""

    plans: tuple[Plan, ...]

    def __getitem__(self, key: str) -> Plan:
        return next(p for p in self.plans if p.key == key)

    def __iter__(self) -> Any:
        return iter(self.plans)

    def text(self) -> str:
        return "\n\n".join(p.text() for p in self.plans)

    __str__ = text

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        parts = []
        for p in self.plans:
            rows = "".join(
                f"<tr><th>{html.escape(k)}</th><td>{html.escape(_show(v))}</td></tr>"
                for k, v in p.estimate.items()
            )
            sqls = "".join(
                f"<p><b>{html.escape(plane)}</b></p><pre>{html.escape(text)}</pre>"
                for plane, text in p.sql.items()
            )
            plan = f"<p><b>PostgreSQL plan</b></p><pre>{html.escape(p.pg_plan)}</pre>"
            parts.append(
                f"<div><p><b>{html.escape(p.key)}</b>: {html.escape(p.kind)} query → "
                f"<b>{html.escape(p.backend)}</b> ({html.escape(p.reason)})</p>"
                f"<table>{rows}</table>{sqls}{plan if p.pg_plan else ''}</div>"
            )
        return "".join(parts)


def _show(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
