"""Cleanup that an interrupt cannot cut short: each step runs to its end.

One SIGINT can raise KeyboardInterrupt twice (Polars' own handler aborts its
work, then Python's raises), the second inside the first one's cleanup: a
connection not given back, or a signal descriptor not restored, would then
be lost. :func:`shielded` runs every step again until it completes and
raises the interrupt afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["shielded"]


def shielded(*steps: Callable[[], Any]) -> None:
    """Run each step to its end, even when an interrupt lands in one; re-raise it after."""
    interrupted: KeyboardInterrupt | None = None
    for step in steps:
        while True:
            try:
                step()
                break
            except KeyboardInterrupt as exc:
                interrupted = exc
    if interrupted is not None:
        raise interrupted
