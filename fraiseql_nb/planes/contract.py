"""What every data plane offers the session: an Offer for a Task, a Result, the statement.

The session plans each root field once (:class:`Task`: its entity or fact
table, the fact columns it reads), asks each registered plane
(:mod:`.registry`) what it would do with it (an :class:`Offer`), and the router
(a pure decision over the offers) picks one. Every plane is behind the one
:class:`Plane` protocol: the session calls nothing else of a plane.
A plane that will not answer after all raises :class:`~fraiseql_nb.errors.Declined`
(from errors.py, like every exception the session handles) and the session
asks the fallback, ``postgres``. ``explain`` asks each plane for its
:class:`Statement`, so what it shows is what the plane sends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from psycopg_pool import ConnectionPool

from fraiseql_nb.config import Config
from fraiseql_nb.query.ir import RowQuery

if TYPE_CHECKING:
    from pathlib import Path

    from fraiseql_nb.errors import FraiseQLError
    from fraiseql_nb.query.ir import AggregateQuery, WindowQuery
    from fraiseql_nb.result import Result
    from fraiseql_nb.schema.model import Entity, FactTable

__all__ = [
    "BasePlane",
    "Context",
    "Offer",
    "OfferState",
    "Plane",
    "PlaneName",
    "Registration",
    "Runs",
    "Statement",
    "Storage",
    "Streaming",
    "Task",
]

#: A registered plane's name, as results, metrics and config use it ("wire", "arrow",
#: "cluster", "postgres", or one registered later): ``execute(backend=…)`` takes one, or
#: "auto" (the router chooses).
PlaneName = str
#: What a plane runs: row queries over entities, aggregates and windows over fact tables.
Runs = Literal["rows", "facts"]
#: Where the arrow plane's rows were: "" (memory, or not the arrow plane) or "disk".
Storage = Literal["", "disk"]


@dataclass(frozen=True)
class Task:
    """One root field, planned once: what any plane needs to run or show it.

    Attributes:
        query: the root field's IR.
        target: its entity (row queries) or fact table.
        columns: the fact columns it reads, id included when there is one (facts only).
        wait: the arrow plane loads what is missing now; else it declines (``NotReady``)
            where a full load would be needed, and the table loads after the answer.
        next_page: runs the next page of a paged row query (the session records it).
    """

    query: RowQuery | AggregateQuery | WindowQuery
    target: Entity | FactTable
    columns: tuple[str, ...] = ()
    wait: bool = True
    next_page: Callable[[RowQuery], Result | None] | None = None

    @property
    def rows(self) -> bool:
        """Whether it is a row query (else an aggregate or window over a fact table)."""
        return isinstance(self.query, RowQuery)


@dataclass(frozen=True)
class Statement:
    """What a plane sends for a task, values inlined (EXPLAIN takes it as it is)."""

    sql: str
    note: str = ""  # shown after it: what the plane does with the rows
    estimate: dict[str, Any] = field(default_factory=dict)  # rows, MB… when it knows them
    parts: tuple[str, ...] = ()  # the cluster plane: each partition's statement and worker

    @property
    def shown(self) -> str:
        head = f"{self.sql}  -- {self.note}" if self.note else self.sql
        return head + "".join(f"\n    {p}" for p in self.parts)


#: How a plane would take a task (see :class:`Offer`).
OfferState = Literal["ready", "soon", "loading", "cold", "busy", "declined", "off", "pass"]


@dataclass(frozen=True)
class Offer:
    """What a plane would do with a task, for the router.

    ``state``: "ready" (answers now), "soon" (once a load that ends shortly has
    ended), "loading" (a load runs: not now), "cold" (answers after a load it would
    start), "busy" (not now, for ``reason``), "declined" (not this query), "off" (the
    plane is off), "pass" (nothing to say: another plane is the one to ask).

    ``reason`` is what the route says when this plane runs it (or, for the states that
    do not run, why the fallback does); ``meanwhile``, for "cold", what the fallback's
    route says while this plane loads in the background. ``beyond``: the table is
    beyond what this plane holds, and why — a later plane (which sees the earlier
    offers) may take it. ``error``: asked by name, what refuses the task.
    """

    state: OfferState
    reason: str = ""
    meanwhile: str = ""
    beyond: str | None = None
    error: FraiseQLError | None = None


class Plane(Protocol):
    """A data plane: what the session may ask of any plane, and nothing else."""

    name: str

    def offer(self, task: Task, *, requested: bool, earlier: Mapping[str, Offer]) -> Offer:
        """What this plane would do with ``task`` (``requested``: asked by name, so only
        whether it refuses; ``earlier``: the offers of the planes registered before)."""
        ...

    def execute(self, task: Task) -> Result:
        """The task's Result; :class:`~fraiseql_nb.errors.Declined` when another plane
        must answer it."""
        ...

    def statement(self, task: Task) -> Statement | None:
        """The statement :meth:`execute` sends (or its load, for the arrow plane); None
        when the plane is off and has nothing to show."""
        ...

    def load_in_background(self, task: Task) -> None:
        """Start loading what ``task`` reads, after its answer came from elsewhere."""
        ...

    def prefetch(self, fact: FactTable, *, wait: bool) -> str | None:
        """Load a whole fact table: "loaded" or "loading N%"; None when the plane keeps
        no tables."""
        ...

    def refresh(self, facts: list[FactTable]) -> int:
        """Drop what the plane holds of ``facts``; the in-memory entries dropped."""
        ...

    def cache_stats(self) -> dict[str, Any]:
        """The plane's share of ``Session.cache_stats()`` ({} when it keeps nothing)."""
        ...

    def health(self) -> dict[str, Any] | None:
        """Its status for ``Session.health()``: ``{"status": …}`` with "database" (as
        healthy as the database), "disabled", "unavailable" or "healthy", and what else it
        reports; None when it is not configured at all."""
        ...

    def busy(self) -> contextlib.AbstractContextManager[None]:
        """Entered while a query of the session runs, on any plane."""
        ...

    def close(self) -> None:
        """Let go of what the plane holds. Idempotent."""
        ...


class Streaming(Protocol):
    """A plane that also streams a row query's documents one by one (``Session.stream``)."""

    def stream(self, query: RowQuery, entity: Entity) -> Iterator[dict[str, Any]]: ...


class BasePlane:
    """The protocol's quiet defaults, for a plane that keeps nothing: subclass it and
    write ``offer``, ``execute`` and ``statement``."""

    name = ""

    def load_in_background(self, task: Task) -> None:
        return None

    def prefetch(self, fact: FactTable, *, wait: bool) -> str | None:
        return None

    def refresh(self, facts: list[FactTable]) -> int:
        return 0

    def cache_stats(self) -> dict[str, Any]:
        return {}

    def health(self) -> dict[str, Any] | None:
        return {"status": "database"}

    def busy(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def close(self) -> None:
        return None


# ------------------------------------------------------------ registering a plane


@dataclass
class Context:
    """What a plane is built from: the session's connections and settings, and the planes
    built before it (``postgres`` runs row queries the ``wire`` plane's way)."""

    dsn: str
    config: Config
    pool: ConnectionPool
    #: The analytics planes read here (a replica when ``analytics_connection`` is set).
    analytics_dsn: str
    analytics_pool: ConnectionPool
    store: Path | None
    built: dict[str, Plane] = field(default_factory=dict)


@dataclass(frozen=True)
class Registration:
    """One plane: its name, how it is built, what it runs, its colour in a result's badge
    and one line that says what it is (``--backend``'s help, docs/architecture.md)."""

    name: PlaneName
    build: Callable[[Context], Plane]
    runs: frozenset[Runs]
    colour: str
    summary: str
    #: Whether it streams rows one by one (``Session.stream``).
    streams: bool = False
