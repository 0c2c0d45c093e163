"""Fact tables beyond ``[arrow_backend] memory_mb``: loaded by partition straight to Arrow
IPC files in the store, and queried from those files by Polars' streaming engine.

A load never holds the table: each partition (a range of pages, see
:mod:`.partitions`) is a ``COPY`` whose record batches are written to the
partition's file as they arrive, so its memory is one batch per worker.
Partitions load in parallel over ``[arrow_backend] load_connections``
connections that share one snapshot (``pg_export_snapshot``), so together they
are the table at one instant. The folder's ``meta.json`` is rewritten after
each partition: a load that stops (killed, closed, a full disk) keeps the
partitions it completed, and the next load checks them (:func:`sync`) instead
of reading them again.

What the engine must know without reading the columns (the least and greatest
time, whether a text column holds letters that fold to ASCII, the scale of an
unconstrained numeric) is recorded per partition while it loads.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import re
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from fraiseql_nb.config import Config
from fraiseql_nb.errors import BackendError
from fraiseql_nb.planes.arrow.catalog import TableIdentity
from fraiseql_nb.planes.arrow.freshness import Snapshot, new_rows, parse_snapshot
from fraiseql_nb.planes.arrow.loader import (
    Cancel,
    Connections,
    _cursor,
    _failures,
    _repeatable_read,
    _scalars,
    _window_stats,
)
from fraiseql_nb.planes.arrow.partitions import check_statement, page_range, plan
from fraiseql_nb.planes.engine import FOLDS_TO_ASCII
from fraiseql_nb.schema.model import FactTable
from fraiseql_nb.sql.facts import compile_load

__all__ = ["DiskTable", "Part", "StoreFullError", "read_disk_table", "sync"]

FORMAT = "parts-1"
_DECLARED = re.compile(r"numeric\(\d+,\s*\d+\)")
_ROOM_EVERY = 32 * 2**20  # bytes written between checks of the store's budget
_META = "meta.json"
#: Progress callback: partitions done, partitions in all, rows and bytes received so far.
Report = Callable[[int, int, int, int], None]


class StoreFullError(BackendError):
    """The store's disk or budget filled during a load; completed partitions are kept."""


@dataclass(frozen=True)
class Part:
    """One partition: its first page, its segment files (the load's, then appended rows'),
    the snapshot its rows are exact at, and what the engine must know of its columns."""

    start: int
    segments: tuple[dict[str, Any], ...]
    rows: int
    snapshot: str
    stats: dict[str, Any]

    @property
    def bytes(self) -> int:
        return sum(int(s["bytes"]) for s in self.segments)


@dataclass
class DiskTable:
    """A fact table's columns on disk, by partition (``parts[i]`` is None until loaded)."""

    key: str
    folder: Path
    exprs: dict[str, str]
    starts: list[int]
    parts: list[Part | None]
    window: tuple[int, str]
    files: str
    attrs: str
    about: dict[str, str]
    verified_at: float = field(default_factory=time.monotonic)

    @property
    def complete(self) -> bool:
        return all(p is not None for p in self.parts)

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.parts if p is not None)

    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.parts if p is not None)

    @property
    def snapshot(self) -> str:
        """The snapshot every partition is exact at ("" when they differ or one is missing)."""
        seen = {p.snapshot for p in self.parts if p is not None}
        return seen.pop() if self.complete and len(seen) == 1 else ""

    def holds(self, exprs: dict[str, str]) -> bool:
        return all(self.exprs.get(name) == expr for name, expr in exprs.items())

    def same_table(self, files: str, attrs: str) -> bool:
        return self.files == files and self.attrs == attrs

    # ------------------------------------------------------------ reading

    def scan(self, names: list[str]) -> pl.LazyFrame:
        """The columns ``names`` of every partition, lazily (nothing is read yet).

        Raises:
            CorruptPart: a segment is missing or not the size the meta says.
        """
        scales = self.scales()
        frames = []
        for i, part in enumerate(self.parts):
            assert part is not None
            for seg in part.segments:
                path = self.folder / seg["file"]
                try:
                    status = path.stat()
                except OSError:
                    raise CorruptPart(i, f"{seg['file']} is missing") from None
                size = status.st_size
                if size != seg["bytes"]:
                    raise CorruptPart(
                        i, f"{seg['file']}: {size} bytes, the meta says {seg['bytes']}"
                    )
                _verify_once(path, seg, i, status)
                frames.append(pl.scan_ipc(path).select(names))
        lf = pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]
        casts = [pl.col(n).str.to_decimal(scale=s) for n, s in scales.items() if n in names]
        return lf.with_columns(casts) if casts else lf

    def scales(self) -> dict[str, int]:
        """Unconstrained numeric columns (loaded as text) and the most decimals any holds."""
        out: dict[str, int] = {}
        for part in self.parts:
            for name, scale in (part.stats.get("scales", {}) if part else {}).items():
                out[name] = max(out.get(name, 0), int(scale))
        return out

    def time_bounds(self) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for part in self.parts:
            for name, (low, high) in (part.stats.get("times", {}) if part else {}).items():
                was = out.get(name)
                out[name] = (low, high) if was is None else (min(was[0], low), max(was[1], high))
        return out

    def folds(self, name: str) -> bool:
        return any(part is not None and name in part.stats.get("folds", ()) for part in self.parts)

    # ------------------------------------------------------------ meta

    def meta(self) -> dict[str, Any]:
        """The folder's meta.json: the store lists it (relation, rows, segments' bytes)."""
        return {
            "format": FORMAT,
            **self.about,
            "columns": self.exprs,
            "rows": self.rows,
            "snapshot": self.snapshot,
            "window": list(self.window),
            "files": self.files,
            "attrs": self.attrs,
            "starts": self.starts,
            "parts": [None if p is None else _part_json(p) for p in self.parts],
            "segments": [s for p in self.parts if p is not None for s in p.segments],
        }


class CorruptPart(Exception):  # noqa: N818 - a signal to the plane: reload that partition
    def __init__(self, index: int, why: str) -> None:
        super().__init__(why)
        self.index = index


_verified: set[tuple[str, int, int, int]] = set()
_verified_lock = threading.Lock()


def _verify_once(path: Path, seg: dict[str, Any], index: int, status: os.stat_result) -> None:
    """A segment's checksum, checked the first time this process reads it (2 GB/s), and
    again whenever the file was written since."""
    key = (str(path), int(seg["crc32"]), status.st_ino, status.st_mtime_ns)
    with _verified_lock:
        if key in _verified:
            return
    crc = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(8 * 2**20):
            crc = zlib.crc32(chunk, crc)
    if crc != seg["crc32"]:
        raise CorruptPart(index, f"{seg['file']}: checksum mismatch")
    with _verified_lock:
        _verified.add(key)


def _part_json(p: Part) -> dict[str, Any]:
    return {
        "start": p.start,
        "segments": list(p.segments),
        "rows": p.rows,
        "snapshot": p.snapshot,
        "stats": p.stats,
    }


def read_disk_table(key: str, folder: Path) -> DiskTable | None:
    """The table on disk under ``folder``, from its meta (None when there is none, or it
    is not a partitioned table's)."""
    try:
        meta = json.loads((folder / _META).read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            return None
        parts = [
            None
            if p is None
            else Part(
                start=int(p["start"]),
                segments=tuple(p["segments"]),
                rows=int(p["rows"]),
                snapshot=str(p["snapshot"]),
                stats=dict(p["stats"]),
            )
            for p in meta["parts"]
        ]
        return DiskTable(
            key=key,
            folder=folder,
            exprs=dict(meta["columns"]),
            starts=[int(s) for s in meta["starts"]],
            parts=parts,
            window=(int(meta["window"][0]), str(meta["window"][1])),
            files=str(meta["files"]),
            attrs=str(meta["attrs"]),
            about={k: str(meta.get(k, "?")) for k in ("relation", "database", "role")},
            verified_at=float("-inf"),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


# ---------------------------------------------------------------------- loading


@dataclass(frozen=True)
class _Task:
    index: int
    condition: sql.Composable | None  # None: the whole relation (a view: one partition)
    append: bool  # rows appended to the partition, added as one more segment


@dataclass
class Synced:
    """What :func:`sync` did: the table now, bytes and rows received, the statements."""

    table: DiskTable
    bytes: int = 0
    rows: int = 0
    sql: str = ""
    reloaded: list[int] = field(default_factory=list)
    appended: list[int] = field(default_factory=list)


def sync(
    connections: Connections,
    fact: FactTable,
    table: TableIdentity,
    names: list[str],
    *,
    have: DiskTable | None,
    folder: Path,
    exprs: dict[str, str],
    version: tuple[str, str],
    about: dict[str, str],
    config: Config,
    dsn: str,
    workers: int,
    write_meta: Callable[[DiskTable], None],
    room: Callable[[int], bool],
    report: Report | None = None,
    cancel: Cancel | None = None,
) -> Synced:
    """Bring the table on disk up to the table now: partitions that had appends only get
    one more segment, changed or missing ones are loaded again, the rest is kept.

    Args:
        have: what is on disk already (None, or of other columns: everything loads).
        version: the table's file nodes and column digest now (``files``, ``attrs``).
        write_meta: records the table after each partition (under the store's lock).
        room: whether the store has room for this many more bytes.
    """
    exact = config.arrow_backend.exact_decimals
    relation = sql.Identifier(fact.schema, fact.relation)
    heap = table.heap and not table.rls
    stop = cancel or Cancel()
    with (
        _failures(fact, dsn, config, stop),
        connections.connection() as conn,
        _cursor(conn, stop) as cur,
        _repeatable_read(cur),
    ):
        info = _scalars(
            cur,
            sql.SQL(
                "SELECT pg_current_snapshot()::text AS s, pg_export_snapshot() AS x,"
                " (pg_relation_size({r}::regclass) / current_setting('block_size')::int)::bigint"
                " AS pages,"
                " current_setting('block_size')::int AS block"
            ).format(r=sql.Literal(relation.as_string(None) if heap else None)),
        )
        now = parse_snapshot(info["s"])
        usable = (
            have is not None
            and heap
            and have.holds(exprs)
            and set(have.exprs) == set(exprs)
            and have.same_table(*version)
            and bool(have.starts)
        )
        window = _window_stats(cur, relation, now, table) if heap else (0, "0")
        if usable:
            assert have is not None
            base = replace(have, parts=list(have.parts))
            tasks = _reconcile(cur, relation, base, now, table)
        else:
            starts = plan(int(info["pages"] or 0), int(info["block"]), workers) if heap else [0]
            base = DiskTable(
                key=table.key,
                folder=folder,
                exprs=exprs,
                starts=starts,
                parts=[None] * len(starts),
                window=window,
                files=version[0],
                attrs=version[1],
                about=about,
            )
            tasks = [
                _Task(i, page_range(starts, i) if heap else None, append=False)
                for i in range(len(starts))
            ]
        base.window = window
        out = Synced(table=base)
        if not tasks:
            for i, part in enumerate(base.parts):
                assert part is not None
                base.parts[i] = replace(part, snapshot=now.text)
            base.verified_at = time.monotonic()
            write_meta(base)
            return out
        statements = _run(
            tasks,
            cur,
            connections,
            fact,
            names,
            base,
            out,
            now=now,
            exported=str(info["x"]),
            exact=exact,
            workers=workers,
            write_meta=write_meta,
            room=room,
            report=report,
            stop=stop,
        )
        out.sql = statements
    base.verified_at = time.monotonic()
    return out


def _reconcile(
    cur: Any, relation: sql.Composable, base: DiskTable, now: Snapshot, table: TableIdentity
) -> list[_Task]:
    """Which partitions to load again, and which to append to, from one check statement
    per distinct snapshot the partitions are exact at (one, but after an interrupted
    load). A partition missing, or whose window of in-progress transactions moved, is
    loaded again."""
    tasks: list[_Task] = []
    by_snapshot: dict[str, list[int]] = {}
    for i, part in enumerate(base.parts):
        if part is None:
            tasks.append(_Task(i, page_range(base.starts, i), append=False))
        elif part.snapshot != now.text:
            by_snapshot.setdefault(part.snapshot, []).append(i)
    for text, indexes in by_snapshot.items():
        loaded = parse_snapshot(text)
        if loaded.has_window and _window_stats(cur, relation, loaded, table) != base.window:
            tasks += [_Task(i, page_range(base.starts, i), append=False) for i in indexes]
            continue
        counts = {
            int(r["p"]): r for r in _rows(cur, check_statement(relation, base.starts, loaded, now))
        }
        for i in indexes:
            part = base.parts[i]
            assert part is not None
            row = counts.get(i, {"total": 0, "added": 0, "first": None})
            total, added = int(row["total"]), int(row["added"])
            if total - added != part.rows:
                tasks.append(_Task(i, page_range(base.starts, i), append=False))
            elif added:
                condition = sql.SQL("{} AND ctid >= {}::tid AND {}").format(
                    page_range(base.starts, i), sql.Literal(row["first"]), new_rows(loaded, now)
                )
                tasks.append(_Task(i, condition, append=True))
            else:
                base.parts[i] = replace(part, snapshot=now.text)
    return sorted(tasks, key=lambda t: t.index)


def _rows(cur: Any, statement: sql.Composable) -> list[dict[str, Any]]:
    from fraiseql_nb.planes.arrow.loader import _USE_COPY

    cur.adbc_statement.set_options(**{_USE_COPY: "false"})
    try:
        cur.execute(statement.as_string(None))
        return cur.fetch_arrow_table().to_pylist()
    finally:
        cur.adbc_statement.set_options(**{_USE_COPY: "true"})


def _run(
    tasks: list[_Task],
    cur: Any,
    connections: Connections,
    fact: FactTable,
    names: list[str],
    base: DiskTable,
    out: Synced,
    *,
    now: Snapshot,
    exported: str,
    exact: bool,
    workers: int,
    write_meta: Callable[[DiskTable], None],
    room: Callable[[int], bool],
    report: Report | None,
    stop: Cancel,
) -> str:
    """Run ``tasks`` on ``workers`` connections in the exported snapshot (this cursor is
    one of them), recording each partition as it completes."""
    queue = list(tasks)
    lock = threading.Lock()
    done = [0]
    received = [0, 0]
    errors: list[BaseException] = []
    texts: list[str] = []

    def take() -> _Task | None:
        with lock:
            if errors or stop.cancelled:
                return None
            return queue.pop(0) if queue else None

    def tell(rows: int, nbytes: int) -> None:
        with lock:
            received[0] += rows
            received[1] += nbytes
            if report is not None:
                report(done[0], len(tasks), received[0], received[1])

    def work(c: Any) -> None:
        while (task := take()) is not None:
            statement = compile_load(fact, names, where=task.condition, exact_decimals=exact)
            segment, stats = _copy_to_file(
                c, statement, base.folder, task.index, fact, exact, tell, room
            )
            with lock:
                # Named in the meta at once: the meta's writer removes files it does not name.
                os.replace(base.folder / f".tmp-{segment['file']}", base.folder / segment["file"])
                part = base.parts[task.index]
                if task.append and part is not None:
                    merged = _merge_stats(part.stats, stats)
                    base.parts[task.index] = Part(
                        part.start,
                        (*part.segments, segment),
                        part.rows + segment["rows"],
                        now.text,
                        merged,
                    )
                    out.appended.append(task.index)
                else:
                    base.parts[task.index] = Part(
                        base.starts[task.index], (segment,), segment["rows"], now.text, stats
                    )
                    out.reloaded.append(task.index)
                out.rows += segment["rows"]
                out.bytes += segment["arrow_bytes"]
                done[0] += 1
                texts.append(statement.as_string(None))
                write_meta(base)
                if report is not None:
                    report(done[0], len(tasks), received[0], received[1])

    def helper() -> None:
        try:
            with connections.connection() as conn, _cursor(conn, stop) as c2:
                c2.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                c2.execute(
                    sql.SQL("SET TRANSACTION SNAPSHOT {}")
                    .format(sql.Literal(exported))
                    .as_string(None)
                )
                work(c2)
                c2.execute("COMMIT")
        except BaseException as exc:  # noqa: BLE001 - re-raised by the main thread
            with lock:
                errors.append(exc)

    extra = max(0, min(workers, len(tasks)) - 1)
    pool = (
        ThreadPoolExecutor(max_workers=extra, thread_name_prefix="fraiseql-part") if extra else None
    )
    # Each helper in a copy of this context: progress listeners (contextvars) hear it.
    futures = (
        [pool.submit(contextvars.copy_context().run, helper) for _ in range(extra)] if pool else []
    )
    try:
        work(cur)
    except BaseException:
        stop()
        raise
    finally:
        for f in futures:
            f.result()
        if pool is not None:
            pool.shutdown(wait=True)
    if errors:
        raise errors[0]
    return (
        texts[0] if len(texts) == 1 else f"{len(texts)} partitions, as: {texts[0]}" if texts else ""
    )


def _copy_to_file(
    cur: Any,
    statement: sql.Composable,
    folder: Path,
    index: int,
    fact: FactTable,
    exact: bool,
    tell: Callable[[int, int], None],
    room: Callable[[int], bool],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One COPY streamed to one new segment file, batch by batch; its entry and stats."""
    cur.execute(statement.as_string(None))
    reader = cur.fetch_record_batch()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = f"p{index:04d}-{uuid.uuid4().hex[:12]}.arrow"
    tmp = folder / f".tmp-{name}"
    stats: dict[str, Any] = {"times": {}, "folds": [], "scales": {}}
    rows = arrow_bytes = 0
    writer = None
    try:
        with open(tmp, "wb", opener=lambda p, f: os.open(p, f, 0o600)) as sink:
            for batch in reader:
                table = _convert(pa.Table.from_batches([batch]), fact, exact, stats)
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
                empty = _convert(reader.schema.empty_table(), fact, exact, stats)
                writer = pa.ipc.new_file(sink, empty.schema)
            writer.close()
            sink.flush()
            os.fsync(sink.fileno())
        crc = 0
        with open(tmp, "rb") as handle:
            while chunk := handle.read(8 * 2**20):
                crc = zlib.crc32(chunk, crc)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StoreFullError(f"the store cannot be written ({exc.strerror or exc})") from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    size = tmp.stat().st_size
    entry = {"file": name, "rows": rows, "bytes": size, "crc32": crc, "arrow_bytes": arrow_bytes}
    return entry, stats


def _convert(table: pa.Table, fact: FactTable, exact: bool, stats: dict[str, Any]) -> pa.Table:
    """A batch as it is stored: plain Arrow types, decimals of their declared scale
    (unconstrained ones stay text: their scale is the table's, known at the end), and
    what the engine must know of it added to ``stats``."""
    plain = pa.schema([pa.field(f.name, f.type, f.nullable) for f in table.schema])
    table = table.replace_schema_metadata(None).cast(plain)
    if exact:
        from fraiseql_nb.planes.arrow.loader import _scale

        for m in fact.measures:
            if (
                m.name in table.column_names
                and m.scalar == "Float"
                and pa.types.is_string(table[m.name].type)
            ):
                scale = _scale(m.pg_type, table[m.name])
                if _DECLARED.search(m.pg_type):
                    column = pc.cast(table[m.name], pa.decimal128(38, scale))
                    table = table.set_column(table.column_names.index(m.name), m.name, column)
                else:
                    stats["scales"][m.name] = max(stats["scales"].get(m.name, 0), scale)
    for name in table.column_names:
        column = table[name]
        kind = column.type
        if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
            physical = column.cast(pa.int64() if pa.types.is_timestamp(kind) else pa.int32())
            bounds = pc.min_max(physical).as_py()
            if bounds["min"] is not None:
                low, high = stats["times"].get(name, (bounds["min"], bounds["max"]))
                stats["times"][name] = (min(low, bounds["min"]), max(high, bounds["max"]))
        elif (pa.types.is_string(kind) or pa.types.is_large_string(kind)) and name not in stats[
            "folds"
        ]:
            if name in stats["scales"]:
                continue
            if pc.any(pc.match_substring_regex(column, FOLDS_TO_ASCII)).as_py():
                stats["folds"].append(name)
    return table


def _merge_stats(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    times = dict(a.get("times", {}))
    for name, (low, high) in b.get("times", {}).items():
        was = times.get(name)
        times[name] = (low, high) if was is None else (min(was[0], low), max(was[1], high))
    scales = dict(a.get("scales", {}))
    for name, s in b.get("scales", {}).items():
        scales[name] = max(scales.get(name, 0), s)
    return {
        "times": times,
        "folds": sorted(set(a.get("folds", ())) | set(b.get("folds", ()))),
        "scales": scales,
    }
