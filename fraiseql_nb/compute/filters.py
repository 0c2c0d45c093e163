"""WHERE as Polars expressions, with SQL's three-valued logic, and the checks that
decline what Polars would read differently from PostgreSQL (caseless matching beyond
ASCII, times beyond Polars' range, regular expressions of another dialect). Pure."""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from fraiseql_nb.errors import UnsupportedError
from fraiseql_nb.query.ir import (
    And,
    Compare,
    Not,
    Or,
    Where,
)
from fraiseql_nb.query.values import TYPED_OPS
from fraiseql_nb.sql.where import escape_like

__all__ = [
    "FOLDS_TO_ASCII",
    "check_caseless",
    "check_caseless_by",
    "check_time_bounds",
    "check_times",
    "literal_value",
    "where_expr",
]


_MAX_PATTERN = 1_000  # longer patterns are left to PostgreSQL


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


def literal_value(value: Any, dtype: Any, timezone: str) -> Any:
    if isinstance(value, list):
        return [literal_value(v, dtype, timezone) for v in value]
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
            value = literal_value(value, dtype, timezone)
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
