"""Progress of long fetches: the planes say how far they are; a listener shows it.

The planes call :func:`report` after each batch they receive (rows and bytes
so far). Nothing listens by default, so a report costs one context-variable
lookup. The notebook layer installs a listener with :func:`listening` for the
duration of a cell and decides when (after about a second) and how (a widget
or a line of text) to show it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

__all__ = ["Listener", "listening", "report"]

# A listener gets (what, rows so far, bytes so far); what is "fetch" or "load".
Listener = Callable[[str, int, int], None]

_listener: ContextVar[Listener | None] = ContextVar("fraiseql_progress", default=None)


def report(what: str, rows: int, nbytes: int) -> None:
    """Tell the current listener, if any, how far a fetch or load has come."""
    listener = _listener.get()
    if listener is not None:
        listener(what, rows, nbytes)


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Send the reports made inside this block to ``listener``."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)
