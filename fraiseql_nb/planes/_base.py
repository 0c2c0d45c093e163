"""What every data plane provides."""

from __future__ import annotations

from typing import Any, Protocol

from fraiseql_nb.result import Result

__all__ = ["Plane"]


class Plane(Protocol):
    """A way to run queries: I/O only; it takes IR and returns a Result."""

    name: str  # "wire" | "arrow" | "postgres"

    def execute(self, query: Any, target: Any) -> Result:
        """Run ``query`` (IR) on ``target`` (the entity or fact table it names)."""
        ...
