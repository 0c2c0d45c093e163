"""[limits] max_result_mb: a buffered result stops within a batch of the limit, its query
cancelled, on every plane; stream() is not bounded; one request's roots count together."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

import fraiseql_nb as fq
from fraiseql_nb.config import load_config
from fraiseql_nb.ops.budget import ResultBudget, ResultLimitError, auto_result_mb, budgeted, current
from tests.conftest import own_database
from tests.interrupting import active, pool_settles, until

SETUP = """
CREATE VIEW v_endless AS
  SELECT g::bigint AS id, jsonb_build_object('id', g, 'pad', repeat('x', 100)) AS data
  FROM (SELECT generate_series(1, 1000000000) AS g) AS s;
CREATE VIEW v_block AS
  SELECT g::bigint AS id, jsonb_build_object('id', g, 'pad', repeat('y', 100)) AS data
  FROM generate_series(1, 30000) AS g;
CREATE TABLE tf_wide (id bigint PRIMARY KEY, amount float8 NOT NULL, dimensions jsonb NOT NULL);
INSERT INTO tf_wide SELECT g, g * 1.5, jsonb_build_object('tag', 'tag-number-' || g)
  FROM generate_series(1, 60000) AS g;
"""


@pytest.fixture(scope="module")
def dsn(server_dsn: str) -> Iterator[str]:
    with own_database(server_dsn, "fq_budget") as target:
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(SETUP)
        yield target


def limited(dsn: str, mb: int) -> fq.Session:
    return fq.connect(dsn, sample_size=5, config={"limits": {"max_result_mb": mb}})


# ------------------------------------------------------------------ pure


def test_the_default_is_a_quarter_of_memory_at_most_2_gib() -> None:
    auto = auto_result_mb()
    assert 64 <= auto <= 2048
    assert load_config({}).limits.result_mb() == auto
    assert load_config({"limits": {"max_result_mb": 10}}).limits.result_mb() == 10
    with pytest.raises(fq.ConfigError, match=r"limits.max_result_mb must be a whole number"):
        load_config({"limits": {"max_result_mb": "big"}})
    env = load_config({}, environ={"FRAISEQL_LIMITS_MAX_RESULT_MB": "7"})
    assert env.limits.max_result_mb == 7


def test_a_budget_counts_what_is_kept_and_what_is_held() -> None:
    b = ResultBudget(1)  # 1 MiB
    b.check("a", 1024 * 1024, 10)  # exactly the limit: allowed
    b.keep("a", 600_000, 10)
    with pytest.raises(ResultLimitError) as info:
        b.check("b", 500_000, 99)
    assert info.value.rows == 99
    assert info.value.held_bytes == 1_100_000
    assert "the result of b" in str(info.value) and "other results" in str(info.value)
    assert isinstance(info.value, fq.QueryError)


def test_an_enclosing_budget_is_shared() -> None:
    assert current() is None
    with budgeted(5) as outer, budgeted(100) as inner:
        assert inner is outer and current() is outer
        assert outer.limit_bytes == 5 * 1024 * 1024
    assert current() is None


# ------------------------------------------------------------------ on the database


@pytest.mark.parametrize("backend", ["wire", "postgres"])
def test_a_runaway_row_query_stops_at_the_limit_and_is_cancelled(dsn: str, backend: str) -> None:
    cfg = {"limits": {"max_result_mb": 8}, "backends": {"use_wire_backend": backend == "wire"}}
    with fq.connect(dsn, sample_size=5, config=cfg) as s:
        started = time.monotonic()
        with pytest.raises(ResultLimitError) as info:
            s.execute("{ endlesses { id pad } }")
        assert time.monotonic() - started < 10
        message = str(info.value)
        assert "max_result_mb = 8 MB" in message
        assert "limit:" in message and "stream()" in message
        # Stopped within one batch (20,000 documents, ~2.6 MB here) of the limit.
        assert 8 * 2**20 < info.value.held_bytes < 8 * 2**20 + 4 * 2**20
        assert 40_000 <= info.value.rows <= 120_000
        until(lambda: not active(dsn), timeout=1)
        r = s.execute("{ blocks(limit: 2) { id } }")
        assert r.df["id"].to_list() == [1, 2]  # type: ignore[union-attr]
        pool_settles(s)


def test_stream_is_not_bounded(dsn: str) -> None:
    with limited(dsn, 1) as s:
        last = {}
        for seen, doc in enumerate(s.stream("{ endlesses { id pad } }"), start=1):
            last = doc
            if seen == 60_000:  # ~7 MB of documents: seven times the limit
                break
        assert last["id"] == 60_000
        until(lambda: not active(dsn), timeout=1)


def test_the_roots_of_one_request_count_together(dsn: str) -> None:
    with limited(dsn, 5) as s:
        one = s.execute("{ blocks { id pad } }")
        size = one.metrics.result_bytes  # type: ignore[union-attr]
        assert 3 * 2**20 < size < 5 * 2**20  # one fits
        with pytest.raises(ResultLimitError, match="other results"):
            s.execute("{ a: blocks { id pad } b: blocks { id pad } }")
        # The next request has its own budget.
        assert s.execute("{ blocks { id } }").df.height == 30_000  # type: ignore[union-attr]


@pytest.mark.parametrize("backend", ["arrow", "postgres"])
def test_a_window_or_aggregate_result_over_the_limit_is_refused(dsn: str, backend: str) -> None:
    with limited(dsn, 1) as s:
        with pytest.raises(ResultLimitError, match="the result of wide_window"):
            s.execute("{ wide_window { id amount tag } }", backend=backend)
        with pytest.raises(ResultLimitError, match="the result of wide_aggregate"):
            s.execute(
                "{ wide_aggregate(groupBy: {tag: true}) { tag amount_sum } }", backend=backend
            )
        small = s.execute("{ wide_aggregate { count amount_sum } }", backend=backend)
        assert small.df["count"].to_list() == [60_000]  # type: ignore[union-attr]
