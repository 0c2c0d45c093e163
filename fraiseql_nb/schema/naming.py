"""GraphQL names from database names: PascalCase types, plural list queries, safe field names."""

from __future__ import annotations

import re

__all__ = ["graphql_name", "pascal", "plural", "singular", "unique"]

_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")


def graphql_name(key: str) -> str | None:
    """A GraphQL field name for a JSON key or column, or None when none can be made."""
    if _NAME.match(key) and not key.startswith("__"):
        return key
    name = re.sub(r"[^_0-9A-Za-z]", "_", key).strip("_")
    if not name:
        return None
    if name[0].isdigit():
        name = f"_{name}"
    return name if _NAME.match(name) and not name.startswith("__") else None


def pascal(name: str) -> str:
    """``order_item`` -> ``OrderItem``."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\W]+", name) if part)


def plural(word: str) -> str:
    """English plural of the last word: user -> users, category -> categories, box -> boxes."""
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    if re.search(r"(s|x|z|ch|sh)$", word):
        return word + "es"
    return word + "s"


def singular(word: str) -> str:
    """Best-effort inverse of :func:`plural`, for naming list item types."""
    if word.endswith("ies") and len(word) > 3:
        return word[:-3] + "y"
    if re.search(r"(ss|x|z|ch|sh)es$", word):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 1:
        return word[:-1]
    return word


def unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name2``, ``name3``… whichever is not in ``taken``; records the choice."""
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}{n}", n + 1
    taken.add(candidate)
    return candidate
