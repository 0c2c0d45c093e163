"""Charts of results that draw offline: Vega-Lite v5 for JupyterLab, SVG for the rest.

A chart's mime bundle carries the Vega-Lite v5 spec, which JupyterLab draws
with the renderer it ships (no script is fetched: Altair's own renderer
loads Vega from a CDN and draws nothing offline), and the same chart as SVG,
drawn locally by vl-convert (Vega in an embedded engine) when it is
installed, for exported HTML, VS Code, classic Notebook and GitHub. The data
travels in the spec, so a chart shows the rows it was drawn from (at most
``MAX_POINTS``).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import html
from typing import Any

import polars as pl

__all__ = ["MAX_POINTS", "Chart", "chart_for"]

VEGALITE = "application/vnd.vegalite.v5+json"
SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
MAX_POINTS = 5_000
KINDS = ("bar", "line", "point", "area")
# Grey reads on white (3.5:1) and on JupyterLab's dark theme (5:1).
_GREY = "#888888"
_NEUTRAL: dict[str, Any] = {
    "axis": {
        "labelColor": _GREY,
        "titleColor": _GREY,
        "domainColor": _GREY,
        "tickColor": _GREY,
        "gridColor": _GREY,
        "gridOpacity": 0.3,
    },
    "legend": {"labelColor": _GREY, "titleColor": _GREY},
    "title": {"color": _GREY},
    "view": {"stroke": None},
}


class Chart:
    """A Vega-Lite chart of a frame; displays itself in any front end."""

    def __init__(self, spec: dict[str, Any], title: str = "") -> None:
        self.spec = spec
        self.title = title
        self._svg: str | None = None
        self._html: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The Vega-Lite v5 spec, data included."""
        return self.spec

    def to_svg(self) -> str | None:
        """The chart as SVG, drawn locally (None without vl-convert-python)."""
        if self._svg is None:
            try:
                import vl_convert
            except ImportError:
                return None
            self._svg = vl_convert.vegalite_to_svg(self.spec, vl_version="5.20")
        return self._svg

    def to_html(self) -> str:
        """The chart as a picture inside HTML (no script), or a note when it cannot be drawn
        here. An ``<img>`` of SVG, not inline SVG: an untrusted notebook's sanitizer strips
        inline SVG down to run-together text, but keeps an image. Its colours read on a
        light and a dark page alike (an image cannot follow the theme): a transparent
        background, grey text and lines."""
        if self._html is None:
            try:
                import vl_convert
            except ImportError:
                return "<p><i>(install vl-convert-python to see this chart as a picture)</i></p>"
            spec = {**self.spec, "background": "transparent", "config": _NEUTRAL}
            svg = vl_convert.vegalite_to_svg(spec, vl_version="5.20")
            data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
            self._html = (
                f"<div class='fraiseql-chart'><img alt='{self.title}'"
                f" src='data:image/svg+xml;base64,{data}'></div>"
            )
        return self._html

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {VEGALITE: self.spec, "text/plain": repr(self)}
        svg = self.to_svg()
        if svg is not None:
            bundle["image/svg+xml"] = svg
        return bundle

    def __repr__(self) -> str:
        enc = self.spec.get("encoding", {})
        what = ", ".join(f"{k}={v.get('field')}" for k, v in enc.items() if isinstance(v, dict))
        return f"<Chart {self.spec.get('mark', {}).get('type', '?')} {what}>"


def chart_for(
    frame: pl.DataFrame,
    x: str | None = None,
    y: str | None = None,
    color: str | None = None,
    kind: str | None = None,
    *,
    title: str = "",
    width: int = 480,
    height: int = 260,
) -> Chart:
    """A chart of ``frame``: ``y`` (default: the first numeric column) over ``x`` (default:
    the first other column); a line over time, bars otherwise.

    Raises:
        ValueError: a column is not in the frame, or there is nothing to plot.
    """
    names = frame.columns
    for name in (x, y, color):
        if name is not None and name not in names:
            raise ValueError(f"no column {name!r} to chart (columns: {', '.join(names)})")
    numeric = [n for n in names if frame.schema[n].is_numeric()]
    if y is None:
        candidates = [n for n in numeric if n != x]
        if not candidates:
            raise ValueError("nothing to chart: the result has no numeric column")
        # A measure rather than a count when there is one.
        y = next((n for n in candidates if n != "count"), candidates[0])
    if x is None:
        others = [n for n in names if n not in (y, color)]
        if not others:
            raise ValueError("nothing to chart against: give x")
        x = next((n for n in others if n not in numeric), others[0])
    temporal = frame.schema[x].is_temporal()
    if kind is None:
        kind = "line" if temporal else "bar"
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    rows = frame.select([c for c in dict.fromkeys([x, y, color]) if c]).head(MAX_POINTS)
    encoding: dict[str, Any] = {
        "x": {"field": x, "type": _type(frame.schema[x]), "title": x},
        "y": {"field": y, "type": "quantitative", "title": y},
        "tooltip": [{"field": c, "type": _type(frame.schema[c])} for c in rows.columns],
    }
    if kind == "bar" and not temporal:
        encoding["x"]["sort"] = None  # keep the result's order (e.g. by the measure)
        labels = [str(v) for v in rows.get_column(x).to_list()]
        # Vega-Lite turns band labels 90°; short ones read level, as the word "EU" should.
        if labels and sum(len(v) for v in labels) * 7 < width:
            encoding["x"]["axis"] = {"labelAngle": 0}
    if color:
        encoding["color"] = {"field": color, "type": _type(frame.schema[color])}
    spec = {
        "$schema": SCHEMA,
        "title": title or f"{y} by {x}",
        "width": width,
        "height": height,
        "data": {"values": [_jsonable(r) for r in rows.to_dicts()]},
        "mark": {"type": kind, "tooltip": True, **({"point": True} if kind == "line" else {})},
        "encoding": encoding,
    }
    return Chart(spec, title=html.escape(spec["title"]))


def _type(dtype: Any) -> str:
    if dtype.is_temporal():
        return "temporal"
    if dtype.is_numeric():
        return "quantitative"
    return "nominal"


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if isinstance(v, (dt.date, dt.datetime)):
            out[k] = v.isoformat()
        elif isinstance(v, decimal.Decimal):
            out[k] = float(v)
        elif isinstance(v, (int, float, str, bool)) or v is None:
            out[k] = v
        else:
            out[k] = str(v)
    return out
