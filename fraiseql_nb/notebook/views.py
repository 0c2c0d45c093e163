"""Readable views of the schema and of health for ``%fraiseql schema`` / ``health``."""

from __future__ import annotations

import html
import json
from typing import Any

from fraiseql_nb.schema import Schema

__all__ = ["HealthView", "SchemaView"]


class SchemaView:
    """What can be queried: root queries, entity types and fact tables."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema

    def sections(self) -> list[tuple[str, list[tuple[str, list[str]]]]]:
        """(section, [(item, [details])])."""
        s = self.schema
        queries = [
            (e.list_query, [f"list of {e.name} (where, orderBy, limit, offset)"])
            for e in s.entities
        ]
        queries += [(e.single_query, [f"one {e.name} by id"]) for e in s.entities]
        for f in s.facts:
            queries.append((f.aggregate_query, [f"aggregates of {f.relation}"]))
            queries.append((f.window_query, [f"window functions over {f.relation}"]))
        types = [
            (
                f"{e.name} ({e.relation})",
                [f"{fld.name}: {_type(fld.type)}" for fld in e.fields],
            )
            for e in s.entities
        ]
        facts = []
        for f in s.facts:
            details = [
                "measures: " + ", ".join(m.name for m in f.measures),
                "filters: " + ", ".join(c.name for c in f.filters),
                "dimensions: " + ", ".join(d.name for d in f.dimensions),
                "time buckets: " + ", ".join(f.buckets),
            ]
            facts.append((f"{f.name} ({f.relation})", details))
        return [("Queries", queries), ("Types", types), ("Fact tables", facts)]

    def __repr__(self) -> str:
        out = []
        for title, items in self.sections():
            out.append(f"{title}:")
            for name, details in items:
                out.append(f"  {name}")
                out += [f"      {d}" for d in details]
        return "\n".join(out)

    def _repr_html_(self) -> str:
        parts = []
        for title, items in self.sections():
            inner = "".join(
                f"<details><summary><code>{html.escape(name)}</code></summary><ul>"
                + "".join(f"<li><code>{html.escape(d)}</code></li>" for d in details)
                + "</ul></details>"
                for name, details in items
            )
            parts.append(f"<h4>{html.escape(title)}</h4>{inner}")
        return "<div class='fraiseql-schema'>" + "".join(parts) + "</div>"


def _type(t: Any) -> str:
    kind = getattr(t, "kind", "")
    if kind == "object":
        return "{" + ", ".join(f.name for f in t.fields) + "}"
    if kind == "list":
        return f"[{_type(t.item)}]" if getattr(t, "item", None) is not None else "[…]"
    return str(getattr(t, "scalar", None) or getattr(t, "type_name", None) or kind)


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
