"""SQL laid out to read: each clause of the outer statement on a line of its own. Pure.

Only whitespace between tokens changes, and never inside a string literal or
a quoted name, so what is shown still runs exactly as what was sent.
"""

from __future__ import annotations

import re

__all__ = ["format_sql"]

# Clauses that start a line; longest first so "GROUP BY" wins over a bare word.
_CLAUSES = (
    "UNION ALL",
    "GROUP BY",
    "ORDER BY",
    "LEFT JOIN",
    "CROSS JOIN",
    "SELECT",
    "FROM",
    "WHERE",
    "HAVING",
    "WINDOW",
    "LIMIT",
    "OFFSET",
    "JOIN",
    "UNION",
)
_TOKEN = re.compile(
    r"'(?:[^']|'')*'"  # a string literal ('' inside)
    r'|"(?:[^"]|"")*"'  # a quoted name
    r"|\$(?P<tag>\w*)\$.*?\$(?P=tag)\$"  # a dollar-quoted string
    r"|[()]"
    r"|\s+"
    r"|[^\s()'\"$]+|\$",
    re.S,
)
_WORD = re.compile(r"[A-Za-z_]+")


def format_sql(text: str, *, depth_limit: int = 1) -> str:
    """``text`` with a line break before each clause at nesting depth < ``depth_limit``
    (1: the outer statement only) and inside the first level of a ``FROM (…)``."""
    out: list[str] = []
    depth = 0
    tokens = [m.group(0) for m in _TOKEN.finditer(text)]
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "(":
            depth += 1
        elif token == ")":
            depth = max(depth - 1, 0)
        if out and depth <= depth_limit and _clause_at(tokens, i) is not None:
            while out and out[-1].isspace():
                out.pop()
            out.append("\n" + "  " * depth)
        out.append(token)
        i += 1
    return "".join(out).strip()


def _clause_at(tokens: list[str], i: int) -> str | None:
    """The clause keyword starting at token ``i``, if one does."""
    if not _WORD.fullmatch(tokens[i]):
        return None
    words = [tokens[i].upper()]
    if i + 2 < len(tokens) and tokens[i + 1].isspace() and _WORD.fullmatch(tokens[i + 2]):
        words.append(f"{words[0]} {tokens[i + 2].upper()}")
    return next((w for w in reversed(words) if w in _CLAUSES), None)
