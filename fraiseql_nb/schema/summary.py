"""A schema as a person reads it: what can be queried, with types, and what could not. Pure.

``repr(session.schema)`` prints :func:`summary_text` in a terminal;
Jupyter shows :func:`summary_html`. Both list the entities (root queries,
the relation serving them, where ``id`` comes from, every field with its
GraphQL type), the fact tables (measures, dimensions, filter columns, group
keys, time buckets) and the problems found while introspecting.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fraiseql_nb.schema.model import Entity, FactTable, Field, FieldType, Schema

__all__ = ["summary_html", "summary_text"]


def _type(t: FieldType, nullable: bool = True) -> str:
    """The GraphQL spelling of a field type: ``String``, ``[Tag]``, ``UserAddress!``."""
    if t.kind == "object":
        out = t.type_name or "Object"
    elif t.kind == "list":
        out = f"[{_type(t.item, True)}]" if t.item is not None else "[JSON]"
    else:
        out = t.scalar or "JSON"
    return out if nullable else out + "!"


def _field_rows(fields: tuple[Field, ...], depth: int = 0) -> list[tuple[int, str, str]]:
    """(depth, name, type and notes) for every field, nested object fields after theirs."""
    out: list[tuple[int, str, str]] = []
    for f in fields:
        note = f"  (from column {f.column})" if f.column else ""
        if f.key != f.name:
            note += f"  (key {f.key!r})"
        out.append((depth, f.name, f"{_type(f.type, f.nullable)}{note}"))
        target = f.type.item if f.type.kind == "list" else f.type
        if target is not None and target.kind == "object":
            out += _field_rows(target.fields, depth + 1)
    return out


def _sampled(e: Entity) -> str:
    return f"{e.sampled:,} document{'' if e.sampled == 1 else 's'} sampled"


def _identity(e: Entity) -> str:
    if e.identity == "document":
        return f"id: the documents' own id (the {e.id_type} id column differs)"
    return f"id: the {e.id_type} id column"


def _fact_lines(f: FactTable) -> list[tuple[str, str]]:
    """(label, value) rows describing a fact table."""
    buckets = [
        f"{c.name}_{{{','.join(u for u in _UNITS if (c.name, u) in f.buckets.values())}}}"
        for c in f.time_columns
    ]
    calendars = [f"{c.column} serves {c.serves or '?'}" for c in f.calendars]
    rows = [
        ("measures", ", ".join(f"{m.name} {m.scalar}" for m in f.measures)),
        ("dimensions", ", ".join(f"{d.name} {d.scalar}" for d in f.dimensions) or "none"),
        ("filters", ", ".join(f"{c.name} {c.scalar}" for c in f.filters) or "none"),
        ("group keys", ", ".join([*(c.name for c in f.key_columns), "the dimensions and buckets"])),
        ("time buckets", ", ".join(buckets) or "none"),
    ]
    if calendars:
        rows.append(("calendars", ", ".join(calendars)))
    return rows


_UNITS = ("second", "minute", "hour", "day", "week", "month", "quarter", "year")


def _counts(s: Schema) -> str:
    def n(count: int, word: str) -> str:
        return f"{count} {word}{'' if count == 1 else 's'}"

    return ", ".join(
        [n(len(s.entities), "entity"), n(len(s.facts), "fact table"), n(len(s.problems), "problem")]
    ).replace("entitys", "entities")


def summary_text(s: Schema) -> str:
    """The schema as plain text, one field or property per line."""
    out = [f"Schema: {_counts(s)}"]
    if s.entities:
        out += ["", "Entities"]
    for e in s.entities:
        out.append(
            f"  {e.list_query}, {e.single_query}(id)  ->  {e.name}"
            f"  ({e.schema}.{e.relation}; {_identity(e)}; {_sampled(e)})"
        )
        out += [f"      {'    ' * d}{name}: {t}" for d, name, t in _field_rows(e.fields)]
    if s.facts:
        out += ["", "Fact tables"]
    for f in s.facts:
        out.append(f"  {f.aggregate_query}, {f.window_query}  ({f.schema}.{f.relation})")
        width = max(len(label) for label, _ in _fact_lines(f))
        out += [f"      {label + ':':<{width + 1}} {value}" for label, value in _fact_lines(f)]
    if s.problems:
        out += ["", "Problems"]
        out += [f"  {p.message}" for p in s.problems]
    return "\n".join(out)


def summary_html(s: Schema) -> str:
    """The schema as HTML: one folded section per entity and fact table."""
    esc = html.escape
    parts = [f"<div class='fraiseql-schema'><p><b>Schema</b>: {esc(_counts(s))}</p>"]
    if s.entities:
        parts.append("<h4>Entities</h4>")
    for e in s.entities:
        rows = "".join(
            f"<tr><td style='text-align:left;padding-left:{0.3 + 1.2 * d:.1f}em'>"
            f"<code>{esc(name)}</code></td><td style='text-align:left'><code>{esc(t)}</code></td>"
            "</tr>"
            for d, name, t in _field_rows(e.fields)
        )
        parts.append(
            f"<details><summary><code>{esc(e.list_query)}</code>, "
            f"<code>{esc(e.single_query)}(id)</code> → <b>{esc(e.name)}</b> "
            f"<small>{esc(e.schema)}.{esc(e.relation)} · {esc(_identity(e))} · "
            f"{esc(_sampled(e))}</small></summary>"
            f"<table>{rows}</table></details>"
        )
    if s.facts:
        parts.append("<h4>Fact tables</h4>")
    for f in s.facts:
        rows = "".join(
            f"<tr><th style='text-align:left'>{esc(label)}</th><td style='text-align:left'>"
            f"<code>{esc(value)}</code></td></tr>"
            for label, value in _fact_lines(f)
        )
        parts.append(
            f"<details><summary><code>{esc(f.aggregate_query)}</code>, "
            f"<code>{esc(f.window_query)}</code> <small>{esc(f.schema)}.{esc(f.relation)}"
            f"</small></summary><table>{rows}</table></details>"
        )
    if s.problems:
        items = "".join(f"<li>{esc(p.message)}</li>" for p in s.problems)
        parts.append(f"<h4>Problems</h4><ul>{items}</ul>")
    parts.append("</div>")
    return "".join(parts)
