"""The row plane (``wire``): entity queries streamed from PostgreSQL in bounded memory.

- :meth:`WirePlane.stream` yields one dict per document through psycopg's
  chunked ``Cursor.stream(size=chunk_size)``: memory is bounded by the chunk,
  and leaving the loop (break, exception, garbage collection) cancels the
  server-side query at once.
- :meth:`WirePlane.execute` builds a Polars DataFrame without one Python dict
  per row: documents arrive as bytes in large chunks, are joined into NDJSON
  and parsed in batches by Arrow's JSON reader (dtypes from the schema), on a
  worker thread while the next batch is still arriving when there is more
  than one batch. Each query's statement is compiled once and reused.
"""

from __future__ import annotations

import contextlib
import operator
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import polars as pl
import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from fraiseql_nb.config import Config
from fraiseql_nb.errors import BackendError, QueryError
from fraiseql_nb.pg.db import query_error
from fraiseql_nb.pg.documents import loads
from fraiseql_nb.pg.pool import pool_stats
from fraiseql_nb.planes._fetch import fetch_buffered, fetch_frame, pooled, raw_cursor, run_pooled
from fraiseql_nb.planes.contract import BasePlane, Offer, Registration, Statement, Task
from fraiseql_nb.planes.frames import polars_schema
from fraiseql_nb.query.ir import RowQuery
from fraiseql_nb.result import Result, measured
from fraiseql_nb.schema.model import Entity
from fraiseql_nb.sql.params import Params
from fraiseql_nb.sql.rows import (
    CURSOR_KEY,
    KINDS_KEY,
    compile_row_query,
    compile_rows,
    selects_whole_document,
)

__all__ = ["REGISTRATION", "WirePlane"]

_FIRST = operator.itemgetter(0)
_COMPILED_MAX = 512  # statements kept per plane
_KEY_MAX = 16_384  # characters of a query's repr past which its statement is not kept


@dataclass(frozen=True)
class _Compiled:
    """A row query's statement, its values, what it shows, and the frame's schema."""

    entity: Entity
    statement: sql.Composable
    values: dict[str, Any]
    shown: str
    schema: dict[str, Any]
    cursor: str
    kinds: bool  # carries KINDS_KEY: a row where it is false means "check kinds"


class WirePlane(BasePlane):
    """Runs row queries on a psycopg pool."""

    name = "wire"

    def __init__(self, pool: ConnectionPool, dsn: str, config: Config) -> None:
        self.pool = pool
        self._closed = False
        self._dsn = dsn
        self.config = config
        # A notebook re-runs its cells and an API serves the same queries: each is
        # compiled once (composing SQL costs ~0.5 ms in Python, a 5-row query ~0.3 ms).
        self._compiled: dict[tuple[str, str, bool, bool], _Compiled] = {}
        # Entities whose documents hold a number or boolean field of another JSON kind
        # somewhere: their statements check each value's kind (sql/exprs.py).
        self._mixed: set[str] = set()
        # Entities where PostgreSQL refused to read an integer field as int8 (a fraction,
        # a value beyond int8): their statements read integers as numeric.
        self._wide: set[str] = set()

    # ------------------------------------------------------------ the contract

    def offer(self, task: Task, *, requested: bool, earlier: Mapping[str, Offer]) -> Offer:
        """Every row query, unless ``[backends] use_wire_backend = false``."""
        if self.config.backends.use_wire_backend:
            return Offer("ready", "row query")
        return Offer(
            "off",
            "wire plane off: one buffered query",
            error=BackendError(
                "the wire plane is off ([backends] use_wire_backend = false);"
                " use backend='postgres' or 'auto'"
            ),
        )

    def health(self) -> dict[str, Any]:
        """As healthy as the database (unless off), and the pool's gauges."""
        on = self.config.backends.use_wire_backend
        return {
            "status": "database" if on else "disabled",
            "pool": pool_stats(None if self._closed else self.pool),
        }

    def close(self) -> None:
        self._closed = True  # the pool is the session's, closed by it

    # ------------------------------------------------------------ streaming

    def stream(self, query: RowQuery, entity: Entity) -> Iterator[dict[str, Any]]:
        """One dict per document, in order; memory bounded by the chunk size."""
        params = Params()
        statement = compile_row_query(query, entity, params, as_text=True)
        with self._connection() as conn:
            rows = raw_cursor(conn).stream(
                statement, params.values, binary=True, size=self.config.wire_backend.chunk_size
            )
            try:
                docs = map(_FIRST, rows)
                while True:
                    try:
                        # C-level chain: no Python bytecode runs per document.
                        yield from map(orjson.loads, docs)
                        break
                    except orjson.JSONDecodeError as exc:
                        # A number orjson refuses (jsonb keeps 1e400): that one document
                        # is read by the standard library, then the fast chain goes on.
                        yield loads(exc.doc)
            except psycopg.Error as exc:
                raise self._error(exc) from None
            finally:
                # Closing psycopg's generator cancels the query if it is still running.
                rows.close()

    # ------------------------------------------------------------ execute

    def execute(self, task: Task) -> Result:
        """The task's rows, streamed (see :meth:`run`)."""
        assert isinstance(task.query, RowQuery)
        assert isinstance(task.target, Entity)
        return self.run(task.query, task.target, next_page=task.next_page)

    def statement(self, task: Task) -> Statement:
        assert isinstance(task.query, RowQuery)
        assert isinstance(task.target, Entity)
        # What metrics and explain show is what run sends: one source, they cannot drift.
        return Statement(self._compile(task.query, task.target).shown)

    def run(
        self,
        query: RowQuery,
        entity: Entity,
        *,
        next_page: Callable[[RowQuery], Result | None] | None = None,
        buffered: bool = False,
    ) -> Result:
        """The whole result as a DataFrame, with dtypes from the schema.

        ``buffered`` is the plain path (``use_wire_backend = false``, reported
        as ``postgres``): the same statement and DataFrame, fetched by one
        buffered psycopg query — libpq holds the whole result before the first row.
        """
        paged = _paged(query)
        started = time.perf_counter()
        compiled = self._compile(query, entity)
        cursor = compiled.cursor
        fetch = fetch_buffered if buffered else fetch_frame
        try:
            fetched = run_pooled(
                self.pool,
                self._dsn,
                self.config,
                lambda conn: fetch(
                    conn, compiled.statement, compiled.values, compiled.schema, key=query.key
                ),
            )
        except psycopg.Error as exc:
            if entity.name not in self._wide and _int8_refused(exc):
                # An integer field holds a fraction or a value beyond int8: numeric from now on.
                self._wide.add(entity.name)
                return self.run(query, entity, next_page=next_page, buffered=buffered)
            if entity.name not in self._mixed and _kind_mismatch(exc):
                # A document holds another kind than the sample did: check kinds from now on.
                self._mixed.add(entity.name)
                return self.run(query, entity, next_page=next_page, buffered=buffered)
            raise self._error(exc) from None
        if compiled.kinds:
            kinds = fetched.frame.get_column(KINDS_KEY)
            fetched.frame.drop_in_place(KINDS_KEY)
            if not kinds.fill_null(True).all():
                # A string holding a number was read as one: check kinds from now on.
                self._mixed.add(entity.name)
                return self.run(query, entity, next_page=next_page, buffered=buffered)
        sql_text = compiled.shown
        backend = "postgres" if buffered else self.name
        frame = fetched.frame
        ttfr = fetched.first_row_at
        received = fetched.received
        last_id = None
        if paged:
            if frame.height:
                last_id = frame[cursor][-1]
            if cursor == CURSOR_KEY:
                frame.drop_in_place(CURSOR_KEY)  # eager: drop() goes through a lazy plan
        follow = None
        if paged and next_page is not None:
            # A short page is the last one: there is nothing after it.
            more = last_id is not None and frame.height == query.limit and query.limit > 0
            nxt = _after(query, last_id) if more else None
            follow = (lambda: next_page(nxt)) if nxt is not None else (lambda: None)
        return measured(
            key=query.key,
            kind="rows",
            backend=backend,
            frame=frame,
            started=started,
            first_row_at=ttfr,
            received=received,
            sql=sql_text,
            next_page=follow,
            single=query.by_id is not None,
        )

    # ------------------------------------------------------------ helpers

    def _compile(self, query: RowQuery, entity: Entity) -> _Compiled:
        guard = entity.name in self._mixed
        fixed = entity.name not in self._wide
        # Keyed by the query's repr, not the query: 1, 1.0 and True are equal in Python
        # (and hash alike) but not in a document; a list value makes it unhashable too.
        # A very long one (thousands of values) is compiled every time, not kept.
        text = repr(query)
        key = (text, entity.name, guard, fixed) if len(text) <= _KEY_MAX else None
        hit = self._compiled.get(key) if key is not None else None
        if hit is not None and hit.entity is entity:
            return hit
        paged = _paged(query)
        # A whole-document selection carries its own id; others get a hidden one.
        cursor = "id" if selects_whole_document(query.selection, entity.fields) else CURSOR_KEY
        params = Params()
        compiled_rows = compile_rows(
            query, entity, params, as_text=True, with_cursor=paged, guard=guard, fixed=fixed
        )
        kinds = compiled_rows.kinds
        schema = polars_schema(query.selection)
        if kinds:
            schema[KINDS_KEY] = pl.Boolean
        if paged and cursor == CURSOR_KEY:
            id_field = entity.field("id")
            numeric = id_field is not None and id_field.type.json == "number"
            schema[CURSOR_KEY] = pl.Int64 if numeric else pl.String
        compiled = _Compiled(
            entity=entity,
            # Rendered once: psycopg does not compose it again at every execution.
            statement=sql.SQL(compiled_rows.statement.as_string(None)),
            values=params.values,
            # What it sends, values inlined (one compile: the same placeholders, filled).
            shown=params.inline(compiled_rows.statement).as_string(None),
            schema=schema,
            cursor=cursor,
            kinds=kinds,
        )
        if key is not None:
            if len(self._compiled) >= _COMPILED_MAX:
                self._compiled.clear()
            self._compiled[key] = compiled
        return compiled

    def _connection(self) -> contextlib.AbstractContextManager[psycopg.Connection[Any]]:
        return pooled(self.pool, self._dsn, self.config)

    def _error(self, exc: BaseException) -> BackendError | QueryError:
        return query_error(exc, self._dsn, timeout_ms=self.config.connections.statement_timeout_ms)


def _kind_mismatch(exc: psycopg.Error) -> bool:
    """PostgreSQL refused a direct cast: a JSON value of another kind than expected."""
    return exc.sqlstate == "22023" and "cannot cast jsonb" in str(exc)


def _int8_refused(exc: psycopg.Error) -> bool:
    """PostgreSQL refused to read a field as int8: not an integer, or beyond int8."""
    return exc.sqlstate in ("22P02", "22003") and "bigint" in str(exc)


def _after(query: RowQuery, last_id: Any) -> RowQuery:
    from dataclasses import replace

    return replace(query, after=last_id, offset=None)


def _paged(query: RowQuery) -> bool:
    """A list query with a limit pages by keyset: its statement also returns a cursor."""
    return query.limit is not None and query.by_id is None


REGISTRATION = Registration(
    name="wire",
    build=lambda ctx: WirePlane(ctx.pool, ctx.dsn, ctx.config),
    runs=frozenset({"rows"}),
    colour="#2b6cb0",
    summary="entity rows streamed by psycopg in bounded memory",
    streams=True,
)
