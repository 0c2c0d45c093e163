"""Background loads: nothing else waits for them, they can be cancelled, and failures heal."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

import fraiseql_nb as fq
from tests.conftest import SLOW_ROWS

SLOW = "{ slow_aggregate { count amount_sum } }"
# Quick on PostgreSQL (the filter comes before the sleep), as slow to load as SLOW.
FEW = "{ slow_aggregate(where: {id: {lte: 3}}) { count amount_sum } }"


def active_loads(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fraiseql-nb arrow'"
            " AND state = 'active' AND datname = current_database() AND query LIKE 'COPY%'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def until(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_nothing_waits_for_a_background_load(slow_fact: str) -> None:
    with fq.connect(slow_fact, sample_size=1) as s:
        first = s.execute(FEW)
        assert (first.backend, first.reason) == (
            "postgres",
            "arrow cold: loading in the background",
        )  # type: ignore[union-attr]
        until(lambda: active_loads(slow_fact) == 1)
        started = time.monotonic()
        health = s.health()
        ready = s.ready()
        text = s.metrics_text()
        stats = s.cache_stats()
        plan = s.explain(FEW)
        again = s.execute(FEW)
        took = time.monotonic() - started
        # All of it while the load still runs (it takes ~6 s): none of it waited.
        assert active_loads(slow_fact) == 1
        assert took < 3.0
        assert health["status"] == "healthy" and ready["ready"] is True
        assert "fraiseql_queries_total" in text
        assert list(stats["loading"]) == ["public.tf_slow"]
        assert plan.plans[0].backend == "postgres"
        assert again.backend == "postgres"  # type: ignore[union-attr]
        assert again.reason.startswith("arrow loading ")  # type: ignore[union-attr]
        # When the load is done, the same question is answered on arrow, identically.
        for _ in range(3):
            s.prefetch("slow", wait=True)
            done = s.execute(FEW)
            # A view has no row versions: any transaction elsewhere in the cluster since the
            # load (autoanalyze of another test's database) makes it reload, rightly.
            if done.reason != "arrow reloading":  # type: ignore[union-attr]
                break
        assert (done.backend, done.reason) == ("arrow", "cached")  # type: ignore[union-attr]
        assert done.df.to_dicts() == first.df.to_dicts()  # type: ignore[union-attr]
        assert first.df.to_dicts() == [{"count": 3, "amount_sum": 6.0}]  # type: ignore[union-attr]
        everything = s.execute(SLOW).df.to_dicts()  # type: ignore[union-attr]
        assert everything == [{"count": SLOW_ROWS, "amount_sum": SLOW_ROWS * (SLOW_ROWS + 1) / 2}]


def test_close_cancels_a_running_load(slow_fact: str) -> None:
    s = fq.connect(slow_fact, sample_size=1)
    s.prefetch("slow")
    until(lambda: active_loads(slow_fact) == 1)
    started = time.monotonic()
    s.close()
    assert time.monotonic() - started < 3.0
    until(lambda: active_loads(slow_fact) == 0, timeout=3.0)


def kill_loads(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'fraiseql-nb arrow' AND datname = current_database()"
        )


def test_a_load_killed_by_the_server_is_an_error_and_the_next_query_works(
    slow_fact: str,
) -> None:
    with fq.connect(slow_fact, sample_size=1) as s:
        # In the foreground (backend="arrow"): the error, naming the table.
        # Killed once the load runs on the server, whatever the machine's pace.
        killer = threading.Thread(
            target=lambda: until(lambda: active_loads(slow_fact) == 1) or kill_loads(slow_fact)
        )
        killer.start()
        with pytest.raises(fq.BackendError, match=r"could not load public\.tf_slow"):
            s.execute(SLOW, backend="arrow")
        killer.join()
        # In the background: under auto the failure is said, and not retried by every query.
        s.execute(FEW)
        until(lambda: active_loads(slow_fact) == 1)
        kill_loads(slow_fact)
        until(lambda: not s.cache_stats()["loading"])
        r = s.execute(FEW)
        assert r.backend == "postgres"  # type: ignore[union-attr]
        assert r.reason.startswith("arrow load failed: the analytics plane could not load")  # type: ignore[union-attr]
        assert active_loads(slow_fact) == 0
        # The next explicit load reconnects (a killed connection is not reused) and succeeds.
        again = s.execute(FEW, backend="arrow")
        assert again.df.to_dicts() == [{"count": 3, "amount_sum": 6.0}]  # type: ignore[union-attr]


def test_a_dropped_fact_table_is_a_backend_error_naming_it(scratch_dsn: str) -> None:
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE tf_gone (id bigint, amount float8); INSERT INTO tf_gone VALUES (1, 2.5)"
        )
    with fq.connect(scratch_dsn) as s:
        assert s.execute("{ gone_aggregate { amount_sum } }", backend="arrow").df.to_dicts() == [  # type: ignore[union-attr]
            {"amount_sum": 2.5}
        ]
        with psycopg.connect(scratch_dsn, autocommit=True) as conn:
            conn.execute("DROP TABLE tf_gone")
        for backend in ("arrow", "postgres", "auto"):
            with pytest.raises(fq.BackendError, match=r"public\.tf_gone") as info:
                s.execute("{ gone_aggregate { amount_sum } }", backend=backend)
            assert "does not exist any more" in str(info.value)


def test_an_altered_fact_table_is_a_backend_error_naming_it(scratch_dsn: str) -> None:
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE tf_shift (id bigint, amount float8, extra float8);"
            " INSERT INTO tf_shift VALUES (1, 2.5, 1)"
        )
    with fq.connect(scratch_dsn) as s:
        s.execute("{ shift_aggregate { amount_sum extra_sum } }", backend="arrow")
        with psycopg.connect(scratch_dsn, autocommit=True) as conn:
            conn.execute("ALTER TABLE tf_shift DROP COLUMN extra")
        for backend in ("arrow", "postgres"):
            with pytest.raises(fq.BackendError, match=r"public\.tf_shift has changed") as info:
                s.execute("{ shift_aggregate { amount_sum extra_sum } }", backend=backend)
            assert 'column "extra" does not exist' in str(info.value)
        # What is still there still answers, on every plane.
        for backend in ("arrow", "postgres"):
            r = s.execute("{ shift_aggregate { amount_sum } }", backend=backend)
            assert r.df.to_dicts() == [{"amount_sum": 2.5}]  # type: ignore[union-attr]


def test_how_long_a_load_has_left() -> None:
    from fraiseql_nb.planes.arrow.background import Job

    unknown = Job("k", "public.v", expected_rows=0)  # a view: the planner does not know
    assert unknown.eta_s() == float("inf") and unknown.percent == 0
    job = Job("k", "public.t", expected_rows=1000, expected_bytes=80_000_000)
    job.started -= 2.0
    assert 0 <= job.eta_s() < 0.2  # nothing received yet: ~1 s of 80 MB, 2 s gone
    job.report(250, 1)
    assert job.percent == 25
    assert 6.5 < job.eta_s() < 7.5  # a quarter in 2 s: 6 s more, and the frames
    job.report(5000, 1)
    assert job.percent == 99  # the estimate was low: never 100 before it is done
