"""What reading the catalogue for entities and fact tables shares: a sample that stays
within the statement timeout, the role's name in messages, and PostgreSQL's types as
GraphQL scalars."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

__all__ = ["PG_SCALARS", "current_user", "within_timeout"]

#: PostgreSQL column types and the GraphQL scalar each is read as.
PG_SCALARS = {
    "int2": "Int",
    "int4": "Int",
    "int8": "BigInt",
    "numeric": "Float",
    "float4": "Float",
    "float8": "Float",
    "bool": "Boolean",
    "timestamptz": "DateTime",
    "timestamp": "DateTime",
    "date": "Date",
    "uuid": "ID",
}


def within_timeout(
    conn: psycopg.Connection[Any], statement: Callable[[int], sql.Composed], limit: int
) -> list[Any] | None:
    """The rows of ``statement(limit)``; when the statement timeout cancels it (a slow
    view), of ``statement`` with ten times fewer rows, down to one. None if even one row
    is too slow. Each try runs in its own (sub)transaction, so a cancelled one leaves the
    connection usable."""
    while True:
        try:
            with conn.transaction():
                return conn.execute(statement(limit)).fetchall()
        except psycopg.errors.QueryCanceled:
            if limit <= 1:
                return None
            limit = max(1, limit // 10)


def current_user(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SELECT current_user").fetchone()
    return f"role {row[0]}" if row else "this role"
