"""The notebook layer: magics, result display, progress, the explorer.

``%load_ext fraiseql_nb`` calls :func:`load_ipython_extension`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(shell: Any) -> None:
    """Register the magics, their ``%config FraiseQL`` options and the short error display."""
    from fraiseql_nb.errors import FraiseQLError
    from fraiseql_nb.notebook.magics import FraiseQL, short_error

    magics = FraiseQL(shell=shell)
    shell.register_magics(magics)
    if magics not in shell.configurables:
        shell.configurables.append(magics)
    shell.set_custom_exc((FraiseQLError,), short_error)
    shell._fraiseql_magics = magics


def unload_ipython_extension(shell: Any) -> None:
    """Close the magic's session and restore the usual error display."""
    magics = getattr(shell, "_fraiseql_magics", None)
    if magics is not None:
        if magics.session is not None:
            magics.session.close()
        if magics in shell.configurables:
            shell.configurables.remove(magics)
        del shell._fraiseql_magics
    shell.set_custom_exc((), None)
