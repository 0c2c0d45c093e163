"""A window function's SQL call — over fact rows (``_window``) or over grouped rows (after
an aggregate's groups): the same functions, casts and ROWS frames; each caller says what
the function reads and its ``OVER (…)``. Pure."""

from __future__ import annotations

from psycopg import sql

from fraiseql_nb.query.ir import WindowFunction

__all__ = ["frame", "framed", "window_call"]


def framed(fn: WindowFunction) -> bool:
    """Whether ``fn`` takes a ROWS frame (when it is ordered)."""
    return fn.function.startswith("running_") or fn.function in ("first_value", "last_value")


def frame(fn: WindowFunction) -> sql.Composable:
    """``ROWS BETWEEN …``: from ``preceding`` rows before (default: the partition start) to
    ``following`` after (default: the current row; the whole partition for first_value and
    last_value without a frame)."""
    whole = fn.function in ("first_value", "last_value")
    if fn.preceding is not None:
        start = sql.SQL("{} PRECEDING").format(sql.Literal(fn.preceding))
    else:
        start = sql.SQL("UNBOUNDED PRECEDING")
    if fn.following is not None:
        end = sql.SQL("{} FOLLOWING").format(sql.Literal(fn.following))
    elif whole and fn.preceding is None:
        end = sql.SQL("UNBOUNDED FOLLOWING")
    else:
        end = sql.SQL("CURRENT ROW")
    return sql.SQL("ROWS BETWEEN {} AND {}").format(start, end)


def window_call(
    fn: WindowFunction,
    over: sql.Composable,
    *,
    value: sql.Composable | None,
    running: sql.Composable | None,
    default: sql.Composable | None,
) -> sql.Composable:
    """``fn`` over ``over`` (``OVER (…)``): ``value`` is what lag, lead, first_value and
    last_value return, ``running`` what a running aggregate adds up (None for a
    ``running_count`` of rows), ``default`` lag/lead's bound default."""
    name = fn.function
    if name in ("row_number", "rank", "dense_rank"):
        return sql.SQL("({}() {})::bigint").format(sql.SQL(name), over)
    if name in ("percent_rank", "cume_dist"):
        return sql.SQL("({}() {})::float8").format(sql.SQL(name), over)
    if name == "ntile":
        return sql.SQL("(ntile({}) {})::bigint").format(sql.Literal(fn.buckets), over)
    if name in ("lag", "lead"):
        assert value is not None
        offset = sql.Literal(fn.offset if fn.offset is not None else 1)
        if default is None:
            return sql.SQL("{}({}, {}) {}").format(sql.SQL(name), value, offset, over)
        return sql.SQL("{}({}, {}, {}) {}").format(sql.SQL(name), value, offset, default, over)
    if name in ("first_value", "last_value"):
        assert value is not None
        return sql.SQL("{}({}) {}").format(sql.SQL(name), value, over)
    kind = name[len("running_") :]
    if kind == "count":
        return sql.SQL("(count({}) {})::bigint").format(running or sql.SQL("*"), over)
    assert running is not None
    func = {"sum": "sum", "avg": "avg", "min": "min", "max": "max"}[kind]
    return sql.SQL("({}({}) {})::float8").format(sql.SQL(func), running, over)
