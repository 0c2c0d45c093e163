"""The registered planes as one, for the session: each built once, a root field planned
once (:class:`~.contract.Task`), routed among the planes' offers, run — on the fallback
when the chosen plane declines — and what the planes do for the session as a whole
(refresh, prefetch, statistics, health, close)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, cast

from fraiseql_nb.compute.columns import needed_columns
from fraiseql_nb.config import Config
from fraiseql_nb.errors import BackendError, Declined, QueryError
from fraiseql_nb.planes import registry
from fraiseql_nb.planes.contract import Context, Offer, Plane, Statement, Streaming, Task
from fraiseql_nb.planes.router import Route, choose_plane
from fraiseql_nb.query.ir import Query, RowQuery
from fraiseql_nb.result import Result
from fraiseql_nb.schema import Schema
from fraiseql_nb.schema.model import Entity, FactTable

__all__ = ["Planes"]


class Planes:
    """Every registered plane, in the router's order, each built from ``context``."""

    def __init__(self, context: Context, schema: Schema) -> None:
        for registration in registry.registered():
            context.built[registration.name] = registration.build(context)
        self._planes: dict[str, Plane] = context.built
        # What each runs, looked up per query: read from the registry once.
        self._others = {
            kind: [n for n in self._planes if n != registry.FALLBACK and registry.runs(n, kind)]
            for kind in ("rows", "aggregate", "window")
        }
        self._schema = schema
        self.config: Config = context.config

    def __getitem__(self, name: str) -> Plane:
        return self._planes[name]

    def __contains__(self, name: object) -> bool:
        return name in self._planes

    def names(self) -> tuple[str, ...]:
        return tuple(self._planes)

    # ------------------------------------------------------------ one root field

    def task(self, query: Query) -> Task:
        """The root field planned once: its target and the fact columns it reads."""
        if isinstance(query, RowQuery):
            entity = self._schema.entity(query.entity)
            assert entity is not None
            return Task(query=query, target=entity)
        fact = self._schema.fact(query.fact)
        assert fact is not None
        return Task(query=query, target=fact, columns=tuple(needed_columns(query, fact)))

    def route(self, task: Task, backend: str, *, settle: bool = False) -> Route:
        """Each plane's offer, in the registry's order (only the plane asked for, when one
        is), then the router's choice among them."""
        kind = task.query.kind
        names = [backend] if backend != "auto" else self.others(kind)
        offers: dict[str, Offer] = {}
        for name in names:
            if backend == "auto" or registry.runs(name, kind):
                offer = self._planes[name].offer(task, requested=backend != "auto", earlier=offers)
                offers[name] = offer
        return choose_plane(
            kind,
            backend,
            offers,
            background=self.config.routing.background_loads,
            settle=settle,
            key=task.query.key,
        )

    def others(self, kind: str) -> list[str]:
        """The planes that run ``kind``, the fallback aside, in the registry's order."""
        return list(self._others[kind])

    def run(
        self,
        task: Task,
        backend: str,
        route: Route,
        *,
        settle: bool = False,
        record: Callable[[Result], None],
    ) -> tuple[Result, str]:
        """The result, and why its plane ran it: the routed plane, else (it declined) the
        fallback, with the table loaded afterwards when the declining plane asks for it.
        ``record`` counts each further page of a paged row query."""
        plane = self._planes[route.plane]
        background = self.config.routing.background_loads and not settle
        wait = backend == route.plane or not background or route.wait

        def follow(q: RowQuery) -> Result:
            result = plane.execute(replace(task, query=q))
            record(result)
            return result

        task = replace(task, wait=wait, next_page=follow)
        reason, load = route.reason, route.load
        try:
            with self.busy():
                result = plane.execute(task)
        except Declined as exc:
            if backend == route.plane:
                raise QueryError(
                    f"{task.query.key}: the {plane.name} plane {exc.reason}; use"
                    f" backend='{registry.FALLBACK}' or 'auto'"
                ) from None
            reason = f"{plane.name} {exc.reason}"
            load = load or (plane.name if exc.load else None)
            with self.busy():
                result = self._planes[registry.FALLBACK].execute(task)
        if load is not None:
            # After the answer: the load must not slow the query that started it.
            self._planes[load].load_in_background(task)
        return result, reason

    def fallback_sql(self, task: Task) -> str:
        """What answers the same inside PostgreSQL: to read, copy, or EXPLAIN there."""
        statement = self._planes[registry.FALLBACK].statement(task)
        return statement.sql if statement is not None else ""

    def statements(self, task: Task, route: Route) -> dict[str, Statement]:
        """What explain shows: a row query its own plane's statement; a fact query the
        fallback's and each other plane's that is on (the arrow plane's: its load)."""
        kind = task.query.kind
        shown = [route.plane] if task.rows else [registry.FALLBACK, *self.others(kind)]
        return {
            name: st for name in shown if (st := self._planes[name].statement(task)) is not None
        }

    def stream(self, query: RowQuery, entity: Entity) -> Iterator[dict[str, Any]]:
        """The documents of a row query one by one, from the plane that streams."""
        streams = next(r.name for r in registry.registered() if r.streams)
        return cast(Streaming, self._planes[streams]).stream(query, entity)

    # ------------------------------------------------------------ the session's

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """A query runs (on any plane): e.g. the arrow store writes in the pauses."""
        with contextlib.ExitStack() as stack:
            for plane in self._planes.values():
                stack.enter_context(plane.busy())
            yield

    def refresh(self, facts: list[FactTable], *, caches_only: bool = False) -> int:
        """Drop what the planes hold of ``facts``; ``caches_only``: only what a plane
        caches in this session (``execute(cache=False)``: the cluster's partitions stay)."""
        return sum(
            plane.refresh(facts)
            for plane in self._planes.values()
            if not caches_only or plane.cache_stats()
        )

    def prefetch(self, fact: FactTable, *, wait: bool) -> str:
        said = [plane.prefetch(fact, wait=wait) for plane in self._planes.values()]
        done = [s for s in said if s is not None]
        if not done:
            raise BackendError("no plane keeps tables: nothing to prefetch")
        return done[0]

    def cache_stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for plane in self._planes.values():
            out.update(plane.cache_stats())
        return out

    def health(self) -> dict[str, dict[str, Any] | None]:
        return {name: plane.health() for name, plane in self._planes.items()}

    def close(self) -> None:
        for plane in self._planes.values():
            plane.close()
