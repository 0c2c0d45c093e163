"""Loaded rows brought up to now from the change stream: the rows the changes left, read
with the load's own expressions, and the keys whose loaded rows they replace. Shared by
the in-memory path (:mod:`.inmemory`, which applies them to its frame) and the disk path
(:mod:`.disktables`, which keeps them beside the partitions on disk).

A change's rows come two ways: the values the stream sent, computed by the load's
expressions over those values (:func:`.loader.load_changed`); or, for a bulk insert
whose values were not decoded, read from the table by key (:func:`.loader.load_keyed`)
— as the table is *then*, so what committed while they were read is taken from the
stream again and applied over them, by key (the net change of a key is its last): exact
at that later moment.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import polars as pl
import pyarrow as pa

from fraiseql_nb.config import Config
from fraiseql_nb.planes.arrow.adbc import Connections
from fraiseql_nb.planes.arrow.capture import Capture
from fraiseql_nb.planes.arrow.catalog import TableIdentity
from fraiseql_nb.planes.arrow.changes import FETCH
from fraiseql_nb.planes.arrow.loader import load_changed, load_keyed
from fraiseql_nb.schema.model import FactTable

__all__ = ["CaughtUp", "Following", "Reader", "catch_up", "superseded"]

_MAX_FETCH_ROUNDS = 3  # bulk inserts read by key, then the stream again: at most so often


@dataclass(frozen=True)
class Reader:
    """How one path reads changed rows: the columns it keeps, their types, and how an
    Arrow result becomes its kind of frame."""

    connections: Connections
    fact: FactTable
    names: list[str]
    key: str  # the id column: the table's one-column primary key
    schema: pl.Schema  # the frame's columns and types the rows are cast to
    frame_of: Callable[[pa.Table], pl.DataFrame]
    config: Config
    dsn: str


@dataclass(frozen=True)
class CaughtUp:
    """The net change since the rows were last brought up to date.

    Attributes:
        keys: every key changed: loaded rows with these keys are replaced or gone.
        frame: the changed rows as they are now (those that still exist).
        truncated: the table was emptied first: no loaded row is left.
        bytes: bytes received reading the rows.
        sql: the statements that read them.
    """

    keys: pl.Series
    frame: pl.DataFrame
    truncated: bool = False
    bytes: int = 0
    sql: str = ""

    @property
    def empty(self) -> bool:
        return not self.truncated and self.keys.len() == 0


def catch_up(
    capture: Capture, table: TableIdentity, reader: Reader, *, limit: int
) -> CaughtUp | None:
    """The changes committed up to now, as rows (see the module's description); None when
    they cannot be applied — the stream lost, a change of columns, a value it left out,
    more than ``limit`` rows changed — and the table must be read again. The changes are
    taken from the stream: the caller applies them or reads the table again."""
    keys: dict[str, None] = {}
    frame = pl.DataFrame(schema=reader.schema)
    truncated, received, statements = False, 0, []
    changes = capture.take(table)
    for _ in range(_MAX_FETCH_ROUNDS):
        if changes is None or changes.unusable or len(changes.rows) > limit:
            return None
        if changes.truncated:  # everything before it is gone, what came after follows
            truncated, keys, frame = True, {}, frame.clear()
        rows = [r for r in changes.rows.values() if r is not None and r is not FETCH]
        fetch = [k for k, r in changes.rows.items() if r is FETCH]
        new: list[pl.DataFrame] = []
        columns = capture.columns(changes) if rows else None
        if rows and columns is None:
            return None
        if fetch and not reader.schema[reader.key].is_integer():
            return None
        with reader.connections.connection() if fetch or rows else contextlib.nullcontext() as conn:
            if fetch:
                arrow, text = load_keyed(
                    conn,
                    reader.fact,
                    reader.names,
                    reader.key,
                    fetch,
                    config=reader.config,
                    dsn=reader.dsn,
                )
                new.append(_typed(reader, arrow))
                received, statements = received + arrow.nbytes, [*statements, text]
            if rows:
                assert columns is not None
                arrow, text = load_changed(
                    conn,
                    reader.fact,
                    reader.names,
                    columns,
                    rows,
                    config=reader.config,
                    dsn=reader.dsn,
                )
                new.append(_typed(reader, arrow))
                received, statements = received + arrow.nbytes, [*statements, text]
        touched = _keys(reader, list(changes.rows))
        if touched is None:
            return None
        if touched.len():
            frame = frame.filter(~pl.col(reader.key).is_in(touched.implode()))
        frame = pl.concat([frame, *new], how="vertical")
        keys.update(dict.fromkeys(changes.rows))
        if not fetch:
            out = _keys(reader, list(keys))
            assert out is not None  # each key was read as one already
            return CaughtUp(out, frame, truncated, received, ";\n".join(statements))
        changes = capture.take(table)  # what committed while the rows were read
    return None


def superseded(keys: pl.Series, greatest: Any) -> pl.Series:
    """Of the changed ``keys``, those that may be among loaded rows whose greatest id is
    ``greatest`` (None: unknown, or no rows): an integer key past it is a new row and
    replaces nothing, so a stream of appends never filters the loaded rows."""
    if greatest is None or not keys.len() or not keys.dtype.is_integer():
        return keys
    return keys.filter(keys <= greatest)


def _typed(reader: Reader, arrow: pa.Table) -> pl.DataFrame:
    frame = reader.frame_of(arrow)
    return frame.select([pl.col(n).cast(t) for n, t in reader.schema.items()])


def _keys(reader: Reader, keys: list[str]) -> pl.Series | None:
    """Keys as the stream sends them (text) in the id column's type; None when one does
    not read as such (the rows cannot be matched: the table is read again)."""
    try:
        return pl.Series(reader.key, keys, dtype=pl.String).cast(reader.schema[reader.key])
    except pl.exceptions.PolarsError:
        return None


class Following:
    """Which loaded rows the change stream carries on, by table — only these exact objects
    (a copy read back from the store is older than what the stream has passed) — and the
    steps of following them, for both paths."""

    def __init__(self, capture: Capture | None) -> None:
        self.capture = capture
        self._objects: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()

    def key(self, fact: FactTable, table: TableIdentity, names: Iterable[str]) -> str | None:
        """The column the stream finds these loaded rows by — the table's one-column
        primary key, when it is the fact's id column and among ``names`` — or None: the
        table's changes are not captured, or the rows cannot be found by key."""
        capture = self.capture
        if capture is None or not table.heap or fact.id_column not in names:
            return None
        if capture.refusal(table) is not None:
            return None
        return fact.id_column if capture.key_columns(table) == [fact.id_column] else None

    def begin(
        self, fact: FactTable, table: TableIdentity, names: Iterable[str]
    ) -> tuple[int, int] | None:
        """Before reading the table's rows: the token to hand to :meth:`follow` (None:
        the rows will not be followed)."""
        if self.capture is None or self.key(fact, table, names) is None:
            return None
        return self.capture.begin(table)

    def follow(
        self, table: TableIdentity, rows: Any, token: tuple[int, int] | None, ids: Any
    ) -> None:
        """``rows`` were read exactly after :meth:`begin` gave ``token``: the stream
        carries them on, when their ids (of type ``ids``) read back from the stream's
        text (integers, text)."""
        if self.capture is None or token is None:
            return
        readable = ids is not None and (ids.is_integer() or ids == pl.String)
        if readable and self.capture.synced(table, token):
            self._objects[table.key] = rows
        else:
            self.abandon(table, token)

    def follows(self, table: TableIdentity, rows: Any) -> bool:
        """Whether the stream carries ``rows`` on (they are the very rows followed)."""
        return (
            self.capture is not None
            and self._objects.get(table.key) is rows
            and self.capture.follows(table)
        )

    def carried(self, table: TableIdentity, rows: Any) -> None:
        """``rows`` replace the followed ones, brought up to now by the stream."""
        self._objects[table.key] = rows

    def stop(self, table: TableIdentity) -> None:
        """Stop carrying the table's rows on: the next query reads the table again."""
        if self.capture is not None:
            self.capture.forget(table)
        self._objects.pop(table.key, None)

    def abandon(self, table: TableIdentity, token: tuple[int, int] | None) -> None:
        """A read begun under ``token`` did not end in rows to follow: keep nothing."""
        if self.capture is not None and token is not None:
            self.capture.synced(table, None)
            self.capture.forget(table)

    def id_of(self, table: TableIdentity) -> str:
        keys = self.capture.key_columns(table) if self.capture is not None else []
        return keys[0] if len(keys) == 1 else ""
