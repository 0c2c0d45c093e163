"""Query results: a DataFrame (or Arrow table) plus which plane ran it and what it cost."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import polars as pl
import pyarrow as pa

from fraiseql_nb.errors import QueryError
from fraiseql_nb.ops.telemetry import QueryMetrics

if TYPE_CHECKING:
    from fraiseql_nb.planes.contract import Storage

__all__ = ["Result", "Results", "introspection_result", "measured"]


class Result:
    """The answer to one root field.

    Attributes:
        key: the root field's alias or name.
        kind: "rows", "aggregate", "window" or "introspection".
        backend: the plane that ran it ("schema" for introspection, answered without SQL).
        metrics: what it cost (:class:`~fraiseql_nb.ops.telemetry.QueryMetrics`).
        sql: the SQL that ran, values inlined.
        reason: why the router chose that plane (e.g. "cached", "row query").

    Immutable once built: :meth:`evolve` returns a copy with more said about it (the
    session adds the routing reason, the plane how it computed the answer).
    """

    #: What :meth:`evolve` may set, and the attribute each is kept in.
    _EVOLVES: ClassVar[dict[str, str]] = {
        "reason": "reason",
        "storage": "storage",
        "cluster": "cluster",
        "partitions": "partitions",
        "limited": "limited",
        "units": "units",
        "as_of": "as_of",
        "postgres_sql": "postgres_sql",
        "value": "value",
        "explain": "_explain",
        "engine": "_engine",
    }
    #: Caches filled when first asked for (the frame as Arrow and back, the plan's text).
    _CACHES: ClassVar[frozenset[str]] = frozenset({"_frame", "_table", "_plan"})

    def __init__(
        self,
        *,
        key: str,
        kind: str,
        backend: str,
        metrics: QueryMetrics,
        frame: pl.DataFrame | None = None,
        table: pa.Table | None = None,
        next_page: Callable[[], Result | None] | None = None,
        single: bool = False,
        value: Any = None,
    ) -> None:
        if frame is None and table is None:
            raise ValueError("a Result needs a frame or a table")
        self.key = key
        self.kind = kind
        self.backend = backend
        self.metrics = metrics
        self._frame = frame
        self._table = table
        self._next_page = next_page
        self.single = single  # answers a single query (``user(id: …)``): one object or null
        self.value = value  # an introspection answer, as graphql-core gave it
        self.reason = ""
        self.storage = ""  # "disk": the arrow plane answered from its partitions on disk
        #: the cluster plane: ``{"workers": nodes that hold the table, "partitions": P}``
        self.cluster: dict[str, int] | None = None
        #: answered from partitions (on disk, on the cluster): ``{"read", "skipped", "total"}``
        #: — partitions read, skipped by their statistics (the filter rules them out), in all
        self.partitions: dict[str, int] | None = None
        self.limited: int | None = None  # the limit a notebook option added, if any
        #: columns in another column's unit (``previous: lag(field: revenue)``): shown alike
        self.units: dict[str, str] = {}
        #: answered from rows trusted without a check (``[arrow_backend] cache_ttl_s``):
        #: when they were last proven current; None when the answer is exact now
        self.as_of: dt.datetime | None = None
        #: an arrow or cluster answer: the statement that answers the same on PostgreSQL
        self.postgres_sql = ""
        self._explain: Callable[[str], str] | None = None  # the session's EXPLAIN
        self._plan: str | None = None
        #: an arrow or cluster answer: says how it was computed (asked for when shown)
        self._engine: Callable[[], str] | None = None
        self._sealed = True

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_sealed", False) and name not in self._CACHES:
            raise AttributeError(
                f"a Result is immutable once built: use evolve({name.lstrip('_')}=…)"
            )
        object.__setattr__(self, name, value)

    def evolve(self, *, constants: tuple[tuple[int, str, str], ...] = (), **changes: Any) -> Result:
        """A copy of this result with ``changes`` (see :attr:`_EVOLVES`), and constant text
        columns inserted (position, name, value): ``__typename`` fields, which no plane
        computes. The rows are shared, not copied."""
        unknown = set(changes) - set(self._EVOLVES)
        if unknown:
            raise TypeError(f"Result.evolve() does not set {', '.join(sorted(unknown))}")
        copy = object.__new__(Result)
        object.__setattr__(copy, "__dict__", dict(self.__dict__))
        for name, value in changes.items():
            object.__setattr__(copy, self._EVOLVES[name], value)
        if constants:
            frame = copy.df.clone()  # insert_column changes its frame: not the original's
            for position, name, value in constants:
                column = pl.Series(name, [value] * frame.height, dtype=pl.String)
                frame = frame.insert_column(min(position, frame.width), column)
            object.__setattr__(copy, "_frame", frame)
            object.__setattr__(copy, "_table", None)
        return copy

    @property
    def sql(self) -> str:
        return self.metrics.sql

    @property
    def df(self) -> pl.DataFrame:
        """The result as a Polars DataFrame."""
        if self._frame is None:
            assert self._table is not None
            frame = pl.from_arrow(self._table)
            assert isinstance(frame, pl.DataFrame)
            self._frame = frame
        return self._frame

    def to_arrow(self) -> pa.Table:
        """The result as a pyarrow Table."""
        if self._table is None:
            self._table = self.df.to_arrow()
        return self._table

    def to_dicts(self) -> list[dict[str, Any]]:
        """One dict per row, values as JSON would carry them (timestamps as ISO text)."""
        return [_jsonable(row) for row in self.df.to_dicts()]

    def to_graphql(self) -> dict[str, Any]:
        """``{"data": {key: [...]}}``, as a GraphQL server would answer (with
        ``"extensions": {"asOf": {key: time}}`` for an answer from trusted rows)."""
        return _with_as_of({"data": {self.key: self._graphql_value()}}, [self])

    def _graphql_value(self) -> Any:
        if self.kind == "introspection":
            return self.value
        rows = self.to_dicts()
        if self.single:
            return rows[0] if rows else None
        return rows

    def chart(
        self,
        x: str | None = None,
        y: str | None = None,
        color: str | None = None,
        kind: str | None = None,
    ) -> Any:
        """A chart of the result that draws offline (Vega-Lite v5, and SVG): ``y`` (default:
        the first measure) over ``x`` (default: the first key); a line over time, else bars.
        ``kind``: "bar", "line", "point" or "area"; ``color``: a column splitting the series.

        Raises:
            QueryError: a column is not in the result, or nothing can be plotted.
        """
        from fraiseql_nb.charts import chart_for

        try:
            return chart_for(self.df, x, y, color, kind)
        except ValueError as exc:
            raise QueryError(f"{self.key}: {exc}") from None

    def plan(self) -> str:
        """PostgreSQL's plan (``EXPLAIN``, nothing run) of the statement that answered, or,
        for an arrow or cluster answer, of the statement that answers the same in PostgreSQL;
        "" when there is none (introspection).

        Raises:
            QueryError: the session is closed.
            BackendError: the database could not plan it.
        """
        statement = self.postgres_sql or self.sql
        if self._plan is None:
            self._plan = self._explain(statement) if self._explain and statement else ""
        return self._plan

    def engine_plan(self) -> str:
        """How the arrow or cluster plane computed the answer: where the rows were (memory,
        partitions on disk, workers) and Polars' plan (nothing is run); "" for an answer
        PostgreSQL computed."""
        if self._engine is None:
            return ""
        try:
            return self._engine()
        except Exception as exc:  # noqa: BLE001 - an explanation must not fail the display
            return f"(no plan: {type(exc).__name__}: {exc})"

    def next_page(self) -> Result | None:
        """The next page of a paged row query (keyset paging), or None after the last page."""
        if self._next_page is None:
            raise QueryError("next_page() needs a row query with a limit; this result is not paged")
        return self._next_page()

    def __len__(self) -> int:
        return self.df.height

    def __repr__(self) -> str:
        m = self.metrics
        return (
            f"<Result {self.key}: {m.rows:,} rows via {self.backend} in {m.duration_ms:.1f} ms"
            f"{'' if m.cache_hit is None else ' cache ' + ('hit' if m.cache_hit else 'miss')}>"
        )


def _with_as_of(body: dict[str, Any], results: list[Result]) -> dict[str, Any]:
    """Say which answers came from rows trusted without a check, and as of when."""
    stale = {r.key: r.as_of.isoformat() for r in results if r.as_of is not None}
    if stale:
        body["extensions"] = {"asOf": stale}
    return body


def measured(
    *,
    key: str,
    kind: str,
    backend: str,
    frame: pl.DataFrame,
    started: float,
    first_row_at: float | None = None,
    received: int = 0,
    sql: str = "",
    cache_hit: bool | None = None,
    next_page: Callable[[], Result | None] | None = None,
    single: bool = False,
    storage: Storage = "",
) -> Result:
    """A plane's Result with its metrics, timed from ``started`` (``time.perf_counter()``)
    to now: the one way every plane reports what a query cost."""
    done = time.perf_counter()
    metrics = QueryMetrics(
        backend=backend,
        kind=kind,
        root_field=key,
        duration_ms=(done - started) * 1e3,
        ttfr_ms=((first_row_at if first_row_at is not None else done) - started) * 1e3,
        rows=frame.height,
        bytes=received,
        result_bytes=int(frame.estimated_size()),
        cache_hit=cache_hit,
        sql=sql,
    )
    result = Result(
        key=key,
        kind=kind,
        backend=backend,
        metrics=metrics,
        frame=frame,
        next_page=next_page,
        single=single,
    )
    return result.evolve(storage=storage) if storage else result


def introspection_result(key: str, value: Any, started: float) -> Result:
    """The Result of an introspection root field: graphql-core's answer, also as one row
    of JSON text for the notebook's table."""
    frame = pl.DataFrame({key: [json.dumps(value)]}, schema={key: pl.String})
    result = measured(key=key, kind="introspection", backend="schema", frame=frame, started=started)
    return result.evolve(value=value)


class Results(Mapping[str, Result]):
    """The results of a document with several root fields, by alias or name, in order."""

    def __init__(self, results: list[Result]) -> None:
        self._results = {r.key: r for r in results}

    def __getitem__(self, key: str) -> Result:
        return self._results[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._results)

    def __len__(self) -> int:
        return len(self._results)

    def to_graphql(self) -> dict[str, Any]:
        body = {"data": {k: r._graphql_value() for k, r in self._results.items()}}
        return _with_as_of(body, list(self._results.values()))

    def __repr__(self) -> str:
        return "<Results " + ", ".join(repr(r) for r in self._results.values()) + ">"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None and value.utcoffset() == dt.timedelta(0):
            return value.replace(tzinfo=None).isoformat() + "Z"
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
