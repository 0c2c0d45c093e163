"""One partition's COPY streamed to its own Arrow IPC file, batch by batch.

A batch is converted to what the store keeps (plain Arrow types, decimals of
their declared scale) and written as it arrives, so a partition's memory is one
batch; the file is written under a temporary name, synced and checksummed
(CRC-32) before :mod:`.disksync` renames it into the partition's entry. What the
engine must know without reading the columns (time bounds, letters that fold to
ASCII, the scale of an unconstrained numeric) is gathered on the way, and so are
each column's least and greatest value and its NULLs: the segment's statistics,
by which a query's filter skips segments that cannot match
(:mod:`fraiseql_nb.compute.skipping`).
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from fraiseql_nb.compute.filters import FOLDS_TO_ASCII
from fraiseql_nb.compute.skipping import bounds
from fraiseql_nb.errors import BackendError
from fraiseql_nb.planes.arrow.disktable import crc32, merge_stats, no_stats
from fraiseql_nb.planes.arrow.typed import declared_scale, scale_of
from fraiseql_nb.schema.model import FactTable

__all__ = ["Categories", "StoreFullError", "convert", "copy_to_file"]

_ROOM_EVERY = 32 * 2**20  # bytes written between checks of the store's budget
#: Arrow bytes of the batches a load to disk receives (the driver's default is 16 MB):
#: with two connections, a load's peak RSS on 20M rows was 377 MB at 16, 315 at 8, 253-262
#: at 4 and 234 at 2 MB, in the same time (26-35 s).
BATCH_BYTES = 4 * 2**20
_BATCH_HINT = "adbc.postgresql.batch_size_hint_bytes"
#: Distinct values of a column one segment file may keep as a Categorical, and the files
#: of one load (or sync) together, each value counted once: Polars keeps every category
#: it reads for the life of the process, so a column judged of few values by the table's
#: first rows but of many after them is stored as text from there on (and read as text
#: from every file).
MAX_FILE_CATEGORIES = 65_536
MAX_LOAD_CATEGORIES = 262_144


class Categories:
    """The distinct values the segment files of one load may still add to Polars'
    categories, per column (shared by the load's threads): a value seen in an earlier file
    adds nothing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, set[Any]] = {}
        self._off: set[str] = set()

    def off(self, name: str) -> bool:
        """Whether ``name`` is stored as text from now on."""
        with self._lock:
            return name in self._off

    def take(self, name: str, values: pa.Array) -> bool:
        """Whether a file may keep its distinct ``values`` of ``name`` as categories
        (else the column is text from this file on)."""
        if len(values) > MAX_FILE_CATEGORIES:
            with self._lock:
                self._off.add(name)
            return False
        new = set(values.to_pylist())
        with self._lock:
            seen = self._seen.setdefault(name, set())
            if name in self._off or len(seen | new) > MAX_LOAD_CATEGORIES:
                self._off.add(name)
                return False
            seen |= new
            return True


class StoreFullError(BackendError):
    """The store's disk or budget filled during a load; completed partitions are kept."""


def copy_to_file(
    cur: Any,
    statement: sql.Composable,
    folder: Path,
    index: int,
    fact: FactTable,
    exact: bool,
    tell: Callable[[int, int], None],
    room: Callable[[int], bool],
    categorical: tuple[str, ...] = (),
    categories: Categories | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One COPY streamed to one new segment file, batch by batch; its entry and stats.
    The ``categorical`` text columns are then stored as Polars Categoricals (one
    dictionary per file, which Arrow's file format cannot grow batch by batch) within
    the load's ``categories``; those past them stay text (the entry's ``plain``)."""
    cur.adbc_statement.set_options(**{_BATCH_HINT: str(BATCH_BYTES)})
    cur.execute(statement.as_string(None))
    reader = cur.fetch_record_batch()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = f"p{index:04d}-{uuid.uuid4().hex[:12]}.arrow"
    tmp = folder / f".tmp-{name}"
    stats = no_stats()
    rows = arrow_bytes = 0
    writer = None
    try:
        with open(tmp, "wb", opener=lambda p, f: os.open(p, f, 0o600)) as sink:
            for batch in reader:
                table, seen = convert(pa.Table.from_batches([batch]), fact, exact)
                stats = merge_stats(stats, seen)
                if writer is None:
                    writer = pa.ipc.new_file(sink, table.schema)
                if (
                    arrow_bytes // _ROOM_EVERY != (arrow_bytes + table.nbytes) // _ROOM_EVERY
                    or not rows
                ) and not room(arrow_bytes + table.nbytes):
                    raise StoreFullError(
                        "the store's budget ([arrow_backend] store_size_mb) is full"
                    )
                writer.write_table(table)
                rows += table.num_rows
                arrow_bytes += table.nbytes
                tell(table.num_rows, table.nbytes)
            if writer is None:
                empty, _ = convert(reader.schema.empty_table(), fact, exact)
                writer = pa.ipc.new_file(sink, empty.schema)
            writer.close()
            sink.flush()
            os.fsync(sink.fileno())
        plain = _as_categorical(tmp, categorical, categories or Categories()) if categorical else ()
        crc = crc32(tmp)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StoreFullError(f"the store cannot be written ({exc.strerror or exc})") from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    size = tmp.stat().st_size
    entry = {
        "file": name,
        "rows": rows,
        "bytes": size,
        "crc32": crc,
        "arrow_bytes": arrow_bytes,
        "bounds": stats["bounds"],
    }
    if plain:
        entry["plain"] = list(plain)
    return entry, stats


def _as_categorical(path: Path, names: tuple[str, ...], categories: Categories) -> tuple[str, ...]:
    """Rewrite a segment file with ``names`` dictionary-encoded (Polars reads them as
    Categoricals: grouping and filtering them costs about 60 % of text's), synced, in
    place; return those left as text (past ``categories``). Arrow's file format takes one
    dictionary per column, so it is the column's distinct values in the whole file: two
    reads of the file, a batch at a time."""
    out = path.with_name(path.name + ".cat")
    try:
        with pa.OSFile(str(path)) as source:
            reader = pa.ipc.open_file(source)
            schema = reader.schema
            present = [n for n in names if n in schema.names and not categories.off(n)]
            plain = tuple(n for n in names if n in schema.names and n not in present)
            if not present:
                return plain
            seen: dict[str, list[pa.Array]] = {n: [] for n in present}
            for b in range(reader.num_record_batches):
                batch = reader.get_batch(b).select(present)
                for name in present:
                    seen[name].append(pc.unique(batch.column(name)))
                    if len(seen[name]) > 64:  # keep the distinct values, not every batch's
                        seen[name] = [pc.unique(pa.concat_arrays(seen[name]))]
            found = {
                n: pc.drop_null(pc.unique(pa.chunked_array(seen[n], type=schema.field(n).type)))
                for n in present
            }
            dictionaries = {n: d for n, d in found.items() if categories.take(n, d)}
            plain += tuple(n for n in present if n not in dictionaries)
            if not dictionaries:
                return plain
            batches = (reader.get_batch(b) for b in range(reader.num_record_batches))
            fields = [
                pa.field(f.name, pa.dictionary(pa.int32(), f.type), f.nullable)
                if f.name in dictionaries
                else f
                for f in schema
            ]
            encoded = pa.schema(fields)
            with pa.OSFile(str(out), "wb") as sink, pa.ipc.new_file(sink, encoded) as writer:
                for batch in batches:
                    columns = [
                        pa.DictionaryArray.from_arrays(
                            pc.index_in(batch.column(f.name), value_set=dictionaries[f.name]).cast(
                                pa.int32()
                            ),
                            dictionaries[f.name],
                        )
                        if f.name in dictionaries
                        else batch.column(f.name)
                        for f in schema
                    ]
                    writer.write_batch(pa.record_batch(columns, schema=encoded))
        with open(out, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(out, path)
        return plain
    finally:
        with contextlib.suppress(OSError):
            out.unlink()


def convert(table: pa.Table, fact: FactTable, exact: bool) -> tuple[pa.Table, dict[str, Any]]:
    """A batch as it is stored — plain Arrow types, decimals of their declared scale
    (unconstrained ones stay text: their scale is the table's, known at the end) — and
    what the engine must know of it (:func:`.disktable.merge_stats` adds it up)."""
    plain = pa.schema([pa.field(f.name, f.type, f.nullable) for f in table.schema])
    table = table.replace_schema_metadata(None).cast(plain)
    stats = no_stats()
    for m in fact.measures if exact else ():
        if not (
            m.name in table.column_names
            and m.scalar == "Float"
            and pa.types.is_string(table[m.name].type)
        ):
            continue
        text = table[m.name]
        declared = declared_scale(m.pg_type)
        if declared is not None:
            column = pc.cast(text, pa.decimal128(38, declared))
            table = table.set_column(table.column_names.index(m.name), m.name, column)
            continue
        stats["scales"][m.name] = scale_of(m.pg_type, text)
        if pc.any(pc.match_substring_regex(text, r"^-?(NaN|Infinity)$")).as_py():
            stats["special"].append(m.name)
        whole = pc.struct_field(pc.extract_regex(text, r"^-?(?P<i>\d*)"), "i")
        stats["digits"][m.name] = int(pc.max(pc.utf8_length(whole)).as_py() or 0)
    # An unconstrained numeric's text does not order as its numbers.
    stats["bounds"] = bounds(pl.DataFrame(pl.from_arrow(table)), set(stats["scales"]))
    for name, (low, high, _, kind) in ((n, b[:4]) for n, b in stats["bounds"].items()):
        if kind == "t" and low is not None:  # times' physical least and greatest
            stats["times"][name] = (low, high)
    for name in table.column_names:
        column = table[name]
        kind = column.type
        if pa.types.is_floating(kind) and pc.any(pc.invert(pc.is_finite(column))).as_py():
            stats["special"].append(name)  # NaN or ±Infinity: see compute.filters.check_finite
        elif (
            (pa.types.is_string(kind) or pa.types.is_large_string(kind))
            and name not in stats["scales"]
            and pc.any(pc.match_substring_regex(column, FOLDS_TO_ASCII)).as_py()
        ):
            stats["folds"].append(name)
    return table, stats
