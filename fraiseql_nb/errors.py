"""The exceptions fraiseql_nb raises, and how secrets are kept out of them.

The hierarchy::

    FraiseQLError            base of everything raised on purpose
     ├── QueryError          the query text or its variables are wrong
     ├── SchemaError         the database does not follow the conventions
     ├── ConfigError         a setting is unknown, mistyped or out of range
     └── BackendError        the database or a data plane failed

    Declined                 a plane will not answer a query (internal: the
     ├── UnsupportedError    session runs another plane; never leaves the API)
     └── NotReady

Every message goes through :func:`fraiseql_nb.pg.conninfo.redact` before it is
stored, so a password never reaches a repr, a traceback or a log.
"""

from __future__ import annotations

from fraiseql_nb.pg.conninfo import redact

__all__ = [
    "BackendError",
    "ConfigError",
    "Declined",
    "FraiseQLError",
    "NotReady",
    "QueryError",
    "SchemaError",
    "UnsupportedError",
]


class FraiseQLError(Exception):
    """Base class: catch this to handle every error fraiseql_nb raises."""

    def __init__(self, message: str, *, secrets: tuple[str, ...] = ()) -> None:
        self.message = redact(message, secrets)
        super().__init__(self.message)


class QueryError(FraiseQLError):
    """A query is invalid; ``line``/``column`` point into its text when known.

    ``errors`` holds every problem found as ``(message, line, column)``;
    the first one is also in ``line``/``column``.
    """

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        errors: tuple[tuple[str, int | None, int | None], ...] = (),
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.errors = errors or ((message, line, column),)
        self.line, self.column = self.errors[0][1], self.errors[0][2]
        super().__init__("; ".join(_located(*e) for e in self.errors), secrets=secrets)


def _located(message: str, line: int | None, column: int | None) -> str:
    return f"{message} (at {line}:{column})" if line is not None and column is not None else message


class SchemaError(FraiseQLError):
    """The database (or a schema file) does not fit the FraiseQL conventions."""


class ConfigError(FraiseQLError):
    """A configuration key is unknown, of the wrong type or out of range."""

    def __init__(self, message: str, *, key: str | None = None, source: str | None = None) -> None:
        self.key = key
        self.source = source
        super().__init__(message)


class BackendError(FraiseQLError):
    """The database or a data plane failed; ``sqlstate`` is set when PostgreSQL said why."""

    def __init__(
        self, message: str, *, sqlstate: str | None = None, secrets: tuple[str, ...] = ()
    ) -> None:
        self.sqlstate = sqlstate
        super().__init__(message, secrets=secrets)


class Declined(Exception):  # noqa: N818 - a signal to the session, not an error
    """A plane will not answer this query; the session asks another one. Internal: it is
    translated (a QueryError when that plane was asked for by name) before leaving the API.

    ``reason`` completes "<plane> …" in the result's reason; ``load`` asks for the
    table to be loaded after the answer."""

    load = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnsupportedError(Declined):
    """The query uses something the engine does not compute exactly; PostgreSQL can."""

    def __init__(self, what: str) -> None:
        super().__init__(f"does not compute {what}")
        self.what = what

    def __reduce__(self) -> tuple[type, tuple[str]]:  # rebuilt from ``what`` (cluster workers)
        return (type(self), (self.what,))


class NotReady(Declined):
    """The needed columns are not at hand without a full load: answer elsewhere, load."""

    load = True
