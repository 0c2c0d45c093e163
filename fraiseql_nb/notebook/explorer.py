"""``%fraiseql explore sales``: pick group keys, a time bucket, measures and a filter.

Each change builds an aggregate query (shown, so it can be copied into a
cell), runs it through the session's router — after the first load the
arrow plane answers from its cache — and redraws the badge, the table and a
chart: bars over categories, a line over time buckets.

The controls are widgets (they need the kernel); what they produced is a
separate output of plain HTML — badge, table, the chart as an SVG picture, the
query — updated in place, so a saved, reopened or untrusted notebook still
shows the last state (and, reopened without the kernel, a note in place of
JupyterLab's "model not found"). A filter value that does not fit its field (a half-typed number, a
date that is not one yet) is said in plain words and sends no query.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import uuid
from typing import Any

import ipywidgets as w
import polars as pl

from fraiseql_nb.charts import Chart, chart_for
from fraiseql_nb.errors import QueryError
from fraiseql_nb.language.aggregates import measure_aggregates
from fraiseql_nb.notebook import display as nbdisplay
from fraiseql_nb.result import Result
from fraiseql_nb.schema.model import FactTable
from fraiseql_nb.session import Session

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
            options=tuple(f.name for f in measure_aggregates()),
            value=("sum",),
            description="functions",
            rows=4,
        )
        aggs = self._aggregates()
        # The charted aggregate, which also orders the rows: table and chart agree.
        self.charted = w.Dropdown(
            options=aggs, value=aggs[-1] if aggs else None, description="chart"
        )
        self._syncing = False
        filterable = ["(no filter)", *keys, *measures]
        self.filter_field = w.Dropdown(options=filterable, description="filter")
        self.filter_op = w.Dropdown(options=OPERATORS, value="eq", layout=w.Layout(width="80px"))
        self.filter_value = w.Text(placeholder="value (in: a, b, c)")
        # After the groups: a calc over the selected aggregates, each row's share.
        self.calc = w.Text(
            placeholder="revenue_sum - cost_sum", description="calc", continuous_update=False
        )
        self.share = w.Checkbox(value=False, description="share of the charted", indent=False)
        self.error = w.HTML()
        self.result: Result | None = None
        self.chart: Any = None
        self.last_error: str | None = None
        self.snapshot = ""  # the last state as HTML (what a reopened notebook shows)
        self._display_id = f"fraiseql-explorer-{uuid.uuid4().hex[:12]}"
        self._shown = False
        self.widget = w.VBox(
            [
                w.HBox([self.group, self.bucket]),
                w.HBox([self.measures, self.functions, self.charted]),
                w.HTML(
                    "<span style='font-size:11.5px;color:var(--jp-ui-font-color2,#666)'>"
                    "Ctrl-click (⌘-click) to choose several group keys, measures or"
                    " functions</span>"
                ),
                w.HBox([self.filter_field, self.filter_op, self.filter_value]),
                w.HBox([self.calc, self.share]),
                self.error,
            ]
        )
        for control in (self.group, self.bucket, self.measures, self.functions, self.charted):
            control.observe(self._changed, names="value")
        for control in (self.filter_field, self.filter_op):
            control.observe(self._changed, names="value")
        self.filter_value.observe(self._changed, names="value")
        self.calc.observe(self._changed, names="value")
        self.share.observe(self._changed, names="value")
        self.run()

    # ------------------------------------------------------------ query

    def query(self) -> str:
        """The aggregate query the controls describe."""
        f = self.fact
        keys = list(self.group.value)
        bucket = None if self.bucket.value == NO_BUCKET else self.bucket.value
        group = ([bucket] if bucket else []) + keys
        aggs = ["count", *self._aggregates()]
        args = []
        where = self._where()
        if where:
            args.append(f"where: {where}")
        if group:
            args.append("groupBy: {" + ", ".join(f"{k}: true" for k in group) + "}")
            order = [f"{{{bucket}: ASC}}"] if bucket else [f"{{{self._charted()}: DESC}}"]
            order += [f"{{{k}: ASC}}" for k in keys]
            args.append("orderBy: [" + ", ".join(order) + "]")
        head = f.aggregate_query + (f"({', '.join(args)})" if args else "")
        after = []
        if self.calc.value.strip():  # a JSON string is a GraphQL string
            after.append(f"calc: calc(expr: {json.dumps(self.calc.value.strip())})")
        if self.share.value:
            within = f", partitionBy: [{bucket}]" if bucket else ""
            after.append(f"share: share(field: {self._charted()}{within})")
        return f"{{ {head} {{ {' '.join(group + aggs + after)} }} }}"

    def _aggregates(self) -> list[str]:
        return [f"{m}_{fn}" for m in self.measures.value for fn in self.functions.value]

    def _charted(self) -> str:
        """The aggregate the chart draws and the rows are ordered by (count without any)."""
        aggs = self._aggregates()
        return self.charted.value if self.charted.value in aggs else (aggs or ["count"])[-1]

    def _sync_charted(self) -> None:
        """Offer the chosen aggregates to chart, keeping the one charted while it stays."""
        aggs = self._aggregates()
        keep = self.charted.value if self.charted.value in aggs else (aggs[-1] if aggs else None)
        self._syncing = True
        try:
            self.charted.options = aggs
            self.charted.value = keep
        finally:
            self._syncing = False

    def _where(self) -> str:
        name = self.filter_field.value
        raw = self.filter_value.value.strip()
        if name == "(no filter)" or not raw:
            return ""
        scalar = self.fact.scalar_of(name) or "String"
        op = self.filter_op.value
        if op == "in":
            values = [_typed(name, v.strip(), scalar) for v in raw.split(",") if v.strip()]
            literal = "[" + ", ".join(_literal(v) for v in values) + "]"
        else:
            literal = _literal(_typed(name, raw, scalar))
        return f"{{{name}: {{{op}: {literal}}}}}"

    # ------------------------------------------------------------ running

    def _changed(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        if change.get("owner") in (self.measures, self.functions):
            self._sync_charted()
        self.run()

    def run(self) -> Result | None:
        """Run the current query and redraw; a failure is shown, and kept in ``last_error``."""
        try:
            text = self.query()
        except FilterValueError as exc:  # half-typed: say what is expected, send nothing
            self._fail(str(exc))
            return None
        try:
            result = self.session.execute(text)
        except Exception as exc:  # noqa: BLE001 - a widget callback's error would go to the kernel log unseen
            self._fail(f"{type(exc).__name__}: {exc}")
            return None
        assert isinstance(result, Result)
        self.last_error = None
        self.error.value = ""
        self.result = result
        self.chart = self._chart(result.df)
        chart = self.chart.to_html() if self.chart is not None else ""
        self.snapshot = (
            f"<div class='fraiseql-explorer'>{nbdisplay.badge_html(result)}"
            "<div style='display:flex;gap:18px;align-items:flex-start;flex-wrap:wrap'>"
            f"<div>{nbdisplay.table_html(result)}</div>{chart}</div>"
            f"<details><summary>query</summary><pre>{html.escape(text)}</pre></details>"
            f"<script>{_CONTROLS_NOTE_JS}</script></div>"
        )
        self._redraw()
        return result

    def _fail(self, message: str) -> None:
        self.last_error = message
        self.error.value = (
            f"<pre style='color:#c53030;white-space:pre-wrap'>{html.escape(message)}</pre>"
        )

    def _redraw(self) -> None:
        if self._shown:
            from IPython.display import HTML, update_display

            update_display(HTML(self.snapshot), display_id=self._display_id)

    def _chart(self, frame: pl.DataFrame) -> Chart | None:
        """A bar chart over categories, a line over time; None when there is nothing to plot."""
        bucket = None if self.bucket.value == NO_BUCKET else self.bucket.value
        keys = ([bucket] if bucket else []) + list(self.group.value)
        y = self._charted()
        if y not in frame.columns:
            y = "count"
        if not keys or frame.height == 0:
            return None
        if bucket:
            series = [k for k in keys if k != bucket]
            return chart_for(
                frame.head(_MAX_POINTS), bucket, y, series[0] if series else None, "line"
            )
        # The rows are sorted by the measure: the biggest bars.
        return chart_for(frame.head(_MAX_BARS), keys[0], y, None, "bar")

    # ------------------------------------------------------------ display

    def _ipython_display_(self) -> None:
        """The controls (a widget), then the last state as HTML, updated in place."""
        from IPython.display import HTML, display

        # The controls' own text form is a repr of nested boxes: a notebook opened without
        # the kernel (untrusted, GitHub) shows this line instead.
        view = {"version_major": 2, "version_minor": 0, "model_id": self.widget.model_id}
        display(
            {
                "application/vnd.jupyter.widget-view+json": view,
                "text/plain": f"(the explorer's controls for {self.fact.name}: they need the"
                " running kernel; the last view is below)",
            },
            raw=True,
        )
        display(HTML(self.snapshot), display_id=self._display_id)
        self._shown = True

    def __repr__(self) -> str:
        return f"<Explorer {self.fact.name}: {self.query()}>"


# A notebook saved without its widgets' state and reopened has no model for the controls:
# JupyterLab says "Error displaying widget: model not found" above the last view. Where
# scripts run (a trusted notebook), this says instead what the controls need.
_CONTROLS_NOTE = (
    "(the explorer's controls need the running kernel: run this cell to use them;"
    " the last view is below)"
)
_CONTROLS_NOTE_JS = """
(function () {
  var me = document.currentScript;
  var area = me && me.closest ? me.closest('.jp-OutputArea') : null;
  if (!area) { return; }
  function fix() {
    var found = area.querySelectorAll('.jupyter-widgets');
    for (var i = 0; i < found.length; i++) {
      if (/^Error displaying widget/.test(found[i].textContent)) {
        found[i].textContent = NOTE;
        found[i].style.color = 'var(--jp-ui-font-color2, #666)';
        found[i].setAttribute('data-fq-note', 'controls');
      }
    }
  }
  fix();
  var watch = new MutationObserver(fix);
  watch.observe(area, {childList: true, subtree: true, characterData: true});
  setTimeout(function () { watch.disconnect(); }, 60000);
})();
""".replace("NOTE", json.dumps(_CONTROLS_NOTE)).strip()


class FilterValueError(ValueError):
    """A filter value the field cannot take (yet): the message says what it expects."""


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([T ].*)?$")
_EXPECTED = {
    "Int": "a whole number",
    "BigInt": "a whole number",
    "Float": "a number",
    "Boolean": "true or false",
    "DateTime": "a date or time like 2024-01-31 or 2024-01-31T12:00",
    "Date": "a date like 2024-01-31",
}


def _typed(field: str, raw: str, scalar: str) -> Any:
    """``raw`` as a value of ``scalar``, or a FilterValueError naming the field."""
    try:
        if scalar in ("Int", "BigInt"):
            return int(raw)
        if scalar == "Float":
            return float(raw)
        if scalar == "Boolean":
            lowered = raw.lower()
            if lowered in ("true", "false"):
                return lowered == "true"
            raise ValueError(raw)
        if scalar in ("DateTime", "Date"):
            if not _DATE.match(raw):
                raise ValueError(raw)
            dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
            return raw
    except ValueError:
        raise FilterValueError(
            f"filter: {field} expects {_EXPECTED[scalar]}, and {raw!r} is not one"
        ) from None
    return raw


def _literal(value: Any) -> str:
    """A GraphQL literal: JSON's string and number syntax are GraphQL's too."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)
