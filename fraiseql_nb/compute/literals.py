"""Values and patterns as Polars compares them, the same as PostgreSQL does. Pure.

A value is turned into the column's own type (a time with its zone, a decimal
exactly); a LIKE pattern into a regular expression; a POSIX regular expression
is kept only when both engines read it alike. What cannot be made the same
raises :class:`~fraiseql_nb.errors.UnsupportedError`: PostgreSQL answers.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from fraiseql_nb.errors import UnsupportedError

__all__ = ["MAX_PATTERN", "comparable", "like_regex", "literal_value", "portable_regex"]

MAX_PATTERN = 1_000  # longer patterns are left to PostgreSQL


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


# What a regular expression may hold for both PostgreSQL's (ARE) and Polars' (Rust)
# engines to read it the same way: literals, escaped metacharacters, . ^ $ | ( ) and
# bracket expressions without classes or escapes, and quantifiers up to 100, one per
# atom (PostgreSQL refuses "a**"; Rust reads "a+?" lazily, as PostgreSQL does).
_REGEX_TOKEN = re.compile(
    r"(?P<escape>\\[.^$|?*+()\[\]{}\\/-])|(?P<set>\[\^?\]?[^\]\\\[]*\])"
    r"|(?P<quantifier>\{\d{1,2}(,\d{0,2})?\}|[*+?])|(?P<other>[^\\\[\]{}])"
)


def portable_regex(pattern: str) -> str | None:
    """``pattern`` when it means the same to PostgreSQL and to Polars, else None."""
    if len(pattern) > MAX_PATTERN or "(?" in pattern:
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


def comparable(value: Any, dtype: Any, name: str) -> Any:
    """``value`` as the column compares it: a decimal column exactly, as PostgreSQL's
    numeric does (a value with more decimals than the column holds is left to it)."""
    if isinstance(value, list):
        return [comparable(v, dtype, name) for v in value]
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


def like_regex(pattern: str, *, case_insensitive: bool) -> str:
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
