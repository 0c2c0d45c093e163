"""Progress of a long load or fetch, shown after about a second.

A :class:`ProgressView` listens to :mod:`fraiseql_nb.ops.progress` reports for
one cell. Quick queries show nothing; one that runs past ``after_s`` shows
rows and batches so far and the elapsed time: an ipywidgets label in a
Jupyter kernel, a line of text (rewritten in place) on stderr elsewhere.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from fraiseql_nb.notebook.display import human_bytes

__all__ = ["ProgressView"]

_VERB = {"load": "loading", "fetch": "fetching"}


class ProgressView:
    """Shows what a running query has received so far, once it runs long enough."""

    def __init__(
        self,
        label: str,
        *,
        widget: bool,
        after_s: float = 1.0,
        every_s: float = 0.25,
        stream: TextIO | None = None,
    ) -> None:
        self.label = label
        self.widget = widget
        self.after_s = after_s
        self.every_s = every_s
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.batches = 0
        self.shown = 0  # updates shown
        self.last_text = ""
        self._last = 0.0
        self._view: Any = None
        self.parts = ""  # "3/8 partitions", for a load by partition

    def __call__(self, what: str, rows: int, nbytes: int) -> None:
        if what == "partitions":  # rows: partitions done, nbytes: partitions in all
            self.parts = f" · {rows:,}/{nbytes:,} partitions"
            return
        self.batches += 1
        now = time.monotonic()
        elapsed = now - self.started
        if elapsed < self.after_s or now - self._last < self.every_s:
            return
        self._last = now
        self.last_text = (
            f"{self.label}: {_VERB.get(what, what)} {rows:,} rows · {self.batches:,} batches"
            f" · {human_bytes(nbytes)}{self.parts} · {elapsed:.1f} s"
        )
        self._show(self.last_text)

    def _show(self, line: str) -> None:
        self.shown += 1
        if self.widget:
            if self._view is None:
                import ipywidgets as w
                from IPython.display import display

                self._view = w.HTML()
                display(self._view)
            self._view.value = f"<code>{line}</code>"
        else:
            self.stream.write("\r" + line)
            self.stream.flush()

    def close(self, outcome: str = "done") -> None:
        """End the display: the widget goes away; the text line gets its outcome."""
        if not self.shown:
            return
        if self._view is not None:
            self._view.close()
            self._view = None
        else:
            elapsed = time.monotonic() - self.started
            line = f"{self.label}: {outcome} after {elapsed:.1f} s"
            self.stream.write("\r" + line.ljust(len(self.last_text)) + "\n")
            self.stream.flush()
