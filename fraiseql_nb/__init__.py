"""fraiseql-nb: explore FraiseQL-style PostgreSQL databases from Jupyter.

Public names are re-exported here; everything else is internal.
"""

from fraiseql_nb.config import Config
from fraiseql_nb.connecting import connect
from fraiseql_nb.errors import BackendError, ConfigError, FraiseQLError, QueryError, SchemaError
from fraiseql_nb.ops.telemetry import QueryMetrics
from fraiseql_nb.result import Result, Results
from fraiseql_nb.schema import Schema, to_sdl
from fraiseql_nb.session import Session

__version__ = "0.1.0"


def _display_in_ipython() -> None:
    """In a running IPython, results and schemas show as the notebook shows them, with
    or without ``%load_ext``: the notebook layer registers IPython formatters (the core
    itself knows no front end)."""
    import sys

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None and hasattr(shell, "display_formatter"):
        from fraiseql_nb.notebook.display import register_formatters

        register_formatters(shell)


_display_in_ipython()


def load_ipython_extension(shell: object) -> None:
    """``%load_ext fraiseql_nb``: the ``%fraiseql`` magics."""
    from fraiseql_nb.notebook import load_ipython_extension as load

    load(shell)


def unload_ipython_extension(shell: object) -> None:
    from fraiseql_nb.notebook import unload_ipython_extension as unload

    unload(shell)


__all__ = [
    "BackendError",
    "Config",
    "ConfigError",
    "FraiseQLError",
    "QueryError",
    "QueryMetrics",
    "Result",
    "Results",
    "Schema",
    "SchemaError",
    "Session",
    "__version__",
    "connect",
    "load_ipython_extension",
    "to_sdl",
    "unload_ipython_extension",
]
