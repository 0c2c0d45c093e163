"""The front door: ``fq.connect()`` returns a Session over one database.

This module resolves where to connect and builds the schema; the data
planes (row streaming, analytics) attach to the session in later stages.
"""

from __future__ import annotations

import os
from typing import Any

from fraiseql_nb import demo
from fraiseql_nb.conninfo import mask_dsn, secrets_of
from fraiseql_nb.db import connect as db_connect
from fraiseql_nb.errors import ConfigError
from fraiseql_nb.schema import DEFAULT_SAMPLE_SIZE, Schema, introspect

__all__ = ["Session", "connect", "resolve_dsn"]


def resolve_dsn(dsn: str | None = None) -> str:
    """``dsn``, else ``$FRAISEQL_DSN``, else the embedded server's small demo database."""
    if dsn:
        return dsn
    env = os.environ.get(demo.ENV_DSN)
    if env:
        return env
    small = demo.SCALES[demo.DEFAULT_SCALE]
    target = demo.resolve_target(small)
    demo.load(target, small, if_missing=True)
    return target


class Session:
    """A connection to one database and what it offers to query."""

    def __init__(self, dsn: str, schema: Schema) -> None:
        self._dsn = dsn
        self._schema = schema
        self._secrets = secrets_of(dsn)
        self.closed = False

    @property
    def dsn(self) -> str:
        """The DSN, password masked."""
        return mask_dsn(self._dsn)

    @property
    def schema(self) -> Schema:
        """The entities and fact tables of the database (a :class:`~fraiseql_nb.Schema`)."""
        return self._schema

    def close(self) -> None:
        """Release the session's connections."""
        self.closed = True

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        roots = ", ".join(self._schema.root_fields()) or "no queries"
        return f"<fraiseql_nb.Session {state} {self.dsn} [{roots}]>"


def connect(
    dsn: str | None = None,
    *,
    config: str | dict[str, Any] | None = None,
    schema: Schema | str | os.PathLike[str] | None = None,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
) -> Session:
    """Open a session.

    Args:
        dsn: libpq DSN or URI; default ``$FRAISEQL_DSN``, else the embedded
            demo database (started and loaded on first use).
        config: reserved for the configuration file or dict.
        schema: a Schema, or the path of a schema file; default: introspect.
        sample_size: documents sampled per view to infer field types.
    """
    if config is not None and not isinstance(config, (str, dict, os.PathLike)):
        raise ConfigError(f"config must be a TOML path or a dict, not {type(config).__name__}")
    if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 1:
        raise ConfigError(
            f"sample_size must be a whole number ≥ 1, got {sample_size!r}", key="sample_size"
        )
    target = resolve_dsn(dsn)
    if isinstance(schema, Schema):
        built = schema
    elif schema is not None:
        built = Schema.load(schema)
    else:
        with db_connect(target, autocommit=True) as conn:
            built = introspect(conn, sample_size=sample_size)
    return Session(target, built)
