"""GraphQL names from database names: PascalCase types, plural list queries, safe field names."""

from __future__ import annotations

import re

__all__ = ["entity_names", "graphql_name", "pascal", "plural", "singular", "unique"]

_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")
# Words whose plural is not the rule's, both ways; and words that have no plural.
# A table rather than `inflect`: measured on the 178 relation names of FraiseQL's
# own examples, inflect named 10 worse (``v_after_data`` -> ``AfterDatum``,
# ``todo`` -> ``todoes``) and none better, and it reads singulars in -s as
# plurals (``bus`` -> ``bu``); the words it got right that we lacked are below.
_IRREGULAR = {
    "person": "people",
    "child": "children",
    "man": "men",
    "woman": "women",
    "mouse": "mice",
    "goose": "geese",
    "tooth": "teeth",
    "foot": "feet",
    "leaf": "leaves",
    "life": "lives",
    "wife": "wives",
    "knife": "knives",
    "half": "halves",
    "shelf": "shelves",
    "criterion": "criteria",
    "analysis": "analyses",
    "axis": "axes",
    "index": "indices",
    "matrix": "matrices",
    "vertex": "vertices",
    "quiz": "quizzes",
    "status": "statuses",
    "bus": "buses",
    "bonus": "bonuses",
    "campus": "campuses",
    "virus": "viruses",
    "alias": "aliases",
    "atlas": "atlases",
    "bias": "biases",
    "canvas": "canvases",
    "census": "censuses",
    "lens": "lenses",
    "movie": "movies",
    "cookie": "cookies",
    "zombie": "zombies",
    "calorie": "calories",
    "rookie": "rookies",
    "cache": "caches",
    "niche": "niches",
    "headache": "headaches",
    "avalanche": "avalanches",
    "hero": "heroes",
    "potato": "potatoes",
    "tomato": "tomatoes",
    "echo": "echoes",
    "veto": "vetoes",
    "wolf": "wolves",
    "calf": "calves",
    "thief": "thieves",
    "loaf": "loaves",
    "ox": "oxen",
    "phenomenon": "phenomena",
    "todo": "todos",
}
_SINGULAR = {v: k for k, v in _IRREGULAR.items()}
_UNCOUNTABLE = {
    "data", "metadata", "news", "series", "species", "information", "equipment", "media",
    "feedback", "software", "hardware", "staff", "sheep", "fish", "deer", "moose",
}  # fmt: skip


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


def _split(word: str) -> tuple[str, str]:
    """``order_item`` -> ("order_", "item"): inflection changes the last word only."""
    head, _, last = word.rpartition("_")
    return (head + "_" if head else ""), last


def plural(word: str) -> str:
    """English plural of the last word: user -> users, category -> categories, box -> boxes."""
    head, last = _split(word)
    if last.lower() in _UNCOUNTABLE or last.lower() in _SINGULAR:
        return word
    if last.lower() in _IRREGULAR:
        return head + _IRREGULAR[last.lower()]
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    if re.search(r"(s|x|z|ch|sh)$", word):
        return word + "es"
    return word + "s"


def singular(word: str) -> str:
    """Best-effort inverse of :func:`plural`, for naming list item types."""
    head, last = _split(word)
    if last.lower() in _UNCOUNTABLE or last.lower() in _IRREGULAR:
        return word
    if last.lower() in _SINGULAR:
        return head + _SINGULAR[last.lower()]
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


def is_plural(word: str) -> bool:
    """Whether ``word`` reads as a plural already (``authors``, ``categories``, ``people``)."""
    one = singular(word)
    return one != word and plural(one) == word


def entity_names(base: str) -> tuple[str, str, str]:
    """Type, list query and single query for a view's base name, singular or plural.

    ``user`` and ``users`` both give ("User", "users", "user"); a word without
    a plural keeps it for the list and names the single query ``<word>_by_id``.
    """
    one = singular(base) if is_plural(base) else base
    many = plural(one)
    return pascal(one), many, (one if many != one else f"{one}_by_id")
