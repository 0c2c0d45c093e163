"""Adding a plane is its own code and one registry entry: a toy plane, registered at run
time, answers the one fact query it knows, and appears in routing, explain, health, the
badge and ``--backend``, with nothing else of the session touched."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

import polars as pl
import pytest

import fraiseql_nb as fq
from fraiseql_nb.notebook.display import badge, badge_html
from fraiseql_nb.notebook.magics import _query_options, usage
from fraiseql_nb.planes import registry
from fraiseql_nb.planes.contract import BasePlane, Offer, Statement, Task
from fraiseql_nb.query.ir import AggregateQuery
from fraiseql_nb.result import Result, measured
from fraiseql_nb.session import backends

KNOWN = "{ sales_aggregate { count } }"
OTHER = "{ sales_aggregate(groupBy: {region: true}) { region count } }"


class Toy(BasePlane):
    """Knows the row count of one fact table (counted once, by PostgreSQL) and nothing else."""

    name = "toy"

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts
        self.closed = False

    def _knows(self, task: Task) -> bool:
        q = task.query
        return (
            isinstance(q, AggregateQuery)
            and q.fact in self.counts
            and not q.group_keys
            and q.where is None
            and q.columns == (("count", "count"),)
        )

    def offer(self, task: Task, *, requested: bool, earlier: Mapping[str, Offer]) -> Offer:
        if not self._knows(task):
            return Offer(
                "declined" if requested else "pass",
                "toy knows one count",
                error=fq.QueryError(f"{task.query.key}: the toy plane knows one count only"),
            )
        return Offer("ready", "requested" if requested else "toy knows it")

    def execute(self, task: Task) -> Result:
        assert isinstance(task.query, AggregateQuery)
        frame = pl.DataFrame({"count": [self.counts[task.query.fact]]}, schema={"count": pl.Int64})
        return measured(
            key=task.query.key,
            kind=task.query.kind,
            backend=self.name,
            frame=frame,
            started=time.perf_counter(),
        )

    def statement(self, task: Task) -> Statement | None:
        return Statement(sql="", note="the toy plane's own count") if self._knows(task) else None

    def health(self) -> dict[str, Any] | None:
        return {"status": "healthy", "knows": sorted(self.counts)}

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def toy(demo_dsn: str) -> Iterator[Toy]:
    with fq.connect(demo_dsn) as s:
        count = s.execute(KNOWN, backend="postgres").df["count"][0]
    plane = Toy({"sales": count})
    registry.register(
        registry.Registration(
            name="toy",
            build=lambda ctx: plane,
            runs=frozenset({"facts"}),
            colour="#123456",
            summary="a plane that knows one count",
        )
    )
    try:
        yield plane
    finally:
        registry.unregister("toy")


def test_a_registered_plane_is_routed_explained_reported_and_badged(
    toy: Toy, demo_dsn: str
) -> None:
    assert backends()[-1] == "toy"
    # The arrow plane off: nothing answers before the toy under auto.
    with fq.connect(demo_dsn, config={"backends": {"use_arrow_backend": False}}) as s:
        forced = s.execute(KNOWN, backend="toy")
        assert (forced.backend, forced.reason) == ("toy", "requested")
        chosen = s.execute(KNOWN)
        assert (chosen.backend, chosen.reason) == ("toy", "toy knows it")
        truth = s.execute(KNOWN, backend="postgres")
        assert chosen.df.equals(truth.df) and chosen.df["count"][0] == toy.counts["sales"] > 0
        # What the toy does not know goes to the fallback; asked by name, it refuses.
        assert s.execute(OTHER).backend == "postgres"
        with pytest.raises(fq.QueryError, match="knows one count only"):
            s.execute(OTHER, backend="toy")
        with pytest.raises(fq.QueryError, match="is a row query"):
            s.execute("{ products(limit: 1) { id } }", backend="toy")
        # Explain shows its statement beside PostgreSQL's; health its own report.
        plan = s.explain(KNOWN).plans[0]
        assert (plan.backend, plan.reason) == ("toy", "toy knows it")
        assert "the toy plane's own count" in plan.sql["toy"]
        assert s.health()["backends"]["toy"] == {"status": "healthy", "knows": ["sales"]}
        # The badge names it, in its colour; the SQL tab says PostgreSQL's equivalent.
        assert badge(chosen).startswith("sales_aggregate: toy (toy knows it)")
        assert "background:#123456" in badge_html(chosen)
        assert chosen.postgres_sql == truth.sql
    assert toy.closed  # closed with the session
    # The magics take it and list it.
    assert "auto|wire|arrow|cluster|postgres|toy" in usage()
    assert _query_options().parse_args(["--backend", "toy"]).backend == "toy"


def test_an_unregistered_plane_is_gone(toy: Toy, demo_dsn: str) -> None:
    registry.unregister("toy")
    assert "toy" not in backends()
    with fq.connect(demo_dsn) as s:
        with pytest.raises(fq.ConfigError, match="backend must be one of"):
            s.execute(KNOWN, backend="toy")
        assert "toy" not in s.health()["backends"]
    with pytest.raises(fq.ConfigError, match="fallback"):
        registry.unregister("postgres")
    with pytest.raises(fq.ConfigError, match="registered already"):
        registry.register(registry.get("wire"))  # type: ignore[arg-type]


def test_the_docs_list_the_registered_planes() -> None:
    """docs/architecture.md's list of planes is the registry's, in its order."""
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "architecture.md").read_text()
    start = text.index("<!-- planes: generated from fraiseql_nb.planes.registry -->")
    listed = text[start : text.index("<!-- /planes -->")].splitlines()[1:]
    expected = [f"- **`{r.name}`** — {r.summary}." for r in registry.registered()]
    assert listed == expected, "regenerate the list from fraiseql_nb.planes.registry"
