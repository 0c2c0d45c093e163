"""The interactive grid: the plain table, made sortable, searchable and pageable by a
small script that travels inside each result. Pure: builds HTML, no I/O.

Every result stores the plain table of its first page (what any viewer shows:
an untrusted notebook, GitHub, nbconvert without scripts) and, for the grid,
the rest of its first ``gridlimit`` rows as compact JSON beside a 4 KB script.
Where scripts run (a trusted notebook, live or reopened, exported HTML), the
script takes the table over: click a column name to sort (numbers by value),
type to search, choose how many rows a page shows. Each output carries all it
needs, so re-running or clearing another cell never breaks it, and nothing is
fetched. Colours come from JupyterLab's theme variables, so the dark theme reads.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

import polars as pl

from fraiseql_nb.notebook.table import Column

__all__ = ["PAGE_SIZES", "grid_data", "grid_script"]

PAGE_SIZES = (10, 20, 50, 100)


def sort_keys(series: pl.Series) -> list[Any]:
    """What the grid sorts a column by: numbers by value (nulls and NaN last), the rest by
    their text."""
    if not (series.dtype.is_numeric() or isinstance(series.dtype, pl.Decimal)):
        return [None] * series.len()  # the script sorts by the shown text
    out: list[Any] = []
    for v in series.to_list():
        f = None if v is None else float(v)
        out.append(None if f is None or math.isnan(f) else max(min(f, 1e308), -1e308))
    return out


def grid_data(frame: pl.DataFrame, cols: list[Column], page: int, total: int) -> str:
    """The rows the grid holds, as a JSON script element (inert where scripts do not run)."""
    keys = [sort_keys(frame.get_column(c.name)) for c in cols]
    payload = {
        "cells": [[c.cells[i] for c in cols] for i in range(frame.height)],
        "keys": [[k[i] for k in keys] for i in range(frame.height)]
        if any(c.numeric for c in cols)
        else [],
        "numeric": [c.numeric for c in cols],
        "page": page,
        "sizes": sorted({*PAGE_SIZES, page}),
        "total": total,
    }
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    text = text.replace("<", "\\u003c")  # nothing in it can close the element
    return f"<script type='application/json' class='fq-data'>{text}</script>"


def new_id() -> str:
    return f"fqg-{uuid.uuid4().hex[:12]}"


def grid_script(root_id: str) -> str:
    """The script that turns the table inside ``root_id`` into the grid."""
    return f"<script>{_JS.replace('__ROOT__', root_id)}</script>"


# Plain ES5 for any browser JupyterLab runs in; builds DOM nodes (never parses cell text
# as HTML). Kept small: it travels with every result.
_JS = r"""
(function () {
  var root = document.getElementById('__ROOT__');
  if (!root || root.getAttribute('data-grid') === 'on') { return; }
  var holder = root.querySelector('script.fq-data');
  var table = root.querySelector('table');
  if (!holder || !table) { return; }
  root.setAttribute('data-grid', 'on');
  var d = JSON.parse(holder.textContent);
  var n = d.cells.length, sortCol = -1, asc = true, page = 0, size = d.page, query = '';
  var view = [], i;
  var muted = 'color:var(--jp-ui-font-color2,#666);font-size:11.5px';
  var ctl = 'font-size:12px;color:var(--jp-ui-font-color1,inherit);' +
    'background:var(--jp-layout-color1,transparent);border:1px solid ' +
    'var(--jp-border-color1,#bbb);border-radius:3px;padding:1px 4px;margin-right:6px';
  function el(tag, style, text) {
    var e = document.createElement(tag);
    if (style) { e.setAttribute('style', style); }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  var bar = el('div', 'margin:2px 0 4px 0;' + muted);
  var search = el('input', ctl + ';width:14em');
  search.type = 'search'; search.placeholder = 'search rows'; search.className = 'fq-search';
  var pick = el('select', ctl); pick.className = 'fq-size';
  d.sizes.concat(['all']).forEach(function (s) {
    var o = el('option', '', s === 'all' ? 'all rows' : s + ' rows'); o.value = s;
    if (s === d.page) { o.selected = true; }
    pick.appendChild(o);
  });
  var prev = el('button', ctl, '‹'), next = el('button', ctl, '›');
  prev.className = 'fq-prev'; next.className = 'fq-next';
  var info = el('span', muted); info.className = 'fq-info';
  var save = el('button', ctl, 'csv'); save.className = 'fq-csv';
  save.title = 'download the rows the grid holds, as shown (searched, sorted), as CSV';
  [search, pick, prev, next, save, info].forEach(function (c) { bar.appendChild(c); });
  table.parentNode.parentNode.insertBefore(bar, table.parentNode);
  var caption = root.querySelector('.fq-caption');
  if (caption) { caption.style.display = 'none'; }
  var heads = table.tHead.rows[0].cells;
  function key(r, c) {
    return d.numeric[c] && d.keys.length ? d.keys[r][c] : d.cells[r][c];
  }
  function compare(a, b) {
    var x = key(a, sortCol), y = key(b, sortCol);
    if (x === null || x === undefined) { return (y === null || y === undefined) ? a - b : 1; }
    if (y === null || y === undefined) { return -1; }
    var r = typeof x === 'number' ? x - y : String(x).localeCompare(String(y));
    return (asc ? r : -r) || a - b;
  }
  function refresh() {
    var q = query.toLowerCase();
    view = [];
    function hit(v) { return v !== null && v.toLowerCase().indexOf(q) >= 0; }
    for (i = 0; i < n; i++) {
      if (!q || d.cells[i].some(hit)) { view.push(i); }
    }
    if (sortCol >= 0) { view.sort(compare); }
    draw();
  }
  function draw() {
    var per = size === 'all' ? view.length || 1 : size;
    var pages = Math.max(1, Math.ceil(view.length / per));
    page = Math.min(page, pages - 1);
    var from = page * per, to = Math.min(view.length, from + per);
    var body = el('tbody');
    for (var k = from; k < to; k++) {
      var tr = el('tr'), row = d.cells[view[k]];
      for (var c = 0; c < row.length; c++) {
        var td = el('td', 'padding:2px 10px;border-bottom:1px solid var(--jp-border-color2,#eee);' +
          'white-space:nowrap;vertical-align:top;text-align:' + (d.numeric[c] ? 'right' : 'left'));
        if (row[c] === null) { td.appendChild(el('span', 'color:#999;font-style:italic', 'null')); }
        else { td.textContent = row[c].length > 200 ? row[c].slice(0, 199) + '…' : row[c]; }
        if (row[c] !== null && row[c].length > 200) { td.title = row[c]; }
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    table.replaceChild(body, table.tBodies[0]);
    var held = n < d.total ? ' (the grid holds the first ' + n.toLocaleString('en') +
      ' of ' + d.total.toLocaleString('en') + '; the whole result is in .df)' : '';
    info.textContent = (view.length ? 'rows ' + (from + 1).toLocaleString('en') + '–' +
      to.toLocaleString('en') + ' of ' : 'no rows of ') + view.length.toLocaleString('en') +
      (query ? ' matching' : '') + held;
    prev.disabled = page === 0; next.disabled = page >= pages - 1;
  }
  for (i = 0; i < heads.length; i++) {
    (function (c) {
      var th = heads[c], mark = el('span', 'margin-left:4px;opacity:0.6', '↕');
      th.style.cursor = 'pointer'; th.title = 'sort by ' + th.textContent;
      th.setAttribute('aria-sort', 'none'); th.appendChild(mark);
      th.addEventListener('click', function () {
        asc = sortCol === c ? !asc : true; sortCol = c; page = 0;
        for (var h = 0; h < heads.length; h++) {
          heads[h].setAttribute('aria-sort', 'none');
          heads[h].lastChild.textContent = '↕'; heads[h].lastChild.style.opacity = '0.6';
        }
        th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
        mark.textContent = asc ? '▲' : '▼'; mark.style.opacity = '1';
        refresh();
      });
    })(i);
  }
  function csvCell(r, c) {
    var v = d.numeric[c] && d.keys.length ? d.keys[r][c] : d.cells[r][c];
    if (v === null || v === undefined) { return ''; }
    v = String(v);
    return /[",\n\r]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v;
  }
  save.addEventListener('click', function () {
    var names = [];
    for (var h = 0; h < heads.length; h++) { names.push(heads[h].firstChild.textContent); }
    var lines = [names.map(function (v) { return /[",]/.test(v) ? '"' + v + '"' : v; }).join(',')];
    view.forEach(function (r) {
      var row = [];
      for (var c = 0; c < names.length; c++) { row.push(csvCell(r, c)); }
      lines.push(row.join(','));
    });
    var a = el('a');
    a.href = URL.createObjectURL(new Blob([lines.join('\n') + '\n'], {type: 'text/csv'}));
    a.download = (root.getAttribute('data-key') || 'result') + '.csv';
    document.body.appendChild(a); a.click(); a.remove();
  });
  search.addEventListener('input', function () { query = search.value; page = 0; refresh(); });
  pick.addEventListener('change', function () {
    size = pick.value === 'all' ? 'all' : parseInt(pick.value, 10); page = 0; draw();
  });
  prev.addEventListener('click', function () { page -= 1; draw(); });
  next.addEventListener('click', function () { page += 1; draw(); });
  refresh();
  // A copy button on each statement of this result (where scripts run).
  var whole = root.closest ? root.closest('.fraiseql-result') : null;
  (whole ? whole.querySelectorAll('pre.fq-sql') : []).forEach(function (pre) {
    var copy = el('button', ctl + ';float:right', 'copy');
    copy.className = 'fq-copy';
    copy.addEventListener('click', function () {
      navigator.clipboard.writeText(pre.textContent).then(function () {
        copy.textContent = 'copied';
      });
    });
    pre.parentNode.insertBefore(copy, pre);
  });
})();
"""
