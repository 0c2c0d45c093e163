"""What a cluster worker runs: load one partition, compute its part of a query, or a
shuffled bucket. Plain functions of plain values (:mod:`.tasks` makes them Ray tasks).

A load opens its own ADBC connection — read-only, the session's statement timeout and
time zone (:func:`~fraiseql_nb.pg.pool.connection_kwargs`), as the session's role (``SET
LOCAL ROLE`` when a replica's login is another user, so a worker never reads what the
session could not) — and reads the partition's pages in one REPEATABLE READ
transaction whose snapshot it returns: the driver checks each partition's freshness
against it (:mod:`.freshness`).

The DSN arrives as a :class:`Secret` from the object store, never as text in a task's
name, arguments shown by Ray, logs or errors.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import polars as pl
import pyarrow as pa
from psycopg import sql
from psycopg.conninfo import make_conninfo

from fraiseql_nb.compute.aggregate import groups
from fraiseql_nb.compute.merge import partial, prepare, split
from fraiseql_nb.compute.skipping import bounds
from fraiseql_nb.compute.window import window_values
from fraiseql_nb.config import Config
from fraiseql_nb.errors import BackendError
from fraiseql_nb.pg.conninfo import mask_dsn, redact, secrets_of
from fraiseql_nb.pg.pool import connection_kwargs
from fraiseql_nb.planes.arrow.adbc import (
    cursor,
    failures,
    in_snapshot,
    repeatable_read,
    scalars,
)
from fraiseql_nb.planes.arrow.engine import computing
from fraiseql_nb.planes.arrow.typed import to_frame
from fraiseql_nb.query.ir import AggregateQuery, WindowQuery
from fraiseql_nb.schema.model import FactTable

__all__ = [
    "LoadSpec",
    "Rows",
    "Secret",
    "compute_part",
    "load_partition",
    "reduce_bucket",
    "split_part",
]

#: Fault injection for tests: a file whose text is the seconds a compute task sleeps
#: first (so a test can kill its worker mid-query). The variable is read from the
#: worker's environment; unset in normal use.
ENV_DELAY = "FRAISEQL_CLUSTER_DELAY_FILE"
_WHO = "SELECT current_user::text AS u, pg_current_snapshot()::text AS s"


class Secret:
    """A DSN that never shows: its repr and str are masked (Ray prints arguments so)."""

    __slots__ = ("dsn",)

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def __repr__(self) -> str:
        return f"Secret({mask_dsn(self.dsn)!r})"

    __str__ = __repr__


@dataclass(frozen=True)
class LoadSpec:
    """One partition's load: no secret in it (it is shown in errors and explain)."""

    fact: FactTable
    statement: str  # the COPY query, its page range included
    index: int
    pages: str  # "0–127", for messages
    server: int  # -1: the session's database; else the replica's position
    role: str
    row_security: str
    exact_decimals: bool
    config: Config
    snapshot_id: str = ""  # the driver's exported snapshot: every partition at one instant

    @property
    def where(self) -> str:
        place = "the primary" if self.server < 0 else f"replica {self.server + 1}"
        rel = f"{self.fact.schema}.{self.fact.relation}"
        return f"partition {self.index} of {rel} (pages {self.pages}) on {place}"


class Rows:
    """A loaded partition as it sits in Ray's object store: Arrow in its newest layout
    (string views, Polars' own), so a query reads it without converting its text —
    measured 0.6 against 6 ms a partition. Ray's own reducer for Arrow tables does not
    know string views: this one writes an Arrow IPC stream, which a reader maps back
    without a copy."""

    __slots__ = ("table",)

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    def __reduce__(self) -> tuple[Any, tuple[pa.Buffer]]:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, self.table.schema) as writer:
            writer.write_table(self.table)
        return _rows, (sink.getvalue(),)


def _rows(buffer: pa.Buffer) -> Rows:
    return Rows(pa.ipc.open_stream(buffer).read_all())


def load_partition(secret: Secret, spec: LoadSpec) -> tuple[Rows, dict[str, Any]]:
    """The partition's rows as Arrow, and what the driver keeps of it (rows, snapshot…)."""
    import adbc_driver_postgresql.dbapi as adbc

    dsn, config, fact = secret.dsn, spec.config, spec.fact
    settings = connection_kwargs(dsn, config, application_name="fraiseql-nb cluster")
    settings.pop("autocommit")
    started = time.perf_counter()
    try:
        try:
            conn = adbc.connect(make_conninfo(dsn, **settings), autocommit=True)
        except Exception as exc:  # noqa: BLE001 - ADBC raises its own DB-API hierarchy
            raise BackendError(redact(" ".join(str(exc).split()), secrets_of(dsn))) from None
        try:
            with (
                failures(fact, dsn, config),
                cursor(conn, None) as cur,
                in_snapshot(cur, spec.snapshot_id) if spec.snapshot_id else repeatable_read(cur),
            ):
                who = scalars(
                    cur, "SELECT current_user::text AS u, pg_current_snapshot()::text AS s"
                )
                if who["u"] != spec.role:
                    cur.execute(
                        sql.SQL("SET LOCAL ROLE {}")
                        .format(sql.Identifier(spec.role))
                        .as_string(None)
                    )
                cur.execute(
                    sql.SQL("SET LOCAL row_security = {}")
                    .format(sql.Literal(spec.row_security))
                    .as_string(None)
                )
                cur.execute(spec.statement)
                arrow = cur.fetch_arrow_table()
        finally:
            conn.close()
    except BackendError as exc:
        raise BackendError(f"{spec.where}: {exc}", secrets=secrets_of(dsn)) from None
    plain = pa.schema([pa.field(f.name, f.type, f.nullable) for f in arrow.schema])
    arrow = arrow.replace_schema_metadata(None).cast(plain)
    frame = to_frame(arrow, fact, exact_decimals=spec.exact_decimals, categorical=False)
    out = Rows(frame.to_arrow(compat_level=pl.CompatLevel.newest()))
    return out, {
        "rows": frame.height,
        "snapshot": who["s"],
        "bytes": arrow.nbytes,
        "seconds": time.perf_counter() - started,
        "node": _node(),
        "schema": dict(frame.schema),
        "bounds": bounds(frame),  # by which a query's filter skips the partition
    }


def _node() -> str:
    try:
        import ray

        if not ray.is_initialized():  # a direct call: asking would start a Ray
            return ""
        return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - outside Ray (a direct call in a test)
        return ""


def _frame(rows: Rows, casts: dict[str, int]) -> pl.DataFrame:
    """A partition as Polars, its decimals widened to the scale every partition shares."""
    delay_file = os.environ.get(ENV_DELAY)
    if delay_file and os.path.exists(delay_file):
        with open(delay_file) as f:
            time.sleep(float(f.read() or 0))
    frame = pl.from_arrow(rows.table)
    assert isinstance(frame, pl.DataFrame)
    if casts:
        frame = frame.with_columns(
            [pl.col(n).cast(pl.Decimal(38, s)) for n, s in casts.items() if n in frame.columns]
        )
    return frame


def compute_part(
    rows: Rows, query: AggregateQuery, casts: dict[str, int], timezone: str, columns: list[str]
) -> pl.DataFrame:
    """One partition's part of every group of a mergeable aggregate (``columns``: the
    query's)."""
    with computing():
        return partial(prepare(_frame(rows, casts), query, timezone, columns), query, timezone)


def split_part(
    rows: Rows,
    query: AggregateQuery | WindowQuery,
    casts: dict[str, int],
    timezone: str,
    keys: list[str],
    buckets: int,
    columns: list[str],
) -> tuple[pl.DataFrame, ...] | pl.DataFrame:
    """One partition's filtered rows — the query's ``columns`` only — in ``buckets``
    parts by the shuffle keys."""
    with computing():
        parts = split(prepare(_frame(rows, casts), query, timezone, columns), keys, buckets)
    return tuple(parts) if buckets > 1 else parts[0]  # Ray: one return is the value itself


def reduce_bucket(
    query: AggregateQuery | WindowQuery, fact: FactTable, timezone: str, *parts: pl.DataFrame
) -> pl.DataFrame:
    """Every partition's rows of one bucket (in partition order), computed whole: its
    groups, or its rows with their window values."""
    with computing():
        frame = pl.concat(list(parts), how="vertical_relaxed")
        if isinstance(query, AggregateQuery):
            return groups(frame, query, timezone)
        return window_values(frame, query, fact, timezone)
