"""Loaded columns on local disk, so a new process (a restarted kernel, a second notebook,
the HTTP server) answers from them instead of loading the table again.

Layout: one folder per table key (database, table, and who is looking — see
:class:`.catalog.TableIdentity`) under the store root, holding ``meta.json``
and Arrow IPC segment files (Polars' own IPC: Categoricals and string views
round-trip unchanged, and reading 40 MB takes ~50 ms). Appended rows are a
new segment; a table reloaded from scratch gets a new set of segments.

- **Atomic.** Segments and meta are written to temporary files and renamed;
  readers only ever see a complete meta naming complete segments.
- **Several processes.** Writers take an exclusive ``flock`` on the store's
  lock file; readers take none (a rename is atomic). A table answered from disk
  is loaded and synced by one process at a time (:mod:`.tablelock`); files its
  meta no longer names are removed a minute later, not at once, so a process
  still reading the meta before finds them (and one that does not, reads the
  new meta and starts again: :mod:`.disktables`).
- **Corruption.** Each segment's size and CRC-32 are in the meta and checked
  before it is read (2 GB/s): a truncated or damaged entry is deleted and the
  table is loaded again, never answered from.
- **Budget.** ``[arrow_backend] store_size_mb``: after each write the least
  recently used entries (by meta modification time, touched on every read)
  are removed until the store fits.
- **Privacy.** Folders are 0700 and files 0600: the store holds table data.

Any failure to write (read-only folder, full disk) is one warning; the plane
keeps working from memory.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from fraiseql_nb.planes.arrow.cache import TableData
from fraiseql_nb.planes.arrow.freshness import parse_snapshot
from fraiseql_nb.planes.arrow.tablelock import key_held

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: one process per store
    fcntl = None  # type: ignore[assignment]

__all__ = ["PARTS_SUFFIX", "ColumnStore", "Removal", "StoreEntry", "auto_budget"]

FORMAT = 1
_META = "meta.json"
PARTS_SUFFIX = "-parts"  # a table answered from disk: partition files, not one frame
_LOCK = ".lock"
_MAX_SEGMENTS = 16  # then the entry is rewritten as one
_WRITE_WAIT_S = 10.0  # a write waits this long for another process's lock, then is skipped
_DISCARD_WAIT_S = 2.0
#: A partition's file its table's meta no longer names is kept this long for the processes
#: still reading the meta before.
_RETIRE_S = 60.0
logger = logging.getLogger("fraiseql_nb.store")


@dataclass(frozen=True)
class StoreEntry:
    """One stored table, as ``fraiseql-nb cache status`` lists it."""

    key: str
    relation: str
    database: str
    role: str
    rows: int
    bytes: int
    columns: tuple[str, ...]
    snapshot: str
    used: float  # seconds since the epoch


@dataclass(frozen=True)
class Removal:
    """What :meth:`ColumnStore.remove` did: tables removed, those left because another
    process held them, and why it stopped early (empty when it did not)."""

    removed: int
    in_use: tuple[str, ...] = ()
    failed: str = ""


class ColumnStore:
    """Tables' loaded columns under ``root``, bounded by ``budget_mb``."""

    def __init__(self, root: Path, budget_mb: float) -> None:
        self.root = Path(root)
        self.budget = (
            int(budget_mb * 2**20)
            if budget_mb > 0
            else auto_budget(self.root, held=sum(e.bytes for e in self.entries()))
        )
        self.broken: str | None = None  # why writing is off, after a failure
        self._local = threading.Lock()  # flock is per process; threads queue here

    # ------------------------------------------------------------ reading

    def read(self, key: str) -> TableData | None:
        """The stored table, if complete and intact; a damaged one is removed."""
        folder = self.root / key
        try:
            meta = json.loads((folder / _META).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            self._discard(key, "unreadable meta")
            return None
        try:
            if meta.get("format") != FORMAT:
                raise ValueError(f"format {meta.get('format')!r}")
            frames = [self._segment(folder, seg) for seg in meta["segments"]]
            frame = (
                pl.concat(frames, how="vertical", rechunk=False) if len(frames) > 1 else frames[0]
            )
            if frame.height != meta["rows"]:
                raise ValueError(f"{frame.height} rows, the meta says {meta['rows']}")
            if frame.columns != list(meta["columns"]):
                raise ValueError(f"columns {frame.columns}, the meta says {list(meta['columns'])}")
            data = TableData(
                frame=frame,
                exprs=dict(meta["columns"]),
                snapshot=parse_snapshot(meta["snapshot"]),
                window=(int(meta["window"][0]), str(meta["window"][1])),
                files=meta["files"],
                attrs=meta["attrs"],
                verified_at=float("-inf"),  # never proven current by this process
            )
        except FileNotFoundError:
            return None  # replaced by a writer in the meantime: load instead
        except (
            OSError,
            ValueError,
            KeyError,
            TypeError,
            IndexError,
            AttributeError,
            pl.exceptions.PolarsError,
        ) as exc:
            self._discard(key, str(exc) or type(exc).__name__)
            return None
        with contextlib.suppress(OSError):
            os.utime(folder / _META)  # recently used
        return data

    def has(self, key: str, exprs: dict[str, str]) -> bool:
        """Whether a stored table holds these columns (reads the meta only)."""
        try:
            meta = json.loads((self.root / key / _META).read_text(encoding="utf-8"))
            columns = meta["columns"]
            return all(columns.get(n) == e for n, e in exprs.items())
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return False

    def _segment(self, folder: Path, seg: dict[str, Any]) -> pl.DataFrame:
        path = folder / seg["file"]
        data = path.read_bytes()
        if len(data) != seg["bytes"]:
            raise ValueError(f"{seg['file']}: {len(data)} bytes, the meta says {seg['bytes']}")
        if zlib.crc32(data) != seg["crc32"]:
            raise ValueError(f"{seg['file']}: checksum mismatch")
        return pl.read_ipc(data)

    # ------------------------------------------------------------ writing

    def write(self, key: str, data: TableData, about: dict[str, str]) -> None:
        """Store ``data`` whole (replacing what was stored under ``key``)."""
        self._update(key, data, about, delta=None)

    def append(
        self,
        key: str,
        data: TableData,
        delta: pl.DataFrame,
        about: dict[str, str],
        *,
        base: TableData,
    ) -> None:
        """Store ``data``, which is ``base`` plus ``delta``: only ``delta`` is written when what
        is stored is ``base`` (the same snapshot and columns); else ``data`` whole (another
        process may have written something else since)."""
        self._update(key, data, about, delta=delta, base=base)

    def _update(
        self,
        key: str,
        data: TableData,
        about: dict[str, str],
        delta: pl.DataFrame | None,
        base: TableData | None = None,
    ) -> None:
        if self.broken is not None:
            return
        try:
            with self._locked():
                folder = self.root / key
                old = _meta(folder)
                segments: list[dict[str, Any]]
                if (
                    delta is not None
                    and base is not None
                    and old is not None
                    and old.get("snapshot") == base.snapshot.text
                    and old.get("columns") == base.exprs == data.exprs
                    and old.get("rows") == base.rows
                    and base.rows + delta.height == data.rows
                    and len(old["segments"]) < _MAX_SEGMENTS
                ):
                    segments = list(old["segments"])
                    if delta.height:
                        segments.append(_write_segment(folder, delta))
                else:
                    segments = [_write_segment(folder, data.frame)]
                meta = {
                    "format": FORMAT,
                    **about,
                    "columns": data.exprs,
                    "rows": data.rows,
                    "snapshot": data.snapshot.text,
                    "window": list(data.window),
                    "files": data.files,
                    "attrs": data.attrs,
                    "segments": segments,
                }
                _write_file(folder / _META, json.dumps(meta, indent=1).encode())
                keep = {s["file"] for s in segments} | {_META}
                for path in folder.iterdir():
                    if path.name not in keep:
                        path.unlink(missing_ok=True)
                self._evict(keep_key=key)
        except TimeoutError as exc:
            logger.warning("fraiseql-nb: %s; not stored this time", exc)
        except OSError as exc:
            self.broken = f"{exc.strerror or exc} ({self.root})"
            warnings.warn(
                f"fraiseql-nb: the arrow store cannot be written ({self.broken}); loaded"
                " columns stay in memory only",
                RuntimeWarning,
                stacklevel=2,
            )

    # ------------------------------------------------------------ tables on disk

    def folder(self, key: str) -> Path:
        """Where a table answered from disk keeps its partitions (see :mod:`.disksync`)."""
        return self.root / f"{key}{PARTS_SUFFIX}"

    def put_meta(self, key: str, meta: dict[str, Any]) -> None:
        """Record a partitioned table's meta atomically, and remove the files it no longer
        names (a partition loaded again leaves its old segments)."""
        folder = self.folder(key)
        with self._locked():
            old = _meta(folder) or {}
            named = {s["file"] for s in meta["segments"]}
            now = time.time()
            retired = {
                str(r["file"]): float(r["at"])
                for r in old.get("retired") or ()
                if isinstance(r, dict) and now - float(r.get("at", 0)) < _RETIRE_S
            }
            for seg in old.get("segments") or ():
                if isinstance(seg, dict) and seg.get("file") not in named:
                    retired.setdefault(str(seg["file"]), now)
            retired = {f: at for f, at in retired.items() if f not in named}
            meta = {**meta, "retired": [{"file": f, "at": at} for f, at in retired.items()]}
            _write_file(folder / _META, json.dumps(meta, indent=1).encode())
            keep = named | set(retired) | {_META}
            for path in folder.iterdir():
                if path.name not in keep and (not path.name.startswith(".tmp-") or _stale(path)):
                    path.unlink(missing_ok=True)

    def room(self, key: str, nbytes: int) -> bool:
        """Whether ``nbytes`` more fit the budget next to the others (the least recently
        used of which are removed to make room), for the table under ``key``."""
        if sum(e.bytes for e in self.entries()) + nbytes <= self.budget:
            return True
        try:
            with self._locked():
                return self._evict(self.folder(key).name, nbytes, spare=True)
        except TimeoutError:
            return False

    # ------------------------------------------------------------ managing

    def entries(self) -> list[StoreEntry]:
        """What is stored, most recently used first."""
        out = []
        if not self.root.is_dir():
            return out
        for folder in self.root.iterdir():
            meta = _meta(folder) if folder.is_dir() else None
            if meta is None:
                continue
            try:
                out.append(
                    StoreEntry(
                        key=folder.name,
                        relation=str(meta.get("relation", "?")),
                        database=str(meta.get("database", "?")),
                        role=str(meta.get("role", "?")),
                        rows=int(meta.get("rows", 0)),
                        bytes=sum(int(s.get("bytes", 0)) for s in meta.get("segments") or ()),
                        columns=tuple(meta.get("columns") or {}),
                        snapshot=str(meta.get("snapshot", "")),
                        used=(folder / _META).stat().st_mtime,
                    )
                )
            except (TypeError, ValueError, AttributeError, OSError):
                continue  # a damaged meta: read() discards it when the table is asked for
        return sorted(out, key=lambda e: e.used, reverse=True)

    def remove(self, match: Callable[[StoreEntry], bool] = lambda e: True) -> Removal:
        """Remove the stored tables ``match`` selects (all by default), but those another
        process is loading or syncing now (their files are being read and written): what
        was removed, and what was left and why."""
        removed, in_use = 0, []
        try:
            with self._locked():
                for entry in self.entries():
                    if not match(entry):
                        continue
                    if self.in_use(entry.key):
                        in_use.append(entry.relation)
                        continue
                    shutil.rmtree(self.root / entry.key, ignore_errors=True)
                    removed += 1
        except TimeoutError:
            return Removal(removed, tuple(in_use), "the store's lock was held too long")
        except OSError as exc:
            return Removal(removed, tuple(in_use), exc.strerror or str(exc))
        return Removal(removed, tuple(in_use))

    def _evict(self, keep_key: str, extra: int = 0, *, spare: bool = False) -> bool:
        """Remove the least recently used entries until the store and ``extra`` bytes fit
        the budget, ``keep_key`` last (never, with ``spare``); whether they fit."""
        self._sweep_retired()
        entries = self.entries()
        total = sum(e.bytes for e in entries) + extra
        for entry in reversed(entries):  # least recently used first
            if total <= self.budget:
                break
            if entry.key == keep_key and (spare or total - entry.bytes > 0):
                continue
            if self.in_use(entry.key):
                continue  # another process is loading or syncing it
            shutil.rmtree(self.root / entry.key, ignore_errors=True)
            total -= entry.bytes
        return total <= self.budget

    def _sweep_retired(self) -> None:
        """Remove the replaced files kept for readers (:meth:`put_meta`) once their minute
        is over, in every table: one that is not written again would keep them."""
        now = time.time()
        for folder in self.root.iterdir() if self.root.is_dir() else ():
            meta = _meta(folder) if folder.is_dir() else None
            if not meta or not meta.get("retired"):
                continue
            named = {s.get("file") for s in meta.get("segments") or () if isinstance(s, dict)}
            for r in meta["retired"]:
                with contextlib.suppress(OSError, TypeError, ValueError, KeyError):
                    if r["file"] not in named and now - float(r["at"]) >= _RETIRE_S:
                        (folder / Path(str(r["file"])).name).unlink(missing_ok=True)

    def in_use(self, key: str) -> bool:
        """Whether a process holds the lock of the table stored under ``key`` now."""
        return key_held(self.root, key.removesuffix(PARTS_SUFFIX))

    def _discard(self, key: str, why: str) -> None:
        logger.warning("fraiseql-nb: stored columns %s are damaged (%s): loading again", key, why)
        with contextlib.suppress(OSError, TimeoutError), self._locked(_DISCARD_WAIT_S):
            shutil.rmtree(self.root / key, ignore_errors=True)

    @contextlib.contextmanager
    def _locked(self, timeout_s: float = 0.0) -> Iterator[None]:
        """The store's exclusive lock, waited for at most ``timeout_s`` (default
        ``_WRITE_WAIT_S``; another process may hold it long: a suspended kernel) — then
        TimeoutError, and the caller goes on without the store."""
        timeout_s = timeout_s or _WRITE_WAIT_S
        if not self._local.acquire(timeout=timeout_s):
            raise TimeoutError("the store is locked by another thread")
        try:
            _private_dir(self.root)
            fd = os.open(self.root / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                deadline = time.monotonic() + timeout_s
                while fcntl is not None:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() > deadline:
                            raise TimeoutError(f"the store {self.root} is locked") from None
                        time.sleep(0.05)
                yield
            finally:
                os.close(fd)  # releases the flock
        finally:
            self._local.release()


def auto_budget(root: Path, held: int = 0) -> int:
    """The default budget: half of what the store could use — the space free on its disk
    now and the ``held`` bytes it already holds (else each session would shrink the
    budget by what the last one stored, and evict it) — at least 1 GB."""
    probe = root
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        free = 0
    return max((free + held) // 2, 2**30)


#: A partition file being written is touched by every batch; one untouched this long was
#: left by a process that died while writing it.
_STALE_TMP_S = 3600.0


def _stale(path: Path) -> bool:
    try:
        return time.time() - path.stat().st_mtime > _STALE_TMP_S
    except OSError:
        return False


def _meta(folder: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((folder / _META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def _write_segment(folder: Path, frame: pl.DataFrame) -> dict[str, Any]:
    _private_dir(folder)
    name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}.arrow"
    handle = io.BytesIO()
    frame.write_ipc(handle)
    data = handle.getvalue()
    _write_file(folder / name, data)
    return {"file": name, "rows": frame.height, "bytes": len(data), "crc32": zlib.crc32(data)}


def _write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename), mode 0600."""
    _private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")  # created 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
