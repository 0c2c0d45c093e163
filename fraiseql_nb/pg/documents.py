"""Reading JSON documents from PostgreSQL, whatever numbers they hold.

jsonb keeps numbers as ``numeric``: exact, and as large as one likes
(``1e400``). orjson, the fast path, refuses a number beyond float64; the
standard library reads it (as infinity, or as an exact int). One document
like that must not stop a schema read or a stream.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["loads"]


def loads(text: str | bytes) -> Any:
    """A document's value: orjson's, or the standard library's where orjson refuses."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
