"""The Polars engine of the analytics plane: aggregate and window IR over loaded columns.

Pure computation, no I/O: it takes the fact table's loaded columns as a
Polars DataFrame (one column per needed name) and returns the query's
output. SQL semantics are kept so that the ``arrow`` and ``postgres`` planes
agree: aggregates skip NULLs and an aggregate over no value is NULL (Polars'
``sum`` would say 0); ``count`` counts rows and ``count_distinct`` ignores
NULLs (Polars' ``n_unique`` would count them); percentiles interpolate like
``percentile_cont``; stddev and variance are the sample versions; NULL is a
group key of its own; filters use three-valued logic. Output is ordered by
the query's orderBy then every group key (aggregates) or the id (windows),
NULLs last, text by code point — as :mod:`fraiseql_nb.sql.facts` orders.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from fraiseql_nb.planes.frames import SCALAR_DTYPES
from fraiseql_nb.query.ir import (
    Aggregate,
    AggregateQuery,
    And,
    Compare,
    Not,
    Or,
    OrderItem,
    Where,
    WindowColumn,
    WindowFunction,
    WindowQuery,
)
from fraiseql_nb.query.values import TYPED_OPS
from fraiseql_nb.schema.model import FactTable
from fraiseql_nb.sql.facts import load_refusal
from fraiseql_nb.sql.where import escape_like
from fraiseql_nb.vocabulary import POLARS_TRUNCATE, ROW_ORDER_FUNCTIONS

__all__ = [
    "UnsupportedError",
    "bucket",
    "bucket_expr",
    "check_caseless_by",
    "check_time_bounds",
    "declines",
    "needed_columns",
    "output_schema",
    "run_aggregate",
    "run_aggregate_lazy",
    "run_window",
    "where_expr",
]


_LOOKUP_DAYS = 200_000  # dates spanned (550 years) up to which buckets are looked up
_MAX_PATTERN = 1_000  # longer patterns are left to PostgreSQL


class UnsupportedError(Exception):
    """The query uses something this engine does not compute; the postgres plane can."""


# ------------------------------------------------------------------ schema


def output_schema(query: AggregateQuery | WindowQuery, fact: FactTable) -> dict[str, Any]:
    """Column names and Polars dtypes of a query's output (the same on both planes)."""
    if isinstance(query, AggregateQuery):
        aggs = {a.name: a for a in query.aggregates}
        out: dict[str, Any] = {}
        for name, source in query.columns:
            agg = aggs.get(source)
            if agg is not None:
                out[name] = pl.Int64 if agg.function in ("count", "count_distinct") else pl.Float64
            else:
                out[name] = _column_dtype(fact, source)
        return out
    out = {}
    for o in query.outputs:
        if isinstance(o, WindowColumn):
            out[o.name] = _column_dtype(fact, o.column)
        elif o.function in ("row_number", "rank", "dense_rank", "ntile", "running_count"):
            out[o.name] = pl.Int64
        elif o.function in ("lag", "lead", "first_value", "last_value"):
            out[o.name] = _column_dtype(fact, o.field or "")
        else:
            out[o.name] = pl.Float64
    return out


def _column_dtype(fact: FactTable, name: str) -> Any:
    if name in fact.buckets:
        return pl.Date
    scalar = fact.scalar_of(name) or "String"
    return SCALAR_DTYPES.get(scalar, pl.String)


def declines(query: AggregateQuery | WindowQuery, fact: FactTable) -> str | None:
    """Why this engine will not answer ``query`` exactly (a column type it does not
    load as such), or None. The query then runs on PostgreSQL."""
    for name in needed_columns(query, fact):
        reason = load_refusal(fact, name)
        if reason is not None:
            return reason
    return None


def needed_columns(query: AggregateQuery | WindowQuery, fact: FactTable) -> list[str]:
    """The fact columns (and dimensions) a query reads, id included when there is one."""
    names: list[str] = []

    def add(name: str | None) -> None:
        if name is not None and name not in names:
            names.append(name)

    def add_where(w: Where | None) -> None:
        if isinstance(w, Compare):
            add(w.path[0])
        elif isinstance(w, (And, Or)):
            for item in w.items:
                add_where(item)
        elif isinstance(w, Not):
            add_where(w.item)

    add_where(query.where)
    if isinstance(query, AggregateQuery):
        for k in query.group_keys:
            add(k.column if k.source == "bucket" else k.name)
        for a in query.aggregates:
            add(a.field)
    else:
        for p in query.partition_by:
            add(p)
        for o in query.order:
            add(o.path[0])
        for out in query.outputs:
            if isinstance(out, WindowColumn):
                add(out.column)
            else:
                add(out.field)
                for p in out.partition_by:
                    add(p)
                for o in out.order:
                    add(o.path[0])
        add(fact.id_column)
    if not names:
        # count alone still needs the rows: load a narrow column.
        id_column = fact.column(fact.id_column or "")
        narrow = id_column is not None and id_column.scalar in ("Int", "BigInt")
        add(fact.id_column if narrow else fact.measures[0].name)
    return names


# ------------------------------------------------------------------- where


def where_expr(where: Where, dtypes: dict[str, Any], timezone: str = "UTC") -> pl.Expr:
    """A Polars boolean expression with SQL's three-valued logic (Polars' is Kleene too).

    A time written without an offset is in ``timezone``, as PostgreSQL reads it.
    """
    # Flat, not a left-deep chain of & and |: Polars' optimiser is quadratic in the
    # depth of an expression (3,000 _or items took 37 s that way).
    if isinstance(where, And):
        if not where.items:
            return pl.lit(True)
        parts = [where_expr(item, dtypes, timezone) for item in where.items]
        return parts[0] if len(parts) == 1 else pl.all_horizontal(parts)
    if isinstance(where, Or):
        if not where.items:
            return pl.lit(False)
        parts = [where_expr(item, dtypes, timezone) for item in where.items]
        return parts[0] if len(parts) == 1 else pl.any_horizontal(parts)
    if isinstance(where, Not):
        return ~where_expr(where.item, dtypes, timezone)
    if not isinstance(where, Compare):
        raise UnsupportedError(f"the condition {type(where).__name__}")
    return _compare(where, dtypes, timezone)


def _value(value: Any, dtype: Any, timezone: str) -> Any:
    if isinstance(value, list):
        return [_value(v, dtype, timezone) for v in value]
    if isinstance(dtype, pl.Datetime) and isinstance(value, str):
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if dtype.time_zone is None:
            # timestamp without time zone: PostgreSQL ignores an offset written in the value.
            return parsed.replace(tzinfo=None)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=ZoneInfo(timezone))
        return parsed.astimezone(dt.timezone.utc)
    if dtype == pl.Date and isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    return value


def _compare(c: Compare, dtypes: dict[str, Any], timezone: str) -> pl.Expr:
    name = c.path[0]
    col = pl.col(name)
    dtype = dtypes.get(name)
    op, value = c.op, c.value
    if op in TYPED_OPS:  # others carry JSON (strictly_contains) or text patterns as given
        try:
            value = _value(value, dtype, timezone)
        except (ValueError, TypeError, OverflowError, KeyError) as exc:
            # A value Polars' types cannot hold (a time past year 9999 in UTC, a time
            # zone Python does not know): PostgreSQL can.
            raise UnsupportedError(f"the value {value!r} of {name} ({exc})") from None
    if op == "isnull":
        return col.is_null() if value else col.is_not_null()
    if op in ("eq", "neq", "gt", "gte", "lt", "lte", "in", "nin"):
        value = _comparable(value, dtype, name)
    if op in ("eq", "neq", "gt", "gte", "lt", "lte"):
        lit = pl.lit(value, dtype=dtype) if dtype is not None else pl.lit(value)
        return {
            "eq": col == lit,
            "neq": col != lit,
            "gt": col > lit,
            "gte": col >= lit,
            "lt": col < lit,
            "lte": col <= lit,
        }[op]
    if op in ("in", "nin"):
        if not value:
            return pl.lit(op == "nin")
        # One hashed membership test, however long the list (10,000 values: 5 ms).
        kind = pl.String if isinstance(dtype, (pl.Categorical, pl.Enum)) else dtype
        member = col.is_in(pl.Series(value, dtype=kind).implode())
        return member if op == "in" else ~member
    text = col.cast(pl.String)
    if op in ("contains", "startswith", "endswith"):
        return {
            "contains": text.str.contains(value, literal=True),
            "startswith": text.str.starts_with(value),
            "endswith": text.str.ends_with(value),
        }[op]
    if op in _CASELESS and not value.isascii():
        # Case folding of other letters differs between PostgreSQL and Polars (ſ, İ, ß).
        raise UnsupportedError(f"{op} with letters beyond ASCII")
    if op in ("icontains", "istartswith", "iendswith", "like", "ilike"):
        pattern = {
            "icontains": f"%{escape_like(value)}%",
            "istartswith": f"{escape_like(value)}%",
            "iendswith": f"%{escape_like(value)}",
        }.get(op, value)
        if len(pattern) > _MAX_PATTERN:
            raise UnsupportedError(f"a {op} pattern of {len(pattern):,} characters")
        return text.str.contains(_like_regex(pattern, case_insensitive=op != "like"))
    if op in ("regex", "iregex"):
        portable = _portable_regex(value)
        if portable is None:
            raise UnsupportedError(f"the regular expression {value!r} (PostgreSQL's dialect)")
        return text.str.contains(("(?is)" if op == "iregex" else "(?s)") + portable)
    raise UnsupportedError(f"the operator {op} on {name}")


# What a regular expression may hold for both PostgreSQL's (ARE) and Polars' (Rust)
# engines to read it the same way: literals, escaped metacharacters, . ^ $ | ( ) and
# bracket expressions without classes or escapes, and quantifiers up to 100, one per
# atom (PostgreSQL refuses "a**"; Rust reads "a+?" lazily, as PostgreSQL does).
_REGEX_TOKEN = re.compile(
    r"(?P<escape>\\[.^$|?*+()\[\]{}\\/-])|(?P<set>\[\^?\]?[^\]\\\[]*\])"
    r"|(?P<quantifier>\{\d{1,2}(,\d{0,2})?\}|[*+?])|(?P<other>[^\\\[\]{}])"
)
_CASELESS = ("icontains", "istartswith", "iendswith", "ilike", "iregex")


def _portable_regex(pattern: str) -> str | None:
    """``pattern`` when it means the same to PostgreSQL and to Polars, else None."""
    if len(pattern) > _MAX_PATTERN or "(?" in pattern:
        return None
    position = 0
    previous = "start"  # what came last: start, open ( or |, anchor, atom, quantified, lazy
    while position < len(pattern):
        match = _REGEX_TOKEN.match(pattern, position)
        if match is None:
            return None
        position = match.end()
        text = match.group(0)
        if match.lastgroup == "quantifier":
            if previous == "atom":
                previous = "quantified"
            elif previous == "quantified" and text == "?":
                previous = "lazy"
            else:
                return None  # nothing to repeat, or a quantifier on a quantifier
        elif match.lastgroup == "other" and text in "(|":
            previous = "open"
        elif match.lastgroup == "other" and text in "^$":
            previous = "anchor"
        else:
            previous = "atom"
    try:
        pl.Series([""]).str.contains(pattern)  # compiles it: Polars may still refuse it
    except pl.exceptions.PolarsError:
        return None
    return pattern


def check_times(data: pl.DataFrame) -> None:
    """PostgreSQL's times run from 4713 BC to 294276 AD and to ±infinity; Python's (and
    so what a result can be turned into) from year 1 to 9999: decline a query over a
    time column holding anything outside that."""
    for name, dtype in data.schema.items():
        if not isinstance(dtype, (pl.Datetime, pl.Date)) or data.height == 0:
            continue
        physical = data.get_column(name).to_physical()
        check_time_bounds(name, dtype, physical.min(), physical.max())  # type: ignore[arg-type]


def check_time_bounds(name: str, dtype: Any, least: int | None, most: int | None) -> None:
    """:func:`check_times` for one column whose least and greatest physical values are known
    (a table on disk records them when it loads)."""
    bounds = pl.Series([_EARLIEST, _LATEST]).cast(
        pl.Date if isinstance(dtype, pl.Date) else pl.Datetime(dtype.time_unit)
    )
    low, high = bounds.to_physical().to_list()
    if least is not None and most is not None and (least < low or most > high):
        raise UnsupportedError(f"{name}, which holds times outside years 1 to 9999")


# Every letter beyond ASCII whose lower, upper or case-folded form holds an ASCII letter:
# ß İ ı ŉ ſ ǰ ẖ ẗ ẘ ẙ ẚ ẞ, the Kelvin sign and the ligatures ﬀ to ﬆ.
FOLDS_TO_ASCII = (
    "[\u00df\u0130\u0131\u0149\u017f\u01f0\u1e96\u1e97\u1e98\u1e99"
    "\u1e9a\u1e9e\u212a\ufb00\ufb01\ufb02\ufb03\ufb04\ufb05\ufb06]"
)
_EARLIEST = dt.datetime(1, 1, 2)
_LATEST = dt.datetime(9999, 12, 30)


def check_caseless(data: pl.DataFrame, where: Where | None) -> None:
    """Case-insensitive matching folds some letters differently in PostgreSQL (lower()
    per character, by locale) and Polars (Unicode simple folding: ſ matches s there).
    Patterns are ASCII (checked before), so only letters that fold, lower or upper to
    ASCII can disagree: decline when a column matched that way holds one of them."""

    def folds(name: str) -> bool:
        text = data.get_column(name).unique().cast(pl.String)
        return bool(text.str.contains(FOLDS_TO_ASCII).any())

    check_caseless_by(folds, where)


def check_caseless_by(folds: Callable[[str], bool], where: Where | None) -> None:
    """:func:`check_caseless`, told by ``folds`` whether a column holds such letters."""
    stack = [where]
    while stack:
        item = stack.pop()
        if isinstance(item, (And, Or)):
            stack.extend(item.items)
        elif isinstance(item, Not):
            stack.append(item.item)
        elif isinstance(item, Compare) and item.op in _CASELESS and folds(item.path[0]):
            raise UnsupportedError(
                f"{item.op} on {item.path[0]}, which holds letters that fold to ASCII"
                " differently in PostgreSQL (such as ſ, K or İ)"
            )


def _comparable(value: Any, dtype: Any, name: str) -> Any:
    """``value`` as the column compares it: a decimal column exactly, as PostgreSQL's
    numeric does (a value with more decimals than the column holds is left to it)."""
    if isinstance(value, list):
        return [_comparable(v, dtype, name) for v in value]
    if not isinstance(dtype, pl.Decimal) or isinstance(value, bool) or value is None:
        return value
    exact = decimal.Decimal(str(value)) if isinstance(value, (int, float)) else None
    if exact is None or not exact.is_finite():
        raise UnsupportedError(f"the value {value!r} of {name}")
    scale = dtype.scale or 0
    if exact.as_tuple().exponent < -scale:  # type: ignore[operator]
        raise UnsupportedError(f"{value!r}, more decimals than {name} holds")
    if exact and exact.adjusted() >= (dtype.precision or 38) - scale:
        raise UnsupportedError(f"{value!r}, more digits than {name} holds")
    return exact


def _like_regex(pattern: str, *, case_insensitive: bool) -> str:
    out = ["(?is)^" if case_insensitive else "(?s)^"]
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            out.append(re.escape(nxt))
        elif ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    out.append("$")
    return "".join(out)


# --------------------------------------------------------------- aggregate


def bucket(times: pl.Series, unit: str, timezone: str) -> pl.Series:
    """Each time's bucket: the first day of its day, week, month… in ``timezone``.

    Truncating 2M timestamps to months costs Polars ~90 ms; their local dates cost
    ~12 ms, and the bucket of every date between the first and the last, looked up
    by position, ~15 ms more. A range too long for a lookup table is truncated.
    """
    dtype = times.dtype
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None and dtype.time_zone != timezone:
            times = times.dt.convert_time_zone(timezone)
        days = times.dt.date()
    else:
        days = times
    if unit == "day":
        return days
    position = days.to_physical()
    low, high = position.min(), position.max()
    if low is None or high - low > _LOOKUP_DAYS:  # type: ignore[operator]
        return days.dt.truncate(POLARS_TRUNCATE[unit])
    calendar = pl.int_range(low, high + 1, eager=True, dtype=pl.Int32).cast(pl.Date)  # type: ignore[operator]
    return calendar.dt.truncate(POLARS_TRUNCATE[unit]).gather(position - low)


def bucket_expr(name: str, dtype: Any, unit: str, timezone: str) -> pl.Expr:
    """:func:`bucket` as an expression, for a lazy (streaming) query: the same buckets."""
    col = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None and dtype.time_zone != timezone:
            col = col.dt.convert_time_zone(timezone)
        col = col.dt.date()
    return col if unit == "day" else col.dt.truncate(POLARS_TRUNCATE[unit])


def _aggregate_expr(agg: Aggregate, dtypes: dict[str, Any]) -> pl.Expr:
    if agg.function == "count":
        return pl.len().cast(pl.Int64).alias(agg.name)
    assert agg.field is not None
    col = pl.col(agg.field)
    if agg.function == "count_distinct":
        return col.drop_nulls().n_unique().cast(pl.Int64).alias(agg.name)
    num = col.cast(pl.Float64)
    # Exact decimals (``exact_decimals``) are summed, compared and kept exact,
    # then rounded once to float64, as PostgreSQL's numeric result is.
    exact = col if isinstance(dtypes.get(agg.field), pl.Decimal) else num
    if agg.percentile is not None:
        expr = num.quantile(agg.percentile, interpolation="linear")
    elif agg.function == "sum":
        # SQL: the sum of no value is NULL, where Polars says 0.
        expr = pl.when(col.count() > 0).then(exact.sum())
    elif agg.function == "avg" and exact is col:
        # The exact sum divided with 18 decimals, then rounded once, as PostgreSQL's
        # numeric avg is: the same digits in every run, whatever the order of rows.
        # (A sum with more than 20 integer digits does not fit: PostgreSQL answers.)
        quotient = exact.sum().cast(pl.Decimal(38, 18)) / col.count()
        expr = pl.when(col.count() > 0).then(quotient)
    elif agg.function == "avg":
        expr = num.mean()
    elif agg.function == "min":
        expr = exact.min()
    elif agg.function == "max":
        expr = exact.max()
    elif agg.function == "stddev":
        expr = pl.when(col.count() > 1).then(num.std(ddof=1))
    else:
        expr = pl.when(col.count() > 1).then(num.var(ddof=1))
    return expr.cast(pl.Float64).alias(agg.name)


def _sort(
    frame: pl.DataFrame,
    keys: list[tuple[str, OrderItem | None]],
    *,
    computed: frozenset[str] = frozenset(),
) -> pl.DataFrame:
    if not keys or frame.height == 0:
        return frame

    def key(name: str) -> pl.Expr:
        # Floats accumulated in another order (sums, averages, variances) carry float
        # rounding that PostgreSQL's arithmetic does not: equal values must tie, as they
        # do there. A min, max or percentile is the same float on both planes: rounding
        # it would make ties PostgreSQL does not make.
        if name in computed and frame.schema[name] == pl.Float64:
            return pl.col(name).round_sig_figs(12)
        return pl.col(name)

    return frame.sort(
        [key(k) for k, _ in keys],
        descending=[bool(o and o.descending) for _, o in keys],
        nulls_last=[not (o and o.nulls_first) for _, o in keys],
        maintain_order=True,
    )


def _page(frame: pl.DataFrame, limit: int | None, offset: int | None) -> pl.DataFrame:
    start = offset or 0
    return frame.slice(start, limit) if (limit is not None or start) else frame


def run_aggregate(
    data: pl.DataFrame, query: AggregateQuery, fact: FactTable, *, timezone: str = "UTC"
) -> pl.DataFrame:
    """The output of an aggregate query over the loaded columns ``data``."""
    dtypes = dict(data.schema)
    check_caseless(data, query.where)
    check_times(data)
    lf = data.lazy()
    if query.where is not None:
        lf = lf.filter(where_expr(query.where, dtypes, timezone))
    bucketed = [k for k in query.group_keys if k.source == "bucket"]
    if bucketed:
        # Buckets are computed on the (filtered) rows as Series: see bucket().
        frame = lf.collect()
        frame = frame.with_columns(
            [
                bucket(frame[k.column or ""], k.unit or "day", timezone).alias(k.name)
                for k in bucketed
            ]
        )
        lf = frame.lazy()
    # Lazy: Polars runs the conditional aggregates (SQL's NULL sums) 3x faster so.
    return finish_aggregate(_grouped(lf, query, dtypes).collect(), query, fact, dtypes)


def run_aggregate_lazy(
    lf: pl.LazyFrame,
    query: AggregateQuery,
    fact: FactTable,
    *,
    timezone: str = "UTC",
    passes: int = 1,
) -> pl.DataFrame:
    """:func:`run_aggregate` over columns that stay on disk: filtered, bucketed and grouped
    by Polars' streaming engine (projection and predicate pushed into the scan), so only
    the groups are ever in memory. The caller has run the checks from what it knows of
    the columns (:func:`check_time_bounds`, :func:`check_caseless_by`).

    A percentile needs every value of its group at once. With ``passes`` > 1 the groups
    are computed in that many scans, each over the groups whose keys hash to it, so at
    most about one pass's share of the values is in memory; the groups are then joined
    (no group is split, so each is exact)."""
    dtypes = dict(lf.collect_schema())
    if query.where is not None:
        lf = lf.filter(where_expr(query.where, dtypes, timezone))
    bucketed = [k for k in query.group_keys if k.source == "bucket"]
    if bucketed:
        lf = lf.with_columns(
            [
                bucket_expr(
                    k.column or "", dtypes[k.column or ""], k.unit or "day", timezone
                ).alias(k.name)
                for k in bucketed
            ]
        )
    if passes <= 1 or not query.group_keys:
        return finish_aggregate(
            _grouped(lf, query, dtypes).collect(engine="streaming"), query, fact, dtypes
        )
    # Each pass's rows are gathered by the streaming engine first, then grouped in
    # memory: a percentile in the streaming engine would gather every row of the scan.
    share = pl.struct([k.name for k in query.group_keys]).hash(seed=0) % passes
    parts = [
        _grouped(lf.filter(share == i).collect(engine="streaming").lazy(), query, dtypes).collect()
        for i in range(passes)
    ]
    return finish_aggregate(pl.concat(parts, how="vertical"), query, fact, dtypes)


def _grouped(lf: pl.LazyFrame, query: AggregateQuery, dtypes: dict[str, Any]) -> pl.LazyFrame:
    aggs = [_aggregate_expr(a, dtypes) for a in query.aggregates]
    if query.group_keys:
        return lf.group_by([k.name for k in query.group_keys]).agg(aggs)
    return lf.select(aggs)


def _exact(dtype: Any) -> bool:
    return isinstance(dtype, pl.Decimal) or (dtype is not None and dtype.is_integer())


def finish_aggregate(
    out: pl.DataFrame, query: AggregateQuery, fact: FactTable, dtypes: dict[str, Any]
) -> pl.DataFrame:
    """Groups to the query's output: having, order, page, the output's names and dtypes
    (``dtypes``: the input columns')."""
    if query.having is not None:
        out = out.filter(where_expr(query.having, dict(out.schema)))
    order: list[tuple[str, OrderItem | None]] = [(o.path[0], o) for o in query.order]
    order += [(k.name, None) for k in query.group_keys]
    # A sum of exact decimals or integers is exact on both planes: it sorts as it is.
    accumulated = frozenset(
        a.name
        for a in query.aggregates
        if a.function in ("sum", "avg", "stddev", "variance")
        and a.percentile is None
        and not (a.function == "sum" and _exact(dtypes.get(a.field or "")))
    )
    out = _page(_sort(out, order, computed=accumulated), query.limit, query.offset)
    schema = output_schema(query, fact)
    return out.select(
        [pl.col(source).alias(name).cast(schema[name]) for name, source in query.columns]
    )


# ------------------------------------------------------------------ window


def run_window(
    data: pl.DataFrame, query: WindowQuery, fact: FactTable, *, timezone: str = "UTC"
) -> pl.DataFrame:
    """The output of a window query over the loaded columns ``data``."""
    dtypes = dict(data.schema)
    check_caseless(data, query.where)
    check_times(data)
    frame = data
    if query.where is not None:
        frame = frame.filter(where_expr(query.where, dtypes, timezone))
    frame = frame.with_row_index("__row")
    results: dict[str, pl.Series] = {}
    for out in query.outputs:
        if isinstance(out, WindowFunction):
            results[out.name] = _window_function(frame, out, fact, timezone)
    frame = frame.with_columns([s.alias(name) for name, s in results.items()])
    order: list[tuple[str, OrderItem | None]] = [(o.path[0], o) for o in query.order]
    order.append((fact.id_column, None) if fact.id_column else ("__row", None))
    frame = _page(_sort(frame, order), query.limit, query.offset)
    schema = output_schema(query, fact)
    columns = []
    for o in query.outputs:
        source = o.column if isinstance(o, WindowColumn) else o.name
        columns.append(pl.col(source).alias(o.name).cast(schema[o.name]))
    return frame.select(columns)


def _window_function(
    frame: pl.DataFrame, fn: WindowFunction, fact: FactTable, timezone: str = "UTC"
) -> pl.Series:
    """The function's value for every row of ``frame``, in ``frame``'s order."""
    part = list(fn.partition_by)
    keys: list[tuple[str, OrderItem | None]] = [(p, None) for p in part]
    keys += [(o.path[0], o) for o in fn.order]
    row_order = fn.function in ROW_ORDER_FUNCTIONS
    if row_order and fact.id_column:
        keys.append((fact.id_column, None))
    keys.append(("__row", None))
    ordered = _sort(frame, keys).with_row_index("__i")
    over = part or None

    def by_partition(expr: pl.Expr) -> pl.Expr:
        return expr.over(over) if over else expr

    i = pl.col("__i").cast(pl.Int64)
    start = by_partition(i.min())
    n = by_partition(pl.len().cast(pl.Int64))
    number = i - start + 1
    name = fn.function
    if name == "row_number":
        value: pl.Expr = number
    elif name in ("rank", "dense_rank", "percent_rank", "cume_dist"):
        value = _rank(name, fn, i, start, n, by_partition)
    elif name == "ntile":
        value = _ntile(number, n, fn.buckets or 1)
    elif name in ("lag", "lead"):
        assert fn.field is not None
        shift = (fn.offset if fn.offset is not None else 1) * (1 if name == "lag" else -1)
        col = pl.col(fn.field)
        dtype = frame.schema[fn.field]
        if isinstance(dtype, (pl.Enum, pl.Categorical)):
            col, dtype = col.cast(pl.String), pl.String  # a default may be no category
        default = (
            pl.lit(_value(fn.default, dtype, timezone), dtype=dtype)
            if fn.default is not None
            else None
        )
        shifted = by_partition(col.shift(shift))
        if default is not None:
            # The default fills positions outside the partition only, not NULL values.
            position = number - 1 - shift
            outside = (position < 0) | (position >= n)
            shifted = pl.when(outside).then(default).otherwise(shifted)
        value = shifted
    else:
        return _back_frame(_framed(ordered, fn, over))
    computed = ordered.select(pl.col("__row"), value.alias("__value"))
    return _back_frame(computed)


def _rank(
    name: str,
    fn: WindowFunction,
    i: pl.Expr,
    start: pl.Expr,
    n: pl.Expr,
    by_partition: Callable[[pl.Expr], pl.Expr],
) -> pl.Expr:
    keys = [pl.col(o.path[0]) for o in fn.order]
    first = i == start
    changed = first
    for k in keys:
        changed = changed | by_partition(k.ne_missing(k.shift(1)))
    peer_start = pl.when(changed).then(i).forward_fill()
    rank = peer_start - start + 1
    if name == "rank":
        return rank
    if name == "dense_rank":
        return by_partition(changed.cast(pl.Int64).cum_sum())
    if name == "percent_rank":
        return pl.when(n > 1).then((rank - 1).cast(pl.Float64) / (n - 1)).otherwise(0.0)
    last = by_partition(changed.shift(-1).fill_null(True))
    peer_end = pl.when(last).then(i).backward_fill()
    return (peer_end - start + 1).cast(pl.Float64) / n


def _ntile(number: pl.Expr, n: pl.Expr, buckets: int) -> pl.Expr:
    size = n // buckets
    extra = n % buckets
    big = extra * (size + 1)
    return (
        pl.when(size == 0)
        .then(number)
        .when(number <= big)
        .then((number - 1) // (size + 1) + 1)
        .otherwise(extra + (number - big - 1) // pl.max_horizontal(size, 1) + 1)
    )


def _framed(ordered: pl.DataFrame, fn: WindowFunction, over: list[str] | None) -> pl.DataFrame:
    """Frame aggregates (running_*, first/last_value) by a rolling window over row positions."""
    kind = fn.function
    if not fn.order:
        if fn.preceding is not None or fn.following is not None:
            raise UnsupportedError(f"{kind} with a frame but no orderBy")
        # No order: the frame is the whole partition.
        expr = _frame_agg(kind, fn.field)
        part = over or []
        return ordered.select(pl.col("__row"), (expr.over(part) if part else expr).alias("__value"))
    size = ordered.height + 1
    whole = kind in ("first_value", "last_value") and fn.preceding is None and fn.following is None
    before = fn.preceding if fn.preceding is not None else size
    after = fn.following if fn.following is not None else (size if whole else 0)
    rolled = ordered.rolling(
        index_column="__i",
        period=f"{before + after + 1}i",
        offset=f"{-before - 1}i",
        group_by=over,
    ).agg(_frame_agg(kind, fn.field).alias("__value"), pl.col("__row").last().alias("__own"))
    # rolling() yields one row per input row, keyed by its index.
    return rolled.join(ordered.select("__i", "__row"), on="__i").select(
        pl.col("__row"), pl.col("__value")
    )


def _frame_agg(kind: str, field: str | None) -> pl.Expr:
    if kind == "running_count":
        return pl.col(field).count().cast(pl.Int64) if field else pl.len().cast(pl.Int64)
    assert field is not None
    col = pl.col(field)
    if kind == "first_value":
        return col.first()
    if kind == "last_value":
        return col.last()
    num = col.cast(pl.Float64)
    if kind == "running_sum":
        return pl.when(col.count() > 0).then(num.sum())
    return {"running_avg": num.mean(), "running_min": num.min(), "running_max": num.max()}[kind]


def _back_frame(computed: pl.DataFrame) -> pl.Series:
    """Values keyed by __row, put back in the order of the frame they came from."""
    return computed.sort("__row")["__value"]
