"""``%fraiseql explore sales``: pick group keys, a time bucket, measures and a filter.

Each change builds an aggregate query (shown, so it can be copied into a
cell), runs it through the session's router — after the first load the
arrow plane answers from its cache — and redraws the badge, the table and a
chart: bars over categories, a line over time buckets (Altair, through
Polars' plotting). An error is shown in the explorer, never swallowed.
"""

from __future__ import annotations

import html
import json
from typing import Any

import ipywidgets as w
import polars as pl

from fraiseql_nb.errors import QueryError
from fraiseql_nb.notebook import display as nbdisplay
from fraiseql_nb.result import Result
from fraiseql_nb.schema.model import FactTable
from fraiseql_nb.session import Session
from fraiseql_nb.vocabulary import AGGREGATES

__all__ = ["Explorer"]

NO_BUCKET = "(none)"
_MAX_BARS = 50
_MAX_POINTS = 2000
OPERATORS = ("eq", "neq", "gt", "gte", "lt", "lte", "in")


class Explorer:
    """An aggregate explorer over one fact table; ``widget`` is what the notebook shows."""

    def __init__(self, session: Session, table: str) -> None:
        fact = session.schema.fact(table.removeprefix("tf_")) or session.schema.fact(table)
        if fact is None:
            known = ", ".join(f.name for f in session.schema.facts) or "none"
            raise QueryError(f"no fact table {table!r} to explore (fact tables: {known})")
        self.session = session
        self.fact: FactTable = fact
        # Dimensions first: they are the categories one groups by; ids come last.
        keys = [d.name for d in fact.dimensions]
        keys += [c.name for c in fact.filters if c.name != fact.id_column]
        measures = [m.name for m in fact.measures]
        self.group = w.SelectMultiple(options=keys, value=keys[:1], description="group by", rows=5)
        self.bucket = w.Dropdown(options=[NO_BUCKET, *fact.buckets], description="time bucket")
        self.measures = w.SelectMultiple(
            options=measures, value=measures[:1], description="measures", rows=4
        )
        self.functions = w.SelectMultiple(
            options=AGGREGATES, value=("sum",), description="functions", rows=4
        )
        filterable = ["(no filter)", *keys, *measures]
        self.filter_field = w.Dropdown(options=filterable, description="filter")
        self.filter_op = w.Dropdown(options=OPERATORS, value="eq", layout=w.Layout(width="80px"))
        self.filter_value = w.Text(placeholder="value (in: a, b, c)")
        self.badge = w.HTML()
        self.query_view = w.HTML()
        self.error = w.HTML()
        self.table = w.HTML()
        self.chart_area = w.Output()
        self.result: Result | None = None
        self.chart: Any = None
        self.last_error: str | None = None
        controls = w.VBox(
            [
                w.HBox([self.group, self.bucket]),
                w.HBox([self.measures, self.functions]),
                w.HBox([self.filter_field, self.filter_op, self.filter_value]),
            ]
        )
        self.widget = w.VBox(
            [
                controls,
                self.error,
                self.badge,
                w.HBox([self.table, self.chart_area]),
                self.query_view,
            ]
        )
        for control in (self.group, self.bucket, self.measures, self.functions):
            control.observe(self._changed, names="value")
        for control in (self.filter_field, self.filter_op):
            control.observe(self._changed, names="value")
        self.filter_value.observe(self._changed, names="value")
        self.run()

    # ------------------------------------------------------------ query

    def query(self) -> str:
        """The aggregate query the controls describe."""
        f = self.fact
        keys = list(self.group.value)
        bucket = None if self.bucket.value == NO_BUCKET else self.bucket.value
        group = ([bucket] if bucket else []) + keys
        aggs = ["count"] + [f"{m}_{fn}" for m in self.measures.value for fn in self.functions.value]
        args = []
        where = self._where()
        if where:
            args.append(f"where: {where}")
        if group:
            args.append("groupBy: {" + ", ".join(f"{k}: true" for k in group) + "}")
            order = [f"{{{bucket}: ASC}}"] if bucket else [f"{{{aggs[-1]}: DESC}}"]
            order += [f"{{{k}: ASC}}" for k in keys]
            args.append("orderBy: [" + ", ".join(order) + "]")
        head = f.aggregate_query + (f"({', '.join(args)})" if args else "")
        return f"{{ {head} {{ {' '.join(group + aggs)} }} }}"

    def _where(self) -> str:
        name = self.filter_field.value
        raw = self.filter_value.value.strip()
        if name == "(no filter)" or not raw:
            return ""
        scalar = self.fact.scalar_of(name) or "String"
        op = self.filter_op.value
        if op == "in":
            values = [_typed(v.strip(), scalar) for v in raw.split(",") if v.strip()]
            literal = "[" + ", ".join(_literal(v) for v in values) + "]"
        else:
            literal = _literal(_typed(raw, scalar))
        return f"{{{name}: {{{op}: {literal}}}}}"

    # ------------------------------------------------------------ running

    def _changed(self, _change: dict[str, Any]) -> None:
        self.run()

    def run(self) -> Result | None:
        """Run the current query and redraw; a failure is shown, and kept in ``last_error``."""
        try:
            text = self.query()  # a filter value of the wrong type raises ValueError
            self.query_view.value = (
                f"<details><summary>query</summary><pre>{html.escape(text)}</pre></details>"
            )
            result = self.session.execute(text)
        except Exception as exc:  # noqa: BLE001 - a widget callback's error would go to the kernel log unseen
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.error.value = (
                "<pre style='color:#c53030;white-space:pre-wrap'>"
                f"{html.escape(self.last_error)}</pre>"
            )
            return None
        assert isinstance(result, Result)
        self.last_error = None
        self.error.value = ""
        self.result = result
        self.badge.value = nbdisplay.badge_html(result)
        self.table.value = nbdisplay.table_html(result)
        self.chart = self._chart(result.df)
        self.chart_area.clear_output()
        if self.chart is not None:
            with self.chart_area:
                from IPython.display import display

                display(self.chart)
        return result

    def _chart(self, frame: pl.DataFrame) -> Any:
        """A bar chart over categories, a line over time; None when there is nothing to plot."""
        bucket = None if self.bucket.value == NO_BUCKET else self.bucket.value
        keys = ([bucket] if bucket else []) + list(self.group.value)
        measures = [c for c in frame.columns if c not in keys and c != "count"]
        y = measures[0] if measures else "count"
        if not keys or frame.height == 0:
            return None
        if bucket:
            series = [k for k in keys if k != bucket]
            kwargs: dict[str, Any] = {"x": bucket, "y": y}
            if series:
                kwargs["color"] = series[0]
            # Altair embeds the data: keep the chart small whatever the result's size.
            return frame.head(_MAX_POINTS).plot.line(**kwargs).properties(width=420, height=240)
        x = keys[0]
        bars = frame.head(_MAX_BARS)  # the rows are sorted by the measure: the biggest bars
        return bars.plot.bar(x=x, y=y).properties(width=420, height=240)

    # ------------------------------------------------------------ display

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = self.widget._repr_mimebundle_() or {}
        bundle["text/plain"] = f"<Explorer {self.fact.name}: {self.query()}>"
        if self.result is not None:
            bundle["text/html"] = nbdisplay.html_view(self.result)
        return bundle


def _typed(raw: str, scalar: str) -> Any:
    if scalar in ("Int", "BigInt"):
        return int(raw)
    if scalar == "Float":
        return float(raw)
    if scalar == "Boolean":
        return raw.lower() in ("true", "1", "yes")
    return raw


def _literal(value: Any) -> str:
    """A GraphQL literal: JSON's string and number syntax are GraphQL's too."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)
