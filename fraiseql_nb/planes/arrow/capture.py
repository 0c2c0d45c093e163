"""Change capture: the committed changes of loaded fact tables, from PostgreSQL's logical
decoding, so keeping loaded columns exact costs what changed, not a scan of the table.

One per arrow plane (per session): a connection of its own holds a
**temporary** logical replication slot (``pgoutput``), which PostgreSQL drops
when that connection ends — a closed or killed session leaves no slot
retaining WAL on the server. The slot is made before any load it serves, so
every change committed after a load's snapshot is in the stream; changes the
load had seen already apply again harmlessly (:mod:`.changes`).

Before answering from a table's loaded columns the plane asks for the changes
committed up to that moment (``pg_current_wal_lsn()``): they are read from
the slot for every table it follows (kept per table until that table is
asked for) and the table's net change is handed over. Tables are published
one publication each, ``fraiseql_nb_<schema>_<table>``: stable across
sessions and sets of tables, shared by two sessions, recognisable to a DBA;
it is made only where this role owns the table (else ``[arrow_backend]
publication`` names one a DBA made).

Where capture cannot be had — ``wal_level`` below logical, a role without
the REPLICATION attribute, no free slot, a table without a primary key, with
row-level security, or columns this role may not read — the plane keeps its
scan (:mod:`.freshness`), and :attr:`Capture.reason` / :meth:`Capture.refusal`
say why.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any

import psycopg

from fraiseql_nb.config import Config
from fraiseql_nb.pg.db import error_text
from fraiseql_nb.pg.pool import connection_kwargs
from fraiseql_nb.planes.arrow.catalog import TableIdentity
from fraiseql_nb.planes.arrow.changes import TableChanges, positions_of
from fraiseql_nb.planes.arrow.pgoutput import decode, insert_key
from fraiseql_nb.planes.arrow.publication import publication_name, publish, server_refusal

__all__ = ["Capture", "publication_name"]

_SLOT_TIMEOUT_MS = 5_000  # a slot waits for running transactions to end: not for long
_FLUSH_WAIT_S = 2.0  # an asynchronous commit is flushed within the WAL writer's delay
_DRAIN_S = 5.0  # the slot is read this often while the session is idle
#: Changed rows kept for a table not asked about, at most: past this a reload is cheaper.
MAX_PENDING_ROWS = 1_000_000
#: Messages in one read past which inserted rows are read from the table by key
#: (measured: decoding a 10,000-row insert cost more than the whole query on PostgreSQL).
BULK_ROWS = 2_000


class Capture:
    """The session's change stream (see the module's description). Thread-safe."""

    def __init__(self, dsn: str, config: Config) -> None:
        self._dsn = dsn
        self._config = config
        self._lock = threading.RLock()
        self._conn: psycopg.Connection[Any] | None = None
        self.slot: str | None = None
        #: why the server offers no change capture here (None: it does, or not asked yet)
        self.reason: str | None = None
        self._checked = False
        self.epoch = 0  # slots made so far: a load is followed only from the slot before it
        self._publications: dict[int, str] = {}  # table oid -> its publication (prepared)
        self._keys: dict[int, list[str]] = {}  # table oid -> its key columns
        self._refused: dict[int, str] = {}  # table oid -> why not captured
        self._following: set[int] = set()  # tables whose loaded rows the stream carries on
        self._pending: dict[int, TableChanges] = {}  # prepared tables' changes not yet taken
        self._types: dict[tuple[tuple[int, int], ...], list[str]] = {}
        self._seen: dict[int, str] = {}  # tables asked about: oid -> schema.relation
        self._stop = threading.Event()  # ends the slot's drain thread
        self._closed = False
        self._loading: set[int] = set()  # tables being read: their changes are kept
        # Bumped when a table's kept changes are dropped: a load begun before is not
        # followed (it would miss them).
        self._generation: dict[int, int] = {}

    # ------------------------------------------------------------ setup

    def enabled(self) -> bool:
        return self._config.arrow_backend.change_capture

    def refusal(self, table: TableIdentity) -> str | None:
        """Why ``table``'s changes are not captured (None: they are, or can be)."""
        if not self.enabled():
            return "[arrow_backend] change_capture is off"
        with self._lock:
            if self._closed:  # a load finishing after the session closed: no new slot
                return "the session is closed"
            self._seen[table.oid] = table.relation
            self._check_server()
            if self.reason is not None:
                return self.reason
            if table.oid not in self._refused and table.oid not in self._publications:
                self._refused[table.oid] = self._prepare(table) or ""
            return self._refused[table.oid] or None

    def methods(self) -> dict[str, str]:
        """How each table asked about is kept exact: "capture", or "scan (why)"."""
        with self._lock:
            out = {}
            for oid, relation in self._seen.items():
                if oid in self._following and self._conn is not None:
                    out[relation] = "capture"
                else:
                    why = self._refused.get(oid) or self.reason
                    out[relation] = f"scan ({why})" if why else "scan (not yet followed)"
            return out

    def key_columns(self, table: TableIdentity) -> list[str]:
        """The table's primary key columns (captured tables only)."""
        return self._keys.get(table.oid, [])

    def _check_server(self) -> None:
        if self._checked:
            return
        self._checked = True
        try:
            with self._connect() as conn:
                self.reason = server_refusal(conn)
        except psycopg.Error as exc:
            self.reason = f"the server could not be asked ({error_text(exc)})"

    def _prepare(self, table: TableIdentity) -> str | None:
        """Make ``table`` followed (its publication, the slot); why not, if it cannot be."""
        try:
            with self._connect() as conn:
                published = publish(conn, table, self._config.arrow_backend.publication)
        except psycopg.Error as exc:
            return f"it could not be published ({error_text(exc)})"
        if isinstance(published, str):
            return published
        name, keys = published
        had_slot = self._conn is not None and not self._conn.closed
        problem = self._open_slot()
        if problem is not None:
            return problem
        if had_slot and self._publications and not self._consume():
            # PostgreSQL before 18 fails a read naming a publication younger than WAL it
            # decodes: what came before this one is read first, without it. That read
            # failed (the stream is gone, its tables are read again): a new slot.
            problem = self._open_slot()
            if problem is not None:
                return problem
        self._publications[table.oid] = name
        self._keys[table.oid] = keys
        return None

    def _open_slot(self) -> str | None:
        if self.slot is not None and self._conn is not None and not self._conn.closed:
            return None
        self._drop_connection()
        name = f"fraiseql_nb_{os.getpid()}_{os.urandom(4).hex()}"
        conn = None
        try:
            conn = self._connect(timeout_ms=_SLOT_TIMEOUT_MS)
            conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput', true)", (name,))
            # Reading a backlog may take longer than making the slot may (RESET would go
            # back to this connection's own startup option, the short one).
            conn.execute(
                "SELECT set_config('statement_timeout', %s, false)",
                (str(self._config.connections.statement_timeout_ms),),
            )
        except psycopg.Error as exc:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
            return f"no replication slot ({error_text(exc)})"
        self._conn, self.slot = conn, name
        self.epoch += 1
        self._pending.clear()
        self._stop = threading.Event()
        threading.Thread(
            target=self._drain, args=(self._stop,), name="fraiseql-capture", daemon=True
        ).start()
        return None

    def _connect(self, timeout_ms: int | None = None) -> psycopg.Connection[Any]:
        kwargs = connection_kwargs(self._dsn, self._config, application_name="fraiseql-nb capture")
        if timeout_ms is not None:
            kwargs["options"] += f" -c statement_timeout={timeout_ms}"
        return psycopg.connect(self._dsn, **kwargs)

    # ------------------------------------------------------------ changes

    def begin(self, table: TableIdentity) -> tuple[int, int] | None:
        """Before reading the table's rows: a token of the slot (and of the table's
        changes kept since) they will be followed by — None: they will not be — to hand
        to :meth:`synced` once read. From now on the table's changes are kept."""
        with self._lock:  # one hold: the slot cannot change between the two
            if self.refusal(table) is not None or self._conn is None:
                return None
            self._loading.add(table.oid)
            return (self.epoch, self._generation.get(table.oid, 0))

    def synced(self, table: TableIdentity, token: tuple[int, int] | None) -> bool:
        """The table's rows were read exactly, at a snapshot taken after ``begin`` gave
        ``token``: from now on the stream carries them on — unless the slot changed, or
        the table's kept changes were dropped meanwhile (then False)."""
        with self._lock:
            self._loading.discard(table.oid)
            current = (self.epoch, self._generation.get(table.oid, 0))
            if token is None or token != current or not self._published(table):
                return False
            self._following.add(table.oid)
            return True

    def follows(self, table: TableIdentity) -> bool:
        with self._lock:
            return table.oid in self._following and self._published(table)

    def _published(self, table: TableIdentity) -> bool:
        return self._conn is not None and table.oid in self._publications

    def columns(self, changes: TableChanges) -> list[tuple[str, str]] | None:
        """The changed table's columns and their SQL types, as the stream sent them."""
        shape = changes.shape
        if shape is None:
            return None
        signature = tuple((c.type_oid, c.typmod) for c in shape.columns)
        with self._lock:
            if signature not in self._types:
                if self._conn is None:
                    return None
                try:
                    rows = self._conn.execute(
                        "SELECT format_type(t, m) FROM unnest(%s::oid[], %s::int[])"
                        " WITH ORDINALITY AS x(t, m, n) ORDER BY n",
                        ([t for t, _ in signature], [m for _, m in signature]),
                    ).fetchall()
                except psycopg.Error:  # the stream's connection is gone: so is the stream
                    self._drop_connection()
                    return None
                self._types[signature] = [r[0] for r in rows]
            types = self._types[signature]
        return [(c.name, t) for c, t in zip(shape.columns, types, strict=True)]

    def take(self, table: TableIdentity) -> TableChanges | None:
        """The table's changes committed up to now since the last take (None: the stream
        is gone — the slot's connection dropped — or held too much for the table, which
        must then be read again)."""
        with self._lock:
            if not self._consume() or table.oid not in self._following:
                return None
            if not self._published(table):
                return None
            return self._pending.pop(table.oid, TableChanges())

    def _consume(self) -> bool:
        """Read the slot up to now into each prepared table's pending changes (False: the
        stream is gone). A table whose pending changes grow past what a reload costs
        stops being followed (and its changes are dropped): the slot never holds WAL,
        nor this process memory, for a table no one asks about."""
        if self._conn is None or self._conn.closed:
            return False
        publications = sorted(set(self._publications.values()))
        kept = self._loading | self._following
        try:
            upto = self._flushed()
            rows = self._conn.execute(
                "SELECT data FROM pg_logical_slot_get_binary_changes(%s,"
                " %s::pg_lsn, NULL, 'proto_version', '1', 'publication_names', %s)",
                (self.slot, upto, ",".join(publications)),
            ).fetchall()
            bulk = len(rows) > BULK_ROWS
            for (data,) in rows:
                if bulk and data[0] == 0x49:  # an insert of a bulk change: its key only
                    oid = int.from_bytes(data[1:5], "big")
                    pending = self._pending.get(oid)
                    if oid not in kept:
                        continue
                    if pending is not None and positions_of(pending):
                        found = insert_key(data, positions_of(pending))
                        if found is not None:
                            pending.inserted(found[1])
                            continue
                change = decode(data)
                if change is None:
                    continue
                for oid in change.relations or (change.relation,):
                    if oid in kept:
                        self._pending.setdefault(oid, TableChanges()).add(change)
        except Exception:  # noqa: BLE001 - the slot was read: a half-read batch is a gap
            self._drop_connection()  # everything is read again
            return False
        for oid, pending in list(self._pending.items()):
            if pending.unusable or len(pending.rows) > MAX_PENDING_ROWS:
                del self._pending[oid]
                self._following.discard(oid)
                self._generation[oid] = self._generation.get(oid, 0) + 1  # a load on the way
        return True

    def _flushed(self) -> str:
        """The WAL position every commit seen so far lies before, once it is on disk:
        logical decoding reads flushed WAL only, and a commit made with
        ``synchronous_commit = off`` is visible before it is flushed."""
        assert self._conn is not None
        row = self._conn.execute(
            "SELECT pg_current_wal_insert_lsn()::text,"
            " pg_current_wal_flush_lsn() >= pg_current_wal_insert_lsn()"
        ).fetchone()
        assert row is not None
        target, flushed = row
        deadline = time.monotonic() + _FLUSH_WAIT_S
        while not flushed and time.monotonic() < deadline:
            time.sleep(0.002)
            again = self._conn.execute(
                "SELECT pg_current_wal_flush_lsn() >= %s::pg_lsn", (target,)
            ).fetchone()
            flushed = bool(again and again[0])
        return str(target)

    def _drain(self, stop: threading.Event) -> None:
        """Every few seconds, read the slot (so it retains little WAL on the server while
        the session is idle)."""
        while not stop.wait(_DRAIN_S):
            with self._lock:
                if self._stop is not stop:
                    return
                self._consume()

    def forget(self, table: TableIdentity) -> None:
        """The table's loaded rows are gone or read again: stop carrying them on."""
        with self._lock:
            self._following.discard(table.oid)
            if table.oid not in self._loading:
                self._pending.pop(table.oid, None)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._drop_connection()

    def _drop_connection(self) -> None:
        self._stop.set()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                if self.slot is not None and not self._conn.closed:
                    # At once, not when the server notices the connection ended: the
                    # database can be dropped right after the session closes.
                    self._conn.execute("SELECT pg_drop_replication_slot(%s)", (self.slot,))
            with contextlib.suppress(Exception):
                self._conn.close()  # the temporary slot would go with it anyway
        self._conn, self.slot = None, None
        self._publications.clear()
        self._refused.clear()
        self._following.clear()
        self._loading.clear()
        self._pending.clear()
