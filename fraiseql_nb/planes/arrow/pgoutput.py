"""PostgreSQL's ``pgoutput`` logical replication messages (protocol version 1), decoded.
Pure: bytes in, changes out.

The arrow plane reads a table's committed changes with
``pg_logical_slot_get_binary_changes(slot, upto, NULL, 'proto_version', '1',
'publication_names', …)``: one message per row, in commit order, committed
transactions only (a rolled-back savepoint's rows never appear). The format
is PostgreSQL's documented one ("Logical Replication Message Formats"); the
messages the plane needs are Relation (a table's columns), Insert, Update,
Delete and Truncate; Begin, Commit, Origin, Type and Message are read past.
Values come as text (the type's output function), ``None`` for NULL, and
:data:`UNCHANGED` for a TOASTed value an update did not change (not sent).

A maintained decoder library was considered: pypgoutput decodes the same
messages but needs psycopg2 and pydantic for its replication connection,
which this plane does not use (it reads changes through SQL functions); the
format is small and stable, so it is decoded here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

__all__ = [
    "UNCHANGED",
    "Change",
    "Column",
    "Relation",
    "decode",
]


class _Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


#: A TOASTed value an update left as it was: pgoutput does not send it.
UNCHANGED = _Unchanged()

Value = str | None | _Unchanged


@dataclass(frozen=True)
class Column:
    name: str
    type_oid: int
    typmod: int
    key: bool  # part of the replica identity


@dataclass(frozen=True)
class Relation:
    """A table's shape as the stream sends it before its first change (and after an
    ALTER TABLE)."""

    oid: int
    schema: str
    name: str
    replica_identity: str  # d (default: primary key), n (nothing), f (full), i (index)
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class Change:
    """One row change, or a truncate (``kind`` "T", ``relations`` its tables)."""

    kind: str  # I insert, U update, D delete, T truncate, R relation
    relation: int  # the table's oid (0 for a truncate of several: see relations)
    new: tuple[Value, ...] | None = None  # the row after (insert, update)
    old: tuple[Value, ...] | None = None  # its key (or whole row) before (update, delete)
    relations: tuple[int, ...] = field(default=())
    shape: Relation | None = None  # kind "R"


class DecodeError(ValueError):
    """Bytes that are not a pgoutput message this decoder knows."""


_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise DecodeError("a pgoutput message ends early")
        out = self.data[self.at : self.at + n]
        self.at += n
        return out

    def int8(self) -> int:
        return self.take(1)[0]

    def int16(self) -> int:
        return int(struct.unpack(">h", self.take(2))[0])

    def int32(self) -> int:
        return int(struct.unpack(">i", self.take(4))[0])

    def uint32(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])

    def string(self) -> str:
        end = self.data.find(b"\0", self.at)
        if end < 0:
            raise DecodeError("a pgoutput string has no end")
        out = self.data[self.at : end].decode("utf-8")
        self.at = end + 1
        return out

    def tuple(self) -> tuple[Value, ...]:
        # The hot loop of a bulk change (a row per message): indexes, not slices.
        data, at = self.data, self.at
        try:
            (count,) = _INT16.unpack_from(data, at)
            at += 2
            values: list[Value] = []
            for _ in range(count):
                kind = data[at]
                at += 1
                if kind == 0x74:  # "t": text
                    (size,) = _INT32.unpack_from(data, at)
                    at += 4
                    if at + size > len(data):
                        raise DecodeError("a pgoutput value ends early")
                    values.append(data[at : at + size].decode("utf-8"))
                    at += size
                elif kind == 0x6E:  # "n": null
                    values.append(None)
                elif kind == 0x75:  # "u": an unchanged TOASTed value, not sent
                    values.append(UNCHANGED)
                else:  # "b": binary, only with the binary option, which is not asked for
                    raise DecodeError(f"a pgoutput value of kind {chr(kind)!r}")
        except (struct.error, IndexError):
            raise DecodeError("a pgoutput message ends early") from None
        self.at = at
        return tuple(values)


def insert_key(data: bytes, positions: tuple[int, ...]) -> tuple[int, str] | None:
    """For an insert: its table's oid and the row's key (key columns' text joined as in
    :func:`fraiseql_nb.planes.arrow.changes.key_of`), read without decoding the rest of
    the row — None for any other message. A bulk insert's rows are then read from the
    table by key, not from the stream value by value (15 µs a row in Python)."""
    if not data or data[0] != 0x49:  # "I"
        return None
    try:
        (oid,) = struct.unpack_from(">I", data, 1)
        if data[5] != 0x4E:  # "N"
            raise DecodeError("an insert without its new row")
        at = 8  # past the column count
        wanted = max(positions) if positions else -1
        found: list[str] = []
        for i in range(wanted + 1):
            kind = data[at]
            at += 1
            if kind == 0x74:
                (size,) = _INT32.unpack_from(data, at)
                at += 4
                if i in positions:
                    found.append(bytes(data[at : at + size]).decode("utf-8"))
                at += size
            elif kind == 0x6E and i in positions:
                found.append("None")
        return oid, "\x1f".join(found)
    except (struct.error, IndexError):
        raise DecodeError("a pgoutput message ends early") from None


def decode(data: bytes) -> Change | None:
    """The change one message carries; None for a message that carries none (begin,
    commit, origin, type, logical message)."""
    r = _Reader(bytes(data))
    kind = chr(r.int8())
    if kind == "R":
        oid = r.uint32()
        schema, name = r.string(), r.string()
        identity = chr(r.int8())
        columns = []
        for _ in range(r.int16()):
            flags = r.int8()
            columns.append(Column(r.string(), r.uint32(), r.int32(), key=bool(flags & 1)))
        shape = Relation(oid, schema, name, identity, tuple(columns))
        return Change("R", oid, shape=shape)
    if kind == "I":
        oid = r.uint32()
        if chr(r.int8()) != "N":
            raise DecodeError("an insert without its new row")
        return Change("I", oid, new=r.tuple())
    if kind == "U":
        oid = r.uint32()
        marker = chr(r.int8())
        old = None
        if marker in ("K", "O"):
            old = r.tuple()
            marker = chr(r.int8())
        if marker != "N":
            raise DecodeError("an update without its new row")
        return Change("U", oid, new=r.tuple(), old=old)
    if kind == "D":
        oid = r.uint32()
        if chr(r.int8()) not in ("K", "O"):
            raise DecodeError("a delete without its old key")
        return Change("D", oid, old=r.tuple())
    if kind == "T":
        count = r.int32()
        r.int8()  # options: cascade, restart identity
        oids = tuple(r.uint32() for _ in range(count))
        return Change("T", 0, relations=oids)
    if kind in ("B", "C", "O", "Y", "M"):
        return None
    raise DecodeError(f"a pgoutput message of kind {kind!r}")
