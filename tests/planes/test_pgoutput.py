"""pgoutput messages decoded, and their net effect by key: pure (messages built here as
PostgreSQL's documented format lays them out)."""

from __future__ import annotations

import struct

import pytest

from fraiseql_nb.planes.arrow.changes import TableChanges
from fraiseql_nb.planes.arrow.pgoutput import UNCHANGED, DecodeError, decode

OID = 16403


def relation(*columns: tuple[str, bool]) -> bytes:
    body = (
        b"R" + struct.pack(">I", OID) + b"public\0tf_t\0" + b"d" + struct.pack(">h", len(columns))
    )
    for name, key in columns:
        body += bytes([1 if key else 0]) + name.encode() + b"\0" + struct.pack(">Ii", 20, -1)
    return body


def row(*values: str | None) -> bytes:
    out = struct.pack(">h", len(values))
    for v in values:
        if v is None:
            out += b"n"
        elif v == "<unchanged>":
            out += b"u"
        else:
            data = v.encode()
            out += b"t" + struct.pack(">i", len(data)) + data
    return out


def insert(*values: str | None) -> bytes:
    return b"I" + struct.pack(">I", OID) + b"N" + row(*values)


def update(new: tuple[str | None, ...], old_key: tuple[str | None, ...] | None = None) -> bytes:
    head = b"U" + struct.pack(">I", OID)
    if old_key is not None:
        head += b"K" + row(*old_key)
    return head + b"N" + row(*new)


def delete(*key: str | None) -> bytes:
    return b"D" + struct.pack(">I", OID) + b"K" + row(*key)


SHAPE = relation(("id", True), ("amount", False), ("note", False))


def test_messages_decode_to_their_changes() -> None:
    shape = decode(SHAPE)
    assert shape is not None and shape.shape is not None
    assert [(c.name, c.key) for c in shape.shape.columns] == [
        ("id", True),
        ("amount", False),
        ("note", False),
    ]
    ins = decode(insert("1", "9.50", None))
    assert ins is not None and (ins.kind, ins.relation, ins.new) == ("I", OID, ("1", "9.50", None))
    upd = decode(update(("2", "1.00", "<unchanged>"), old_key=("7", None, None)))
    assert upd is not None and upd.new == ("2", "1.00", UNCHANGED) and upd.old == ("7", None, None)
    gone = decode(delete("3", None, None))
    assert gone is not None and (gone.kind, gone.old) == ("D", ("3", None, None))
    trunc = decode(b"T" + struct.pack(">i", 2) + b"\0" + struct.pack(">II", OID, 99))
    assert trunc is not None and trunc.relations == (OID, 99)
    assert decode(b"B" + bytes(20)) is None and decode(b"C" + bytes(25)) is None
    with pytest.raises(DecodeError):
        decode(insert("1")[:-2])  # cut short
    with pytest.raises(DecodeError):
        decode(b"Z")


def test_the_net_effect_is_the_last_change_of_each_key() -> None:
    t = TableChanges()
    for message in (
        SHAPE,
        insert("1", "1.00", None),
        insert("2", "2.00", "x"),
        update(("1", "5.00", None)),
        delete("2", None, None),
        update(("30", "3.00", None), old_key=("3", None, None)),  # the key itself changed
        insert("2", "4.00", None),  # deleted, then a new row of the same key
    ):
        change = decode(message)
        assert change is not None
        t.add(change)
    assert t.rows == {
        "1": ("1", "5.00", None),
        "2": ("2", "4.00", None),
        "3": None,
        "30": ("30", "3.00", None),
    }
    assert (t.count, t.truncated, t.unusable) == (6, False, None)


def test_a_truncate_clears_what_came_before_and_keeps_what_follows() -> None:
    t = TableChanges()
    for message in (
        SHAPE,
        insert("1", "1.00", None),
        b"T" + struct.pack(">i", 1) + b"\0" + struct.pack(">I", OID),
        insert("5", "5.00", None),
    ):
        change = decode(message)
        assert change is not None
        t.add(change)
    assert t.truncated and t.rows == {"5": ("5", "5.00", None)}


def test_what_cannot_be_applied_says_why() -> None:
    left_out = TableChanges()
    for message in (SHAPE, update(("1", "2.00", "<unchanged>"))):
        change = decode(message)
        assert change is not None
        left_out.add(change)
    assert left_out.unusable == "an update left a large (TOASTed) value out of the stream"
    reshaped = TableChanges()
    for message in (SHAPE, relation(("id", True), ("amount", False))):
        change = decode(message)
        assert change is not None
        reshaped.add(change)
    assert reshaped.unusable == "its columns changed"
    keyless = TableChanges()
    for message in (relation(("id", False)), insert("1")):
        change = decode(message)
        assert change is not None
        keyless.add(change)
    assert keyless.unusable == "the table has no replica identity key"
