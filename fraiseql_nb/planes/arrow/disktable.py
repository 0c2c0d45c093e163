"""A fact table on disk, by partition: what its ``meta.json`` records, and reading its
segment files lazily (sizes checked on every read, CRC-32s once per process and
whenever a file was written since). Loading them is :mod:`.disksync`."""

from __future__ import annotations

import functools
import json
import os
import threading
import time
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from fraiseql_nb.compute.skipping import MAX_VALUES, matching
from fraiseql_nb.query.ir import Where

__all__ = [
    "FORMAT",
    "CorruptPart",
    "Delta",
    "DiskTable",
    "Part",
    "crc32",
    "inexact",
    "merge_stats",
    "no_stats",
    "read_disk_table",
]

FORMAT = "parts-2"  # 2: float columns record NaN and infinity (stats "special")
_META = "meta.json"


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


@dataclass(frozen=True)
class Delta:
    """Changes the stream brought since the partitions' snapshot, kept in memory beside
    them (not in the meta: a process reading the store starts from the partitions)."""

    key: str  # the id column
    keys: pl.Series  # ids whose rows in the partitions are replaced or gone
    frame: pl.DataFrame  # the changed rows now, in the partitions' stored types
    stats: dict[str, Any]  # what the engine must know of ``frame`` (:func:`merge_stats`)
    snapshot: str  # the snapshot the table with the delta is exact at
    #: the greatest id in the partitions (None: not integers; read when first needed)
    greatest: Any = None
    cleared: bool = False  # a TRUNCATE emptied the table: no row of the partitions is left


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
    delta: Delta | None = None  # changes from the stream over the partitions
    #: text columns of few distinct values, stored as Polars Categoricals (decided at load)
    categorical: tuple[str, ...] = ()

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

    @property
    def exact_at(self) -> str:
        """The snapshot the table is exact at: the partitions', or with the delta's."""
        return self.delta.snapshot if self.delta is not None else self.snapshot

    def holds(self, exprs: dict[str, str]) -> bool:
        return all(self.exprs.get(name) == expr for name, expr in exprs.items())

    def same_table(self, files: str, attrs: str) -> bool:
        return self.files == files and self.attrs == attrs

    # ------------------------------------------------------------ reading

    def scan(self, names: list[str], skip: frozenset[str] = frozenset()) -> pl.LazyFrame:
        """The columns ``names`` of every partition, lazily (nothing is read yet), but the
        segment files in ``skip`` (:meth:`reads`).

        Raises:
            CorruptPart: a segment is missing or not the size the meta says.
        """
        scales = self.stats()["scales"]
        delta = self.delta
        filtered = delta is not None and delta.keys.len() > 0
        read = [*names, delta.key] if filtered and delta.key not in names else names
        retyped = self.plain
        plain = [n for n in read if n in retyped]
        frames = []
        for i, part in enumerate(self.parts):
            assert part is not None
            for seg in part.segments:
                if seg["file"] in skip:
                    continue
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
                frame = pl.scan_ipc(path).select(read)
                if plain:
                    frame = frame.with_columns(pl.col(n).cast(pl.String) for n in plain)
                frames.append(frame)
        if not frames:  # every segment skipped: the columns, no rows
            lf = self._schema_frame(read)
        else:
            lf = pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]
        if delta is not None:
            changed = delta.frame.lazy().select(names)
            retyped = [n for n in plain if n in names]
            if retyped:  # a segment written after the changed rows were taken
                changed = changed.with_columns(pl.col(n).cast(pl.String) for n in retyped)
            if delta.cleared:
                lf = changed
            else:
                if filtered:  # rows the stream replaced or removed
                    lf = lf.filter(~pl.col(delta.key).is_in(delta.keys.implode())).select(names)
                lf = pl.concat([lf, changed], how="vertical")
        casts = [pl.col(n).str.to_decimal(scale=s) for n, s in scales.items() if n in names]
        return lf.with_columns(casts) if casts else lf

    def reads(self, where: Where | None, timezone: str) -> tuple[frozenset[str], int]:
        """The segment files a query filtered by ``where`` need not read (their statistics
        rule every row out: :func:`~fraiseql_nb.compute.skipping.matching`), and how many
        partitions it reads.

        Raises:
            CorruptPart: the first segment's schema cannot be read.
        """
        segments = [seg for part in self.parts if part is not None for seg in part.segments]
        if where is None:
            skipped: frozenset[str] = frozenset(s["file"] for s in segments if not s["rows"])
        else:
            dtypes = dict(self.stored_schema())
            stats = [(int(s["rows"]), s.get("bounds", {})) for s in segments]
            keep = matching(where, stats, dtypes, timezone)
            skipped = frozenset(s["file"] for s, k in zip(segments, keep, strict=True) if not k)
        read = sum(
            1
            for part in self.parts
            if part is not None and any(s["file"] not in skipped for s in part.segments)
        )
        return skipped, read

    def stored_schema(self) -> pl.Schema:
        """The columns as the partitions store them (before the scan's decimal casts; the
        text of :attr:`plain` as text).

        Raises:
            CorruptPart: the file is gone or unreadable (a cache clear, the store's LRU).
        """
        index, part = next((i, p) for i, p in enumerate(self.parts) if p is not None and p.segments)
        try:
            schema = pl.scan_ipc(self.folder / part.segments[0]["file"]).collect_schema()
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise CorruptPart(index, str(exc)) from None
        for name in self.plain & set(schema):
            schema[name] = pl.String
        return schema

    @property
    def plain(self) -> frozenset[str]:
        """Text columns stored as Categoricals that some segment keeps as text (they had
        too many values: :class:`.partfile.Categories`): read as text from every segment,
        so that the segments' columns line up."""
        return frozenset(
            str(name)
            for part in self.parts
            if part is not None
            for seg in part.segments
            for name in seg.get("plain") or ()
        )

    def _schema_frame(self, names: list[str]) -> pl.LazyFrame:
        schema = self.stored_schema()
        return pl.LazyFrame(schema={n: schema[n] for n in names})

    def stats(self) -> dict[str, Any]:
        """What the partitions recorded of their columns, added up (:func:`merge_stats`)."""
        every = [p.stats for p in self.parts if p]
        if self.delta is not None:
            every.append(self.delta.stats)
        return functools.reduce(merge_stats, every, no_stats())

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
            "categorical": list(self.categorical),
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
    if crc32(path) != seg["crc32"]:
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
            categorical=tuple(str(n) for n in meta.get("categorical") or ()),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def no_stats() -> dict[str, Any]:
    """What a partition records of its columns, before it has read any: times' least and
    greatest physical values, text columns holding letters that fold to ASCII, and of
    unconstrained numerics (read as text) the most decimals, the most integer digits,
    and whether NaN or Infinity appears (in floats too)."""
    return {"times": {}, "folds": [], "scales": {}, "special": [], "digits": {}, "bounds": None}


def merge_stats(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The stats of two batches or partitions together."""
    times = dict(a.get("times", {}))
    for name, (low, high) in b.get("times", {}).items():
        was = times.get(name)
        times[name] = (low, high) if was is None else (min(was[0], low), max(was[1], high))

    def most(key: str) -> dict[str, int]:
        out = dict(a.get(key, {}))
        for name, value in b.get(key, {}).items():
            out[name] = max(out.get(name, 0), int(value))
        return out

    def union(key: str) -> list[str]:
        return sorted(set(a.get(key, ())) | set(b.get(key, ())))

    return {
        "times": times,
        "folds": union("folds"),
        "scales": most("scales"),
        "special": union("special"),
        "digits": most("digits"),
        "bounds": merge_bounds(a.get("bounds", {}), b.get("bounds", {})),
    }


def merge_bounds(
    a: dict[str, list[Any]] | None, b: dict[str, list[Any]] | None
) -> dict[str, list[Any]] | None:
    """The statistics of two batches or segments together: a column known in both keeps the
    least of the least values, the greatest of the greatest and the NULLs of both (and of
    text, both's distinct values while there are few); one known
    in only one of them is not known (never skipped on). None: no batch seen yet (and
    ``{}`` from a meta written before statistics: nothing known)."""
    if a is None or b is None:
        return b if a is None else a
    out = {}
    for name in a.keys() & b.keys():
        (alow, ahigh, anulls, akind), (blow, bhigh, bnulls, bkind) = a[name][:4], b[name][:4]
        if akind != bkind:
            continue
        key = Decimal if akind == "d" else (lambda v: v)
        lows = [v for v in (alow, blow) if v is not None]
        highs = [v for v in (ahigh, bhigh) if v is not None]
        out[name] = [
            min(lows, key=key) if lows else None,
            max(highs, key=key) if highs else None,
            int(anulls) + int(bnulls),
            akind,
        ]
        if len(a[name]) > 4 and len(b[name]) > 4:  # text's distinct values, while few
            values = sorted(set(a[name][4]) | set(b[name][4]))
            if len(values) <= MAX_VALUES:
                out[name].append(values)
    return out


def inexact(stats: dict[str, Any], name: str) -> str:
    """Why an unconstrained numeric column cannot be read exactly as a decimal (NaN or
    ±Infinity, or more digits than 38), or a float column answered as PostgreSQL does
    (NaN or ±Infinity), or ""."""
    if name in stats["special"]:
        return "NaN or Infinity"
    digits, scale = stats["digits"].get(name, 0), stats["scales"].get(name, 0)
    if digits + scale > 38 or scale > 30:
        return f"values of {digits} integer digits and {scale} decimals"
    return ""


def crc32(path: Path) -> int:
    """The CRC-32 of a file, read in 8 MB blocks."""
    crc = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(8 * 2**20):
            crc = zlib.crc32(chunk, crc)
    return crc
