"""Explain, query log, Prometheus metrics, health and readiness, and the plain row path."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import fraiseql_nb as fq
from fraiseql_nb.local import demo, embedded
from tests.conftest import short_tempdir

AGG = "{ sales_aggregate(groupBy: {region: true}) { region count revenue_sum } }"
ROWS = '{ users(where: {status: {eq: "banned"}}, orderBy: {id: DESC}, limit: 7) { id name address { city } tags } }'


@pytest.fixture
def session(demo_dsn: str) -> Iterator[fq.Session]:
    """A fresh session per test here: metric counts start from zero."""
    s = fq.connect(demo_dsn)
    yield s
    s.close()


def test_explain_names_plane_reason_sql_and_estimates(session: fq.Session) -> None:
    session.refresh()  # cold: earlier tests may have left the table in memory or the store
    plan = session.explain(f"{{ a: {AGG[2:-2]} b: {ROWS[2:-2]} }}")
    agg, rows = plan["a"], plan["b"]
    assert (agg.kind, agg.backend) == ("aggregate", "postgres")
    assert agg.reason == "arrow cold: loading in the background"
    assert set(agg.sql) == {"postgres", "arrow"}
    assert "GROUP BY" in agg.sql["postgres"]
    assert agg.sql["arrow"].startswith('SELECT ("dimensions" ->> \'region\') AS "region"')
    assert agg.estimate["rows"] == 100_000
    assert agg.estimate["cached"] is False
    assert (rows.kind, rows.backend, rows.reason) == ("rows", "wire", "row query")
    assert "'banned'" in rows.sql["wire"]
    text = str(plan)
    assert "a: aggregate query → postgres (arrow cold: loading in the background)" in text
    assert "<b>postgres</b>" in plan._repr_html_()
    session.execute(AGG, backend="arrow")
    cached = session.explain(AGG)["sales_aggregate"]
    assert (cached.backend, cached.reason) == ("arrow", "cached")
    assert session.explain(AGG, backend="postgres")["sales_aggregate"].backend == "postgres"


def test_query_log_and_prometheus_metrics(session: fq.Session) -> None:
    session.refresh()
    session.execute(ROWS)
    session.execute(AGG, backend="arrow")
    session.execute(AGG)
    session.execute(AGG, backend="postgres")
    with pytest.raises(fq.QueryError):
        session.execute("{ users { nme } }")
    log = session.query_log
    assert log["backend"].to_list() == ["wire", "arrow", "arrow", "postgres", "none"]
    assert log["cache_hit"].to_list() == [None, False, True, None, None]
    assert log["rows"].to_list()[:4] == [7, 5, 5, 5]
    assert log["error"][4].startswith("Cannot query field 'nme'")
    assert log["error"][:4].null_count() == 4

    families = {f.name: f for f in text_string_to_metric_families(session.metrics_text())}
    assert {
        "fraiseql_queries",
        "fraiseql_query_duration_seconds",
        "fraiseql_rows",
        "fraiseql_bytes",
        "fraiseql_cache_hits",
        "fraiseql_cache_misses",
        "fraiseql_cache_bytes",
        "fraiseql_pool_connections",
    } <= set(families)

    def value(family: str, sample: str, **labels: str) -> float:
        return next(
            s.value
            for s in families[family].samples
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
        )

    assert (
        value(
            "fraiseql_queries",
            "fraiseql_queries_total",
            backend="arrow",
            kind="aggregate",
            outcome="ok",
        )
        == 2
    )
    assert (
        value(
            "fraiseql_queries",
            "fraiseql_queries_total",
            backend="none",
            kind="invalid",
            outcome="invalid",
        )
        == 1
    )
    assert value("fraiseql_cache_hits", "fraiseql_cache_hits_total") == 1
    assert value("fraiseql_cache_misses", "fraiseql_cache_misses_total") == 1
    assert value("fraiseql_rows", "fraiseql_rows_total", backend="wire") == 7
    assert (
        value(
            "fraiseql_query_duration_seconds",
            "fraiseql_query_duration_seconds_count",
            backend="arrow",
        )
        == 2
    )
    assert value("fraiseql_pool_connections", "fraiseql_pool_connections", state="max") == 16
    assert value("fraiseql_cache_bytes", "fraiseql_cache_bytes") > 0


def test_sessions_keep_their_own_metrics(demo_dsn: str) -> None:
    with fq.connect(demo_dsn) as a, fq.connect(demo_dsn) as b:
        a.execute(ROWS)
        assert 'fraiseql_rows_total{backend="wire"} 7.0' in a.metrics_text()
        assert "fraiseql_rows_total{" not in b.metrics_text()


def test_health_and_readiness_when_up(session: fq.Session) -> None:
    h = session.health()
    assert h["status"] == "healthy"
    assert {k: v["status"] for k, v in h["backends"].items()} == {
        "wire": "healthy",
        "arrow": "healthy",
        "postgres": "healthy",
    }
    assert set(h["backends"]["wire"]["pool"]) == {"size", "idle", "active", "waiting", "max"}
    assert set(h["backends"]["arrow"]["cache"]) == {"entries", "bytes", "hit_rate"}
    assert session.ready() == {"ready": True, "backends": ["wire", "arrow", "postgres"]}


def test_health_when_the_database_is_down(tmp_path: Path) -> None:
    home = short_tempdir("fqh-")
    dsn = demo.ensure_database(embedded.start(home).dsn(), "fq_health")
    try:
        demo.load(dsn, demo.Counts(users=20, products=3, orders=5, sales=50))
        with fq.connect(dsn, config={"connections": {"pool_timeout_s": 2}}) as s:
            embedded.stop(home)
            started = time.monotonic()
            h = s.health()
            assert time.monotonic() - started < 10
            assert h["status"] == "unhealthy"
            assert h["reason"].startswith("the database does not answer")
            assert h["backends"]["wire"]["status"] == "unhealthy"
            assert h["backends"]["postgres"]["reason"] == h["reason"]
            assert s.ready() == {"ready": False, "backends": []}
            embedded.start(home)
            after = s.health()
            assert after["status"] == "healthy", after
            assert s.ready()["ready"] is True
    finally:
        embedded.stop(home)


def test_disabled_planes_give_the_same_answers(demo_dsn: str, session: fq.Session) -> None:
    streamed = session.execute(ROWS)
    with fq.connect(
        demo_dsn, config={"backends": {"use_wire_backend": False, "use_arrow_backend": False}}
    ) as plain:
        rows = plain.execute(ROWS)
        agg = plain.execute(AGG)
        assert (rows.backend, agg.backend) == ("postgres", "postgres")  # type: ignore[union-attr]
        assert rows.to_dicts() == streamed.to_dicts()  # type: ignore[union-attr]
        assert rows.df.schema == streamed.df.schema  # type: ignore[union-attr]
        assert (
            agg.df.sort("region").to_dicts()
            == session.execute(AGG, backend="postgres").df.sort("region").to_dicts()
        )  # type: ignore[union-attr]
        h = plain.health()
        assert (h["status"], h["backends"]["wire"]["status"], h["backends"]["arrow"]["status"]) == (
            "healthy",
            "disabled",
            "disabled",
        )
        with pytest.raises(fq.BackendError, match="use_wire_backend = false"):
            plain.execute(ROWS, backend="wire")
