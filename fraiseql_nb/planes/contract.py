"""What every data plane offers the session: a Task in, a Result out, and the statement.

The session plans each root field once (:class:`Task`: its entity or fact
table, the fact columns it reads) and hands it to the plane the router chose
(``wire``, ``arrow``, ``cluster`` or ``postgres``), all behind one :class:`Plane` protocol.
A plane that will not answer raises :class:`~fraiseql_nb.errors.Declined`
(from errors.py, like every exception the session handles) and the session
asks ``postgres``. ``explain`` asks each plane for its :class:`Statement`, so
what it shows is what the plane sends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from fraiseql_nb.query.ir import RowQuery

if TYPE_CHECKING:
    from fraiseql_nb.query.ir import AggregateQuery, WindowQuery
    from fraiseql_nb.result import Result
    from fraiseql_nb.schema.model import Entity, FactTable

__all__ = ["Backend", "Plane", "PlaneName", "Statement", "Storage", "Task"]

#: The planes, by the name results, metrics and config use ("plane" in code and docs).
PlaneName = Literal["wire", "arrow", "postgres", "cluster"]
#: What ``execute(backend=…)`` takes: a plane, or "auto" (the router chooses).
Backend = Literal["auto", "wire", "arrow", "postgres", "cluster"]
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


class Plane(Protocol):
    """A data plane: runs a task, or says what it would send."""

    name: str

    def execute(self, task: Task) -> Result:
        """The task's Result; :class:`~fraiseql_nb.errors.Declined` when another plane
        must answer it."""
        ...

    def statement(self, task: Task) -> Statement:
        """The statement :meth:`execute` sends (or its load, for the arrow plane)."""
        ...
