"""fraiseql-nb: explore FraiseQL-style PostgreSQL databases from Jupyter.

Public names are re-exported here; everything else is internal.
"""

from fraiseql_nb.config import Config
from fraiseql_nb.errors import BackendError, ConfigError, FraiseQLError, QueryError, SchemaError
from fraiseql_nb.result import Result, Results
from fraiseql_nb.schema import Schema
from fraiseql_nb.session import Session, connect
from fraiseql_nb.telemetry import QueryMetrics

__version__ = "0.1.0"

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
]
