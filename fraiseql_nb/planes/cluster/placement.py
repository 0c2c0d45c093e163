"""A fact table's partitions on the cluster: planned (ranges of its heap pages), loaded
by the workers into Ray's object store, and kept exact.

Freshness is the arrow plane's rule, per partition: each partition records the
snapshot it was read in. When no transaction ran since (same snapshot), it is
current. Otherwise one statement, one scan, counts per partition its rows now and
the row versions its snapshot did not see; a partition with any, or whose count
moved, is reloaded — in the snapshot of that check, exported to the workers, so
that every partition is exact at one instant. A table under row-level security
reloads on any commit (what it shows may change with other tables).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any

import polars as pl
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from fraiseql_nb.config import Config
from fraiseql_nb.errors import BackendError, FraiseQLError
from fraiseql_nb.planes.arrow.adbc import BEGIN_READ
from fraiseql_nb.planes.arrow.catalog import Catalog, TableIdentity
from fraiseql_nb.planes.arrow.freshness import new_rows, parse_snapshot
from fraiseql_nb.planes.arrow.partitions import page_range, partition_of, plan
from fraiseql_nb.planes.cluster import runtime
from fraiseql_nb.planes.cluster.work import LoadSpec, Secret
from fraiseql_nb.schema.model import FactTable
from fraiseql_nb.sql.facts import compile_load, loadable_columns

__all__ = ["Held", "Part", "Placement", "every_column", "replica_dsn"]

_PAGE_BYTES = 8192
_PAGES = "SELECT (pg_relation_size(%s::regclass) / current_setting('block_size')::int)::bigint"


@dataclass(frozen=True)
class Part:
    """One loaded partition: where its rows are (an object of Ray's store) and what they were."""

    ref: Any
    rows: int
    snapshot: str
    node: str
    bytes: int
    seconds: float
    schema: dict[str, Any]  # Polars dtypes as loaded
    #: its columns' least and greatest values and NULLs (:func:`.compute.skipping.bounds`)
    bounds: dict[str, list[Any]] | None = None


@dataclass(frozen=True)
class Held:
    """A table's partitions on the cluster."""

    starts: tuple[int, ...]
    names: tuple[str, ...]
    parts: tuple[Part, ...]
    files: str
    attrs: str
    schema: dict[str, Any]  # Polars dtypes, after the casts
    casts: dict[str, int]  # decimal columns widened to the scale every partition shares

    @property
    def workers(self) -> int:
        return len({p.node for p in self.parts}) or 1


class Placement:
    """The tables' partitions held on the cluster, by table key (thread-safe)."""

    def __init__(
        self, catalog: Catalog, config: Config, servers: list[str], secrets: tuple[str, ...]
    ) -> None:
        self._catalog = catalog
        self.config = config
        self._servers = servers
        self._secrets = secrets
        self._secret_refs: list[Any] = []
        self._held: dict[str, Held] = {}
        self._lock = threading.Lock()
        self.loads = 0

    def held(self, key: str) -> Held | None:
        return self._held.get(key)

    def drop(self, key: str) -> None:
        with self._lock:
            self._held.pop(key, None)

    def clear(self) -> None:
        """Let go of every partition (not under the lock: a load holds it)."""
        self._held.clear()
        self._secret_refs = []

    def tables(self) -> list[Held]:
        return list(self._held.copy().values())

    def current(
        self, fact: FactTable, table: TableIdentity, names: list[str]
    ) -> tuple[Held, int, str]:
        """The table's partitions exact now, the bytes loaded for that and what was sent."""
        with self._lock:
            version = self._catalog.version(fact)
            held = self._held.get(table.key)
            names = every_column(fact, names)
            if held is not None and (held.files, held.attrs) != (version.files, version.attrs):
                held = None  # rewritten or altered: start over
            if held is not None and not set(names) <= set(held.names):
                names = list(dict.fromkeys([*names, *held.names]))
                held = None
            if held is not None and all(p.snapshot == version.snapshot for p in held.parts):
                return held, 0, ""  # no transaction ran since: exact
            with self._catalog.connection(fact) as conn:
                conn.execute(BEGIN_READ)
                try:
                    row = conn.execute(
                        "SELECT pg_current_snapshot()::text, pg_export_snapshot()"
                    ).fetchone()
                    assert row is not None
                    now, exported = row
                    if held is None:
                        starts = self.plan(fact, conn)
                        stale = list(range(len(starts)))
                    else:
                        starts = list(held.starts)
                        stale = self._stale(conn, fact, table, held, now)
                    if held is not None and not stale:
                        verified = held
                        if not parse_snapshot(now).has_window:
                            parts = tuple(replace(p, snapshot=now) for p in held.parts)
                            verified = replace(held, parts=parts)
                        self._held[table.key] = verified
                        return verified, 0, ""
                    specs = self.specs(
                        fact, table, list(held.names if held else names), starts, stale, exported
                    )
                    fresh = self._load(specs)
                finally:
                    conn.execute("COMMIT")
            old = list(held.parts) if held is not None else [None] * len(starts)
            for i, part in zip(stale, fresh, strict=True):
                old[i] = part
            parts = tuple(p for p in old if p is not None)
            schema, casts = _schema([p.schema for p in parts])
            held = Held(
                starts=tuple(starts),
                names=tuple(held.names if held else names),
                parts=parts,
                files=version.files,
                attrs=version.attrs,
                schema=schema,
                casts=casts,
            )
            self._held[table.key] = held
            text = f"{len(stale)} of {len(starts)} partitions: {specs[0].statement} …"
            return held, sum(p.bytes for p in fresh), text

    def plan(self, fact: FactTable, conn: Any = None) -> list[int]:
        """The first page of each partition: ``[cluster] partitions``, else two per CPU."""
        rel = sql.Identifier(fact.schema, fact.relation).as_string(None)
        if conn is None:
            with self._catalog.connection(fact) as c:
                pages = int(c.execute(_PAGES, (rel,)).fetchone()[0])
        else:
            pages = int(conn.execute(_PAGES, (rel,)).fetchone()[0])
        wanted = self.config.cluster.partitions
        if wanted:
            count = max(1, min(wanted, pages))
            return sorted({(pages * i) // count for i in range(count)})
        return plan(pages, _PAGE_BYTES, max(1, runtime.workers()[1]))

    def specs(
        self,
        fact: FactTable,
        table: TableIdentity,
        names: list[str],
        starts: list[int],
        indexes: Any,
        exported: str,
    ) -> list[LoadSpec]:
        exact = self.config.arrow_backend.exact_decimals
        replicas = len(self._servers) - 1
        specs = []
        for i in indexes:
            server = i % replicas if replicas else -1
            end = f"{starts[i + 1] - 1}" if i + 1 < len(starts) else "end"
            statement = compile_load(
                fact, names, where=page_range(starts, i), exact_decimals=exact
            ).as_string(None)
            specs.append(
                LoadSpec(
                    fact=fact,
                    statement=statement,
                    index=i,
                    pages=f"{starts[i]}–{end}",
                    server=server,
                    role=table.role,
                    row_security=table.row_security,
                    exact_decimals=exact,
                    config=self.config,
                    snapshot_id=exported if server < 0 else "",
                )
            )
        return specs

    def _load(self, specs: list[LoadSpec]) -> list[Part]:
        """Load the partitions of ``specs`` on the workers (spread over the nodes)."""
        import ray

        if not self._secret_refs:
            self._secret_refs = [ray.put(Secret(d)) for d in self._servers]
        t = runtime.tasks()
        rel = f"{specs[0].fact.schema}.{specs[0].fact.relation}"
        pending = [
            t.load.options(num_returns=2, name=f"fraiseql-nb load {rel} p{s.index}").remote(
                self._secret_refs[s.server + 1], s
            )
            for s in specs
        ]
        self.loads += 1
        parts = []
        for spec, (data, meta) in zip(specs, pending, strict=True):
            try:
                got = ray.get(meta)
            except ray.exceptions.RayTaskError as exc:
                cause = getattr(exc, "cause", None)
                detail = cause.message if isinstance(cause, FraiseQLError) else str(cause or exc)
                if not detail.startswith(spec.where):
                    detail = f"{spec.where}: {detail}"
                raise BackendError(detail, secrets=self._secrets) from None
            except ray.exceptions.RayError as exc:
                raise BackendError(
                    f"{spec.where}: the worker was lost ({type(exc).__name__})",
                    secrets=self._secrets,
                ) from None
            parts.append(
                Part(
                    ref=data,
                    rows=got["rows"],
                    snapshot=got["snapshot"],
                    node=got["node"],
                    bytes=got["bytes"],
                    seconds=got["seconds"],
                    schema=got["schema"],
                    bounds=got.get("bounds"),
                )
            )
        return parts

    def _stale(
        self, conn: Any, fact: FactTable, table: TableIdentity, held: Held, now: str
    ) -> list[int]:
        """The partitions not proven unchanged since their snapshot (one scan)."""
        every = list(range(len(held.parts)))
        if table.rls:
            return every
        current = parse_snapshot(now)
        snaps = sorted({p.snapshot for p in held.parts})
        added = sql.SQL(", ").join(
            sql.SQL("count(*) FILTER (WHERE {})::bigint").format(
                new_rows(parse_snapshot(s), current)
            )
            for s in snaps
        )
        statement = sql.SQL("SELECT {p} AS p, count(*)::bigint, {a} FROM {rel} GROUP BY 1").format(
            p=partition_of(list(held.starts)),
            a=added,
            rel=sql.Identifier(fact.schema, fact.relation),
        )
        counts = {int(r[0]): (int(r[1]), [int(x) for x in r[2:]]) for r in conn.execute(statement)}
        stale = []
        for i, p in enumerate(held.parts):
            total, news = counts.get(i, (0, [0] * len(snaps)))
            new = news[snaps.index(p.snapshot)]
            window = parse_snapshot(p.snapshot).has_window and p.snapshot != now
            if window or new > 0 or total - new != p.rows:
                stale.append(i)
        return stale


def every_column(fact: FactTable, names: Any) -> list[str]:
    """Every loadable column, and ``names``: a table on the cluster is big, and a later
    query needing one more column would otherwise reload all of it."""
    return list(dict.fromkeys([*loadable_columns(fact), *names]))


def replica_dsn(replica: str, session: str) -> str:
    """A replica's DSN with the session's own ``options`` too (settings such as the
    tenant a row-level security policy reads), so that it sees what the session sees."""
    ours = conninfo_to_dict(session).get("options")
    if not ours:
        return replica
    theirs = conninfo_to_dict(replica).get("options")
    return make_conninfo(replica, options=f"{theirs} {ours}" if theirs else ours)


def _schema(schemas: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, int]]:
    """The columns' dtypes across partitions: a decimal takes the widest scale any has."""
    out: dict[str, Any] = dict(schemas[0]) if schemas else {}
    casts: dict[str, int] = {}
    for name, dtype in out.items():
        if isinstance(dtype, pl.Decimal):
            scales = {s[name].scale for s in schemas if isinstance(s.get(name), pl.Decimal)}
            widest = max(scales)
            out[name] = pl.Decimal(38, widest)
            if len(scales) > 1:
                casts[name] = widest
    return out, casts
