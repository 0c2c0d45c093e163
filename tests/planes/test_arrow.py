"""The analytics plane: loads, cache hits and misses, freshness, bounds, fallbacks, routing."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import psycopg
import pytest

import fraiseql_nb as fq
from fraiseql_nb.local import demo
from fraiseql_nb.notebook.display import badge
from fraiseql_nb.query import parse_query
from tests.conftest import TINY, plane_of
from tests.interrupting import Interrupter, active
from tests.planes.conftest import append_sales
from tests.planes.corpus import assert_same

TOTAL = "{ sales_aggregate { count revenue_sum } }"
TOTAL_KEY = "sales_aggregate"
APPEND = append_sales(10)


def arrow(s: fq.Session, query: str) -> fq.Result:
    r = s.execute(query, backend="arrow")
    assert isinstance(r, fq.Result)
    assert r.backend == "arrow"
    return r


def totals(dsn: str) -> tuple[int, float]:
    with psycopg.connect(dsn) as conn:
        n, total = conn.execute("SELECT count(*), sum(revenue)::float8 FROM tf_sales").fetchone()
    return n, total


def test_cache_hits_misses_and_partial_loads(tiny: str) -> None:
    with fq.connect(tiny) as s:
        plane = plane_of(s, "arrow")
        first = arrow(s, "{ sales_aggregate(groupBy: {category: true}) { category revenue_sum } }")
        assert first.metrics.cache_hit is False
        assert first.metrics.bytes > 0
        assert 'SELECT ("dimensions" ->> \'category\') AS "category"' in first.sql
        loads = plane.loads
        again = arrow(
            s, "{ sales_aggregate(groupBy: {category: true}) { category revenue_avg revenue_max } }"
        )
        assert again.metrics.cache_hit is True
        assert plane.loads == loads  # same columns: no statement touched the table
        filtered = arrow(s, '{ sales_aggregate(where: {category: {eq: "books"}}) { revenue_sum } }')
        assert filtered.metrics.cache_hit is True  # an unfiltered load answers a filtered query
        more = arrow(s, "{ sales_aggregate(groupBy: {region: true}) { region quantity_sum } }")
        assert more.metrics.cache_hit is False
        # The missing columns come with the loaded ones, in one scan (rows line up).
        assert '"region"' in more.sql and '"category"' in more.sql and '"cost"' not in more.sql
        assert more.metrics.bytes > first.metrics.bytes
        stats = s.cache_stats()
        assert (stats["hits"], stats["misses"], stats["entries"]) == (2, 2, 1)
        assert stats["bytes"] > 0
        # Results match the database's own arithmetic.
        n, total = totals(tiny)
        whole = arrow(s, TOTAL).df.to_dicts()[0]
        assert whole["count"] == n
        assert whole["revenue_sum"] == pytest.approx(total, rel=1e-12)


@pytest.mark.parametrize(
    "change",
    [
        "INSERT INTO tf_sales SELECT id + 1000000, customer_id, product_id, occurred_at, revenue, quantity,"
        " cost, discount, dimensions, date_info FROM tf_sales WHERE id <= 10",
        "UPDATE tf_sales SET revenue = revenue + 1 WHERE id <= 5",
        "DELETE FROM tf_sales WHERE id > 1990",
        "TRUNCATE tf_sales",
    ],
)
@pytest.mark.parametrize("capture", [True, False], ids=["capture", "scan"])
def test_a_changed_table_is_never_answered_from_stale_data(
    tiny: str, change: str, capture: bool
) -> None:
    config = {"arrow_backend": {"change_capture": capture}}
    with fq.connect(tiny, config=config) as s:
        before = arrow(s, TOTAL).df.to_dicts()[0]
        assert arrow(s, TOTAL).metrics.cache_hit is True
        with psycopg.connect(tiny, autocommit=True) as conn:
            conn.execute(change)
        n, total = totals(tiny)
        after = arrow(s, TOTAL)
        # The scan reads rows after any change; a deletion the stream carries reads none.
        assert after.metrics.cache_hit is False or (capture and change.startswith("DELETE"))
        assert after.df["count"][0] == n
        assert (after.df["revenue_sum"][0] or 0) == pytest.approx(total or 0, rel=1e-12)
        assert after.df.to_dicts()[0] != before


def test_refresh_and_ttl(tiny: str) -> None:
    with fq.connect(tiny, config={"arrow_backend": {"cache_ttl_s": 0.5}}) as s:
        arrow(s, TOTAL)
        assert arrow(s, TOTAL).metrics.cache_hit is True
        assert s.refresh("tf_sales") == 1
        before = arrow(s, TOTAL)
        assert before.metrics.cache_hit is False
        with psycopg.connect(tiny, autocommit=True) as conn:
            conn.execute(APPEND)
        # Bounded staleness, opted into: within the TTL the table is not checked...
        stale = arrow(s, TOTAL)
        assert (stale.metrics.cache_hit, stale.df["count"][0]) == (True, TINY.sales)
        # ... and the answer says so: as of when its rows were last proven current.
        assert stale.as_of is not None
        age = (dt.datetime.now(dt.timezone.utc) - stale.as_of).total_seconds()
        assert 0 <= age < 0.5
        assert f"arrow (as of {stale.as_of.astimezone():%H:%M:%S}, " in badge(stale)
        assert stale.to_graphql()["extensions"] == {"asOf": {TOTAL_KEY: stale.as_of.isoformat()}}
        time.sleep(0.6)
        # ... after it, it is, and the appended rows are loaded.
        fresh = arrow(s, TOTAL)
        assert (fresh.metrics.cache_hit, fresh.df["count"][0]) == (False, TINY.sales + 10)
        assert fresh.as_of is None and "extensions" not in fresh.to_graphql()
        assert "as of" not in badge(fresh)
        assert s.refresh() == 1


def test_the_cache_stays_within_its_budget(tiny: str) -> None:
    with fq.connect(tiny, config={"arrow_backend": {"cache_size_mb": 0}}) as s:
        arrow(s, TOTAL)
        assert s.cache_stats()["entries"] == 0  # nothing fits in 0 MB: used once, not kept
        assert arrow(s, TOTAL).metrics.cache_hit is False
    with fq.connect(tiny, config={"arrow_backend": {"cache_enabled": False}}) as s:
        arrow(s, TOTAL)
        assert s.cache_stats()["bytes"] == 0


def test_big_loads_push_filters_down_as_literals(tiny: str) -> None:
    query = '{ sales_aggregate(where: {category: {eq: "books"}, quantity: {gte: 2}}, groupBy: {region: true}) { region count revenue_sum } }'
    with fq.connect(tiny, config={"routing": {"max_load_mb": 0}}) as s:
        r = arrow(s, query)
        assert "WHERE" in r.sql
        assert "'books'" in r.sql and "%(" not in r.sql  # literals: ADBC keeps COPY
        pg = s.execute(query, backend="postgres")
        assert_same(r.df, pg.df, query)  # type: ignore[union-attr]
        assert arrow(s, query).metrics.cache_hit is True  # the same filter again
        assert arrow(s, query.replace("gte: 2", "gte: 3")).metrics.cache_hit is False


def test_routing_and_explicit_backends(tiny: str) -> None:
    with fq.connect(tiny) as s:
        first = s.execute(TOTAL)
        assert (first.backend, first.reason) == (
            "postgres",
            "arrow cold: loading in the background",
        )  # type: ignore[union-attr]
        assert s.prefetch("sales", wait=True) == {"public.tf_sales": "loaded"}
        auto = s.execute(TOTAL)
        assert (auto.backend, auto.reason) == ("arrow", "cached")  # type: ignore[union-attr]
        assert_same(auto.df, first.df, TOTAL)  # type: ignore[union-attr]
        assert s.route(parse_query(TOTAL, s.schema).queries[0]).reason == "cached"
        with pytest.raises(fq.QueryError, match="the 'wire' plane runs row queries only"):
            s.execute(TOTAL, backend="wire")
        with pytest.raises(
            fq.QueryError, match=r"runs on the 'wire' plane \(or 'postgres'\), not 'arrow'"
        ):
            s.execute("{ users { id } }", backend="arrow")
        with pytest.raises(
            fq.ConfigError, match="backend must be one of auto, wire, arrow, cluster, postgres"
        ):
            s.execute(TOTAL, backend="duckdb")
    with fq.connect(tiny, config={"backends": {"use_arrow_backend": False}}) as s:
        assert s.execute(TOTAL).backend == "postgres"  # type: ignore[union-attr]
        with pytest.raises(fq.BackendError, match="use_arrow_backend = false"):
            s.execute(TOTAL, backend="arrow")
    no_store = {"store_enabled": False}  # the sessions above left the table in the store
    with fq.connect(tiny, config={"routing": {"max_load_mb": 0}, "arrow_backend": no_store}) as s:
        r = s.execute(TOTAL)
        assert (r.backend, r.reason) == ("postgres", "load 0 MB > 0 MB")  # type: ignore[union-attr]
    with fq.connect(
        tiny, config={"routing": {"background_loads": False}, "arrow_backend": no_store}
    ) as s:
        r = s.execute(TOTAL)  # waits for the load instead
        assert r.backend == "arrow" and r.reason.startswith("load ")  # type: ignore[union-attr]


def test_estimates_come_from_the_catalogue(tiny: str) -> None:
    with fq.connect(tiny) as s:
        fact = s.schema.fact("sales")
        assert fact is not None
        with psycopg.connect(tiny, autocommit=True) as conn:
            conn.execute("ANALYZE tf_sales")
        est = plane_of(s, "arrow").estimate(fact, ["revenue", "category"])
        assert est.rows == TINY.sales
        assert TINY.sales * 16 <= est.bytes <= TINY.sales * 200
        assert not est.cached
        arrow(s, "{ sales_aggregate(groupBy: {category: true}) { category revenue_sum } }")
        assert plane_of(s, "arrow").estimate(fact, ["revenue", "category"]).cached


def test_interrupting_a_load_cancels_it(slow_fact: str) -> None:
    with fq.connect(slow_fact, sample_size=1) as s:
        # A real SIGINT, as a Jupyter kernel interrupt sends: ADBC's own handler cancels the
        # statement on the server, and the interrupt surfaces as KeyboardInterrupt.
        loading = Interrupter(lambda: bool(active(slow_fact, "%tf_slow%")))
        with loading, pytest.raises(KeyboardInterrupt):
            s.execute("{ slow_aggregate { amount_sum } }", backend="arrow")
        assert loading.delay() < 1.0
        with psycopg.connect(slow_fact) as conn:
            running = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fraiseql-nb arrow'"
                " AND state = 'active'"
            ).fetchone()
        assert running == (0,)
        r = s.execute(
            "{ slow_aggregate(where: {id: {lte: 3}}) { amount_sum } }", backend="postgres"
        )
        assert r.df["amount_sum"][0] == 6.0  # type: ignore[union-attr]


def test_exact_decimals_sum_like_postgresql(tiny: str) -> None:
    query = "{ sales_aggregate(groupBy: {category: true}) { category revenue_sum revenue_max discount_sum } }"
    with fq.connect(tiny, config={"arrow_backend": {"exact_decimals": True}}) as s:
        exact = arrow(s, query)
        assert "::text" in exact.sql
        pg = s.execute(query, backend="postgres")
        # Summed exactly then rounded once: bit-identical to PostgreSQL's numeric sum.
        assert exact.df.to_dicts() == pg.df.to_dicts()  # type: ignore[union-attr]


def test_an_analytics_connection_is_where_the_arrow_plane_reads_and_checks(
    tiny: str, server_dsn: str
) -> None:
    """A replica of its own: loads, versions and freshness checks all go there (a version
    read on the primary says nothing of the replica's rows)."""
    replica = demo.ensure_database(server_dsn, f"fq_replica_{uuid.uuid4().hex[:8]}")
    try:
        demo.load(replica, TINY)
        config = {"database": {"analytics_connection": replica}}
        count = "{ sales_aggregate { count } }"
        with fq.connect(tiny, config=config) as s:
            assert s.execute(count, backend="arrow").df["count"][0] == TINY.sales
            with psycopg.connect(replica, autocommit=True) as conn:
                conn.execute(append_sales(7))  # only on the replica
            assert s.execute(count, backend="arrow").df["count"][0] == TINY.sales + 7
            assert s.execute(count, backend="postgres").df["count"][0] == TINY.sales
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            conn.execute(
                psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    psycopg.sql.Identifier(psycopg.conninfo.conninfo_to_dict(replica)["dbname"])
                )
            )


def test_a_never_analysed_table_is_estimated_from_its_size(scratch_dsn: str) -> None:
    """reltuples is -1 until ANALYZE: "0 rows" would let max_load_mb wave any load through."""
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE tf_fresh AS SELECT g::bigint AS id, g::float8 AS amount"
            " FROM generate_series(1, 300000) g;"
            " CREATE VIEW tf_through AS SELECT * FROM tf_fresh"
        )
    with fq.connect(scratch_dsn, config={"routing": {"max_load_mb": 1}}) as s:
        for name in ("fresh", "through"):
            plan = s.explain(f"{{ {name}_aggregate {{ amount_sum }} }}").plans[0]
            assert plan.estimate["rows"] > 100_000
            assert plan.backend == "postgres"
            assert "MB > 1 MB" in plan.reason
