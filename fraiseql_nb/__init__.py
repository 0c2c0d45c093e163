"""fraiseql-nb: explore FraiseQL-style PostgreSQL databases from Jupyter.

Public names are re-exported here; everything else is internal.
"""

from fraiseql_nb.errors import BackendError, ConfigError, FraiseQLError, QueryError, SchemaError
from fraiseql_nb.schema import Schema
from fraiseql_nb.session import Session, connect

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "ConfigError",
    "FraiseQLError",
    "QueryError",
    "Schema",
    "SchemaError",
    "Session",
    "__version__",
    "connect",
]
