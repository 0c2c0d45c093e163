"""The net effect of a table's committed changes, by row key. Pure.

The change stream (:mod:`.pgoutput`) says, in commit order, which rows were
inserted, updated and deleted. What the loaded columns need is only the end
of it: for each key touched, the row as it is now (or that it is gone). Rows
are keyed by their replica identity (the primary key) as text, the form the
stream sends it in and the load reads it with (``key::text``; the columns of
a composite key joined by :data:`SEPARATOR`).

Applying a net change is idempotent: a change the load had already seen
(committed between the slot's start and the load's snapshot) sets the row to
what it already was. So loaded rows plus every change committed after the
slot began, applied by key, are the table at the last change applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fraiseql_nb.planes.arrow.pgoutput import UNCHANGED, Change, Relation, Value

__all__ = ["FETCH", "SEPARATOR", "TableChanges", "key_of"]

SEPARATOR = "\x1f"


class _Fetch:
    def __repr__(self) -> str:
        return "FETCH"


#: A row a bulk insert added: read from the table by key (its values were not decoded).
FETCH = _Fetch()


def key_of(values: tuple[Value, ...], positions: tuple[int, ...]) -> str:
    """A row's key as text from its key columns' values."""
    if len(positions) == 1:
        return str(values[positions[0]])
    return SEPARATOR.join(str(values[i]) for i in positions)


@dataclass
class TableChanges:
    """What changed in one table since its rows were last brought up to date.

    Attributes:
        rows: each touched key's row now (the stream's text values), None when deleted.
        truncated: the table was emptied first (rows then holds what came after).
        shapes: the table's columns as the stream sent them (the last one rules).
        unusable: why these changes cannot be applied (a TOASTed value an update did
            not send, a change of columns): the rows must be loaded again.
        count: changes seen.
    """

    rows: dict[str, tuple[Value, ...] | _Fetch | None] = field(default_factory=dict)
    truncated: bool = False
    shape: Relation | None = None
    unusable: str | None = None
    count: int = 0
    _positions: tuple[int, ...] = ()  # the key's columns in the last shape

    def inserted(self, key: str) -> None:
        """A bulk insert's row, by key: read from the table when applied."""
        self.count += 1
        self.rows[key] = FETCH

    def add(self, change: Change) -> None:
        if change.kind == "R":
            old, new = self.shape, change.shape
            if old is not None and new is not None and _columns(old) != _columns(new):
                self.unusable = "its columns changed"
            self.shape = change.shape
            self._positions = key_positions(new) if new is not None else ()
            return
        self.count += 1
        if change.kind == "T":
            self.rows.clear()
            self.truncated = True
            return
        if self.shape is None:
            self.unusable = "a change came before the table's columns"
            return
        positions = self._positions
        if not positions:
            self.unusable = "the table has no replica identity key"
            return
        if change.kind in ("U", "D") and change.old is not None:
            old = _key_values(change.old, self.shape, positions)
            old_key = key_of(old, tuple(range(len(positions))))
        else:
            old_key = None
        if change.kind == "D":
            if old_key is None:
                self.unusable = "a delete without its key"
                return
            self.rows[old_key] = None
            return
        assert change.new is not None
        if any(v is UNCHANGED for v in change.new):
            self.unusable = "an update left a large (TOASTed) value out of the stream"
            return
        key = key_of(change.new, positions)
        if old_key is not None and old_key != key:
            self.rows[old_key] = None  # the key itself changed
        self.rows[key] = change.new


def positions_of(changes: TableChanges) -> tuple[int, ...]:
    """The key columns' places in the rows the stream sends for this table (() before
    its columns were sent)."""
    return changes._positions


def key_positions(shape: Relation) -> tuple[int, ...]:
    return tuple(i for i, c in enumerate(shape.columns) if c.key)


def _key_values(
    old: tuple[Value, ...], shape: Relation, positions: tuple[int, ...]
) -> tuple[Value, ...]:
    """The key columns of an old tuple: every column with the others null ('K'), or the
    whole old row ('O')."""
    if len(old) == len(shape.columns):
        return tuple(old[i] for i in positions)
    return old[: len(positions)]


def _columns(shape: Relation) -> tuple[tuple[str, int, int], ...]:
    return tuple((c.name, c.type_oid, c.typmod) for c in shape.columns)
