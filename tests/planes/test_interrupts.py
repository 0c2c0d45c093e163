"""A SIGINT (what a kernel interrupt sends) at each moment of a query's life.

Each case waits until the query has reached its moment (seen on the server,
in the pool or in the plane), then signals the process as Jupyter does, and
checks: KeyboardInterrupt within a second, the server statement cancelled,
the session answering the next query, and no thread left behind.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

import fraiseql_nb as fq
from fraiseql_nb.ops import progress
from fraiseql_nb.planes import _fetch
from tests.conftest import SLOW_ROWS, own_database
from tests.interrupting import Interrupter, active, pool_settles, until

SETUP = """
CREATE VIEW v_endless AS
  SELECT g::bigint AS id, jsonb_build_object('id', g, 'pad', repeat('x', 100)) AS data
  FROM (SELECT generate_series(1, 1000000000) AS g) AS s;
-- Sleeps only once a test sets sleep_for (connecting samples the view).
CREATE TABLE sleep_for (s float8 NOT NULL);
INSERT INTO sleep_for VALUES (0);
CREATE VIEW v_sleepy AS
  SELECT g::bigint AS id, jsonb_build_object('id', g) AS data
  FROM (SELECT pg_sleep(s) FROM sleep_for) AS z, generate_series(1, 3) AS g;
CREATE VIEW v_few AS
  SELECT g::bigint AS id, jsonb_build_object('id', g) AS data FROM generate_series(1, 3) AS g;
"""
SLOW_FACT = (
    "CREATE VIEW tf_slow AS SELECT g::bigint AS id, g::float8 AS amount,"
    " (SELECT 1 FROM pg_sleep(0.01 + 0 * g))::int AS flag_id"
    f" FROM generate_series(1, {SLOW_ROWS}) AS g"
)


@pytest.fixture(scope="module")
def dsn(server_dsn: str) -> Iterator[str]:
    with own_database(server_dsn, "fq_intr") as target:
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(SETUP)
            conn.execute(SLOW_FACT)
        yield target


def interrupted(run: Callable[[], Any], condition: Callable[[], bool]) -> float:
    """Run ``run`` until an interrupt sent when ``condition`` holds stops it; the seconds
    between the signal and the KeyboardInterrupt."""
    with Interrupter(condition) as sender:
        try:
            run()
        except KeyboardInterrupt:
            return sender.delay()
        sender.delay()
    raise AssertionError("the query ended without the interrupt")


def threads() -> set[int]:
    return {t.ident for t in threading.enumerate() if t.ident is not None}


def no_thread_left(before: set[int]) -> None:
    deadline = time.monotonic() + 5
    while True:
        left = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
        if not left:
            return
        assert time.monotonic() < deadline, f"threads left behind: {[t.name for t in left]}"
        time.sleep(0.05)


@pytest.fixture
def before() -> set[int]:
    return threads()


def usable(s: fq.Session) -> None:
    r = s.execute("{ fews { id } }", backend="wire")
    assert r.df["id"].to_list() == [1, 2, 3]  # type: ignore[union-attr]


def test_while_waiting_for_a_pooled_connection(dsn: str, before: set[int]) -> None:
    cfg = {"connections": {"pool_size": 1, "pool_timeout_s": 60}}
    s = fq.connect(dsn, config=cfg, sample_size=5)
    try:
        holder = s.stream("{ endlesses { id } }")
        next(holder)  # the pool's only connection is now busy
        took = interrupted(
            lambda: s.execute("{ fews { id } }"), lambda: s.pool_stats()["waiting"] >= 1
        )
        assert took < 1.0
        holder.close()  # gives the connection back, cancelling its query
        until(lambda: not active(dsn), timeout=2)
        usable(s)
        assert s.pool_stats()["size"] == 1
    finally:
        s.close()
    no_thread_left(before)


def sleep_for(dsn: str, seconds: float) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE sleep_for SET s = %s", (seconds,))


def test_while_waiting_for_the_first_row(dsn: str, before: set[int]) -> None:
    with fq.connect(dsn, sample_size=5) as s:
        sleep_for(dsn, 60)
        try:
            took = interrupted(
                lambda: s.execute("{ sleepies { id } }"), lambda: bool(active(dsn, "%v_sleepy%"))
            )
        finally:
            sleep_for(dsn, 0)
        assert took < 1.0
        until(lambda: not active(dsn), timeout=1)
        usable(s)
    no_thread_left(before)


@pytest.mark.parametrize("how", ["execute", "stream"])
def test_while_streaming(dsn: str, before: set[int], how: str) -> None:
    batches = []

    def run() -> None:
        if how == "stream":
            for i, _ in enumerate(s.stream("{ endlesses { id pad } }")):
                if i % 10_000 == 0:
                    batches.append(i)
        else:
            with progress.listening(lambda what, rows, nbytes: batches.append(rows)):
                s.execute("{ endlesses { id pad } }")

    with fq.connect(dsn, sample_size=5) as s:
        took = interrupted(run, lambda: len(batches) >= 3)
        assert took < 1.0
        until(lambda: not active(dsn), timeout=1)
        usable(s)
        pool_settles(s)
    no_thread_left(before)


def test_while_polars_parses_a_batch(
    dsn: str, before: set[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Polars hooks SIGINT itself and aborts whatever it computes on any thread: the
    interrupt then reaches the cell twice (Polars', Python's), the second inside the
    cleanup. It must still end as one KeyboardInterrupt, the pool whole."""
    parsing = threading.Event()
    real = _fetch.parse_ndjson

    def parse(data: bytes, schema: dict[str, Any]) -> Any:
        parsing.set()
        return real(data, schema)

    monkeypatch.setattr(_fetch, "parse_ndjson", parse)
    with fq.connect(dsn, sample_size=5, config={"connections": {"pool_size": 2}}) as s:
        for _ in range(5):  # at five different batches
            parsing.clear()
            took = interrupted(lambda: s.execute("{ endlesses { id pad } }"), parsing.is_set)
            assert took < 1.0
            until(lambda: not active(dsn), timeout=1)
            usable(s)
        pool_settles(s)
    no_thread_left(before)


def test_while_the_arrow_plane_loads(dsn: str, before: set[int]) -> None:
    """ADBC swaps in its own SIGINT handler during each call: an interrupt landing in a
    short one (the view's catalogue reads before the load) was lost one time in four."""
    with fq.connect(dsn, sample_size=5) as s:
        for _ in range(4):
            s.refresh()
            took = interrupted(
                lambda: s.execute("{ slow_aggregate { count amount_sum } }", backend="arrow"),
                lambda: bool(active(dsn, "%tf_slow%")),
            )
            assert took < 1.0
            until(lambda: not active(dsn), timeout=1)
            usable(s)
    no_thread_left(before)


def test_while_a_background_load_runs(dsn: str, before: set[int]) -> None:
    """The cell's own query stops; the table's background load is not the cell's and is
    not marked failed: the next query starts it again if Polars' hook stopped it."""
    with fq.connect(dsn, sample_size=5) as s:
        first = s.execute("{ slow_aggregate(where: {id: {lte: 3}}) { count } }")
        assert first.backend == "postgres"  # type: ignore[union-attr]
        took = interrupted(
            lambda: s.execute("{ endlesses { id pad } }"),
            lambda: bool(active(dsn, "%v_endless%")),
        )
        assert took < 1.0
        until(lambda: not active(dsn, "%v_endless%"), timeout=1)
        usable(s)
        s.prefetch("slow", wait=True)
        # tf_slow is a view whose rows cannot be proven unchanged once any transaction ran
        # on the server since the load (CI's autovacuum does): under background loads it
        # would be answered on PostgreSQL while it reloads. Settled, the plane reloads first
        # — and a load marked failed would still send it to PostgreSQL, saying so.
        s.settle_loads = True
        r = s.execute("{ slow_aggregate { count } }")
        assert r.backend == "arrow", r.reason  # type: ignore[union-attr]
        assert r.df["count"].to_list() == [SLOW_ROWS]  # type: ignore[union-attr]
    until(lambda: not active(dsn), timeout=5)
    no_thread_left(before)


def test_while_connecting(before: set[int]) -> None:
    """A server that accepts the connection and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        connecting = threading.Event()

        def accept() -> None:
            with listener.accept()[0]:
                connecting.set()
                time.sleep(3)

        holder = threading.Thread(target=accept, daemon=True)
        holder.start()
        took = interrupted(
            lambda: fq.connect(f"postgresql://fq@127.0.0.1:{port}/db", sample_size=1),
            connecting.is_set,
        )
        assert took < 1.0
        holder.join(5)
    no_thread_left(before)
