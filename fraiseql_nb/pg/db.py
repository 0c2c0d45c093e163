"""Open a psycopg connection, turning every failure into a masked BackendError."""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from fraiseql_nb.errors import BackendError, ConfigError, QueryError
from fraiseql_nb.pg.conninfo import mask_dsn, normalize_scheme, redact, secrets_of

__all__ = ["CONNECT_TIMEOUT_S", "backend_error", "check_dsn", "connect", "query_error"]

CONNECT_TIMEOUT_S = 10


def check_dsn(dsn: str) -> str:
    """``dsn`` in libpq's own spelling (``postgresql+psycopg://`` accepted), or a ConfigError
    saying why it does not parse — never showing its password."""
    if not isinstance(dsn, str):
        raise ConfigError(f"a connection string is text, not {type(dsn).__name__}", key="dsn")
    try:
        dsn.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError("the connection string is not valid Unicode", key="dsn") from None
    normal = normalize_scheme(dsn)
    try:
        conninfo_to_dict(normal)
    except psycopg.ProgrammingError as exc:
        # Neither the string nor what libpq quotes of it: a password in a malformed
        # string cannot be told from the rest, so none of it is shown.
        detail = re.sub(r'"[^"]*"?', '"…"', " ".join(str(exc).split()))
        detail = redact(detail, secrets_of(dsn))
        raise ConfigError(f"not a valid connection string: {detail}", key="dsn") from None
    return normal


def connect(
    dsn: str, *, autocommit: bool = False, application_name: str = "fraiseql-nb", **kwargs: Any
) -> psycopg.Connection[Any]:
    """Connect to ``dsn``; a bad or unreachable DSN raises BackendError within the timeout.

    Args:
        dsn: a libpq connection string or URI.
        autocommit: passed to psycopg.
        application_name: shown in ``pg_stat_activity``, so operators can
            tell fraiseql-nb's sessions apart.
        **kwargs: further connection parameters; they override the DSN's.
    """
    dsn = check_dsn(dsn)
    params = conninfo_to_dict(dsn)
    kwargs.setdefault("connect_timeout", params.get("connect_timeout") or CONNECT_TIMEOUT_S)
    kwargs.setdefault("application_name", params.get("application_name") or application_name)
    try:
        return psycopg.connect(dsn, autocommit=autocommit, **kwargs)
    except psycopg.Error as exc:
        raise backend_error(exc, dsn, action="connect to PostgreSQL") from None


def error_text(exc: BaseException) -> str:
    """A driver error in one line, without the statement: PostgreSQL's own message,
    never its ``LINE 1: SELECT …`` excerpt (the statement is the caller's to see
    in ``Result.sql``, not every reader of an error's)."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    # Another driver's (ADBC's) text is cut where the statement begins.
    text = primary or re.split(r"\bLINE \d+:|\bQuery was:", str(exc), maxsplit=1)[0]
    return " ".join(text.split()) or type(exc).__name__


def backend_error(exc: BaseException, dsn: str, *, action: str) -> BackendError:
    """Wrap a driver error as BackendError: one line, the DSN masked, the sqlstate kept."""
    detail = error_text(exc)
    return BackendError(
        # The DSN goes last: a masked key=value password runs to the next space.
        f"cannot {action}: {detail}; dsn: {mask_dsn(dsn)}",
        sqlstate=getattr(exc, "sqlstate", None),
        secrets=secrets_of(dsn),
    )


# SQLSTATEs that mean the connection went away under a running query.
_LOST = {"57P01", "57P02", "57P03", "08000", "08003", "08006", "08001", "08004"}
# SQLSTATEs of a value or a request the caller wrote (a regex that does not compile, a
# text that is not a time, a collation this server lacks, more columns than a row holds)
# rather than of the data (a sum that overflows, a division by zero).
_CALLERS = {
    "22P02",  # invalid text representation
    "2201B",  # invalid regular expression
    "22025",  # invalid escape sequence
    "22019",  # invalid escape character
    "22007",  # invalid datetime format
    "22008",  # datetime field overflow
    "22009",  # invalid time zone displacement
    "22023",  # invalid parameter value
    "2201W",  # invalid LIMIT
    "2201X",  # invalid OFFSET
    "22021",  # character not in repertoire
    "22P05",  # untranslatable character
    "42704",  # undefined object (a collation)
    "54011",  # too many columns
    "54001",  # statement too complex (stack depth limit exceeded)
}
# Internal errors (XX000) that a value of the caller's causes.
_CALLERS_INTERNAL = ("tsquery stack too small",)


def query_error(
    exc: BaseException, dsn: str, *, timeout_ms: int | None = None
) -> BackendError | QueryError:
    """What a failure while running a query was: the caller's mistake (a value PostgreSQL
    cannot use: an invalid regular expression, a number out of range…) as a QueryError
    saying what to change; anything else as a BackendError saying what happened."""
    detail = error_text(exc)
    sqlstate = getattr(exc, "sqlstate", None)
    callers = sqlstate in _CALLERS or (sqlstate == "XX000" and detail in _CALLERS_INTERNAL)
    if callers or (isinstance(exc, psycopg.ProgrammingError) and sqlstate is None):
        # A value or request of the caller's, or psycopg refusing a value before sending it.
        detail = redact(detail.split(" CONTEXT:", 1)[0], secrets_of(dsn))
        return QueryError(f"PostgreSQL cannot use a value of the query: {detail}")
    if isinstance(exc, psycopg.errors.QueryCanceled) and "statement timeout" in detail:
        message = (
            f"the query ran longer than the statement timeout ({timeout_ms} ms) and was"
            " cancelled; narrow it, or raise [connections] statement_timeout_ms"
        )
    elif sqlstate in _LOST or (isinstance(exc, psycopg.OperationalError) and sqlstate is None):
        message = f"the connection to PostgreSQL was lost during the query: {detail}"
    else:
        message = f"PostgreSQL refused the query: {detail}"
    return BackendError(
        f"{message}; dsn: {mask_dsn(dsn)}", sqlstate=sqlstate, secrets=secrets_of(dsn)
    )
