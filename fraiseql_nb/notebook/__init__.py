"""The notebook layer: magics, result display, charts, completion, progress, the explorer.

``%load_ext fraiseql_nb`` calls :func:`load_ipython_extension`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(shell: Any) -> None:
    """Register the magics, their ``%config FraiseQL`` options, the short error display
    and how results and schemas are shown."""
    from fraiseql_nb.errors import FraiseQLError
    from fraiseql_nb.notebook.display import register_formatters
    from fraiseql_nb.notebook.magics import FraiseQL, short_error

    register_formatters(shell)
    magics = FraiseQL(shell=shell)
    shell.register_magics(magics)
    if magics not in shell.configurables:
        shell.configurables.append(magics)
    shell.set_custom_exc((FraiseQLError,), short_error)
    shell._fraiseql_magics = magics
    completer = getattr(shell, "Completer", None)
    if completer is not None:
        from fraiseql_nb.notebook.completion import matcher
        from fraiseql_nb.schema.graphql import graphql_schema

        def schema_of() -> Any:
            session = magics.session
            if session is None or session.closed:
                return None
            return graphql_schema(session.schema)

        shell._fraiseql_matcher = matcher(schema_of)
        completer.custom_matchers.append(shell._fraiseql_matcher)


def unload_ipython_extension(shell: Any) -> None:
    """Close the magic's session and restore the usual error display."""
    magics = getattr(shell, "_fraiseql_magics", None)
    if magics is not None:
        if magics.session is not None:
            magics.session.close()
        if magics in shell.configurables:
            shell.configurables.remove(magics)
        del shell._fraiseql_magics
    found = getattr(shell, "_fraiseql_matcher", None)
    completer = getattr(shell, "Completer", None)
    if found is not None and completer is not None and found in completer.custom_matchers:
        completer.custom_matchers.remove(found)
        del shell._fraiseql_matcher
    shell.set_custom_exc((), None)
