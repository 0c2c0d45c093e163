"""The front door: ``fq.connect()`` opens a Session — where it connects (the argument,
the environment, the config, else the embedded demo database), its config, its
schema (read from the database, or a file) and its connection pools.

The one place the core reaches the local tooling (:mod:`fraiseql_nb.local`): the
default database and the store's default folder are the embedded server's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psycopg
from graphql import GraphQLError

from fraiseql_nb.config import Config, load_config
from fraiseql_nb.errors import BackendError, ConfigError, SchemaError
from fraiseql_nb.local import demo, embedded
from fraiseql_nb.pg.db import check_dsn, query_error
from fraiseql_nb.pg.pool import open_pool
from fraiseql_nb.schema import DEFAULT_SAMPLE_SIZE, Schema, graphql_schema, introspect
from fraiseql_nb.session import Session

__all__ = ["connect", "resolve_dsn", "store_root"]


def resolve_dsn(dsn: str | None = None, config: Config | None = None) -> str:
    """``dsn``, else ``$FRAISEQL_DSN``, else ``[database] standard_connection``,
    else the embedded server's small demo database (started and loaded if needed)."""
    if dsn:
        return dsn
    env = os.environ.get(demo.ENV_DSN)
    if env:
        return env
    if config is not None and config.database.standard_connection:
        return config.database.standard_connection
    small = demo.SCALES[demo.DEFAULT_SCALE]
    target = demo.resolve_target(small)
    demo.load(target, small, if_missing=True)
    return target


def store_root(config: Config) -> Path | None:
    """Where the arrow plane persists loaded columns: ``[arrow_backend] store_dir``, else
    ``$FRAISEQL_HOME/store``; None when the store is off."""
    arrow = config.arrow_backend
    if not arrow.store_enabled:
        return None
    if arrow.store_dir:
        return Path(arrow.store_dir).expanduser()
    return embedded.resolve_home()[0] / "store"


def connect(
    dsn: str | None = None,
    *,
    config: str | os.PathLike[str] | dict[str, Any] | Config | None = None,
    schema: Schema | str | os.PathLike[str] | None = None,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
) -> Session:
    """Open a session.

    Args:
        dsn: libpq DSN or URI; default ``$FRAISEQL_DSN``, then the config's
            ``[database] standard_connection``, then the embedded demo database
            (started and loaded on first use).
        config: a ``fraiseql.toml`` path, a dict with the same sections, or a
            Config; default ``$FRAISEQL_CONFIG`` or ``./fraiseql.toml`` if present.
        schema: a Schema, or the path of a schema file; default: introspect.
        sample_size: documents sampled per view to infer field types.
    """
    if (
        isinstance(sample_size, bool)
        or not isinstance(sample_size, int)
        or not 1 <= sample_size <= 10_000_000
    ):
        raise ConfigError(
            f"sample_size must be a whole number from 1 to 10,000,000, got {sample_size!r}",
            key="sample_size",
        )
    if schema is not None and not isinstance(schema, (Schema, str, os.PathLike)):
        raise ConfigError(
            f"schema must be a Schema or a schema file's path, not {type(schema).__name__}",
            key="schema",
        )
    cfg = load_config(config)
    target = check_dsn(resolve_dsn(dsn, cfg))
    if isinstance(schema, Schema):
        built: Schema | None = schema
    elif schema is not None:
        built = Schema.load(schema)
        try:  # fail now, naming the file, not at the first query
            graphql_schema(built)
        except (GraphQLError, TypeError, ValueError) as exc:
            raise SchemaError(f"{schema}: not a valid GraphQL schema: {exc}") from None
    else:
        built = None
    pool = open_pool(target, cfg)
    analytics_pool = None
    try:
        if built is None:
            try:
                with pool.connection() as conn:
                    built = introspect(conn, sample_size=sample_size)
            except psycopg.Error as exc:
                error = query_error(exc, target, timeout_ms=cfg.connections.statement_timeout_ms)
                raise BackendError(
                    f"reading the schema failed: {error.message}",
                    sqlstate=getattr(exc, "sqlstate", None),
                ) from None
        analytics = cfg.database.analytics_connection
        if analytics and analytics != target:
            analytics_pool = open_pool(check_dsn(analytics), cfg, name="fraiseql-nb analytics")
    except BaseException:
        pool.close()
        raise
    return Session(target, cfg, pool, built, analytics_pool, store_root(cfg))
