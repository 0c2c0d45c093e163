"""Query IR -> psycopg.sql.Composed (pure: builds SQL, never runs it)."""

from fraiseql_nb.sql.params import Params
from fraiseql_nb.sql.rows import compile_row_query
from fraiseql_nb.sql.where import OPERATORS, compile_where, escape_like

__all__ = ["OPERATORS", "Params", "compile_row_query", "compile_where", "escape_like"]
