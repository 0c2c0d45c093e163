"""A password typed into ``%fraiseql connect`` taken out of IPython's input history: in
memory, in the namespace's ``_i`` variables, and in the history file on disk."""

from __future__ import annotations

import re
import sqlite3
import sys
from typing import Any

from fraiseql_nb.pg.conninfo import redact

__all__ = ["scrub_history"]


def scrub_history(shell: Any, secrets: tuple[str, ...], line: str) -> None:
    """Take a typed password out of the input history, in memory and on disk."""
    if not secrets and redact(line) == line:
        return  # nothing that looks like a password
    hm = getattr(shell, "history_manager", None)
    if hm is None:
        return
    hide = lambda text: redact(text, secrets) if isinstance(text, str) else text  # noqa: E731
    for history in (hm.input_hist_parsed, hm.input_hist_raw):
        history[:] = [hide(t) for t in history]
    for attr in ("_i", "_ii", "_iii", "_i00"):
        if isinstance(getattr(hm, attr, None), str):
            setattr(hm, attr, hide(getattr(hm, attr)))
    ns = shell.user_ns
    for key in [k for k in ns if re.fullmatch(r"_i\d*|_ii|_iii", k)]:
        if isinstance(ns[key], str):
            ns[key] = hide(ns[key])
    with hm.db_input_cache_lock:
        hm.db_input_cache[:] = [(n, hide(p), hide(r)) for n, p, r in hm.db_input_cache]
    db = getattr(hm, "db", None)
    if db is None or not getattr(hm, "enabled", True):
        return
    try:
        with db:
            rows = db.execute(
                "SELECT line, source, source_raw FROM history WHERE session = ?",
                (hm.session_number,),
            ).fetchall()
            for number, source, raw in rows:
                if hide(source) != source or hide(raw) != raw:
                    db.execute(
                        "UPDATE history SET source = ?, source_raw = ?"
                        " WHERE session = ? AND line = ?",
                        (hide(source), hide(raw), hm.session_number, number),
                    )
    except sqlite3.Error as exc:
        # Say so: the password stays in the history file until the user removes it.
        print(
            "fraiseql: warning: the password typed in this cell could not be removed from"
            f" IPython's history file ({exc}); keep DSNs in a variable and use"
            " `%fraiseql connect $dsn`, and clear the history (`ipython history trim`)",
            file=sys.stderr,
        )
