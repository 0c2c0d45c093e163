"""The row plane against a real PostgreSQL: streaming, DataFrames, paging, faults, concurrency."""

from __future__ import annotations

import _thread
import gc
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import polars as pl
import psycopg
import pytest
from psycopg import sql

import fraiseql_nb as fq
from fraiseql_nb.local import demo
from fraiseql_nb.pg.pool import APPLICATION_NAME

QUERIES = [
    "{ users { id name email status age score created_at address { city country zip } tags } }",
    "{ users(where: {age: {gte: 60}}, orderBy: [{age: DESC}, {name: ASC}]) { id name age } }",
    '{ users(where: {address: {city: {in: ["Paris", "Tokyo"]}}}, limit: 50, offset: 20) { n: name address { city } } }',
    "{ orders(orderBy: {total: DESC}, limit: 30) { id total customer { name } items { product_name quantity } } }",
    '{ products(where: {category: {eq: "books"}}) { id name price attributes { color } } }',
    "{ users(orderBy: {created_at: ASC_NULLS_FIRST}, limit: 0) { id } }",
]


@pytest.fixture(scope="module")
def odd_dsn(server_dsn: str) -> Iterator[str]:
    """A database with views for fault tests: endless, slow, and nulls-first documents."""
    name = f"fq_rows_{uuid.uuid4().hex[:10]}"
    dsn = demo.ensure_database(server_dsn, name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            """
            -- generate_series in the select list streams; in FROM it would
            -- materialise all its rows before the first one is returned.
            CREATE VIEW v_endless AS
              SELECT g::bigint AS id, jsonb_build_object('id', g, 'pad', repeat('x', 100)) AS data
              FROM (SELECT generate_series(1, 1000000000) AS g) AS s;
            CREATE VIEW v_slow AS
              SELECT g::bigint AS id,
                     jsonb_build_object('id', g, 'slept', (SELECT true FROM pg_sleep(0.05 + 0 * g))) AS data
              FROM generate_series(1, 1000) AS g;
            CREATE TABLE tv_late (id bigint PRIMARY KEY, data jsonb NOT NULL);
            INSERT INTO tv_late SELECT g, jsonb_build_object('id', g, 'x', 1, 'at', '2024-01-01T00:00:00Z')
              FROM generate_series(1, 3000) AS g;
            """
        )
    yield dsn
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def active_queries(dsn: str) -> list[str]:
    """Our statements still running on the server (other than this probe)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT query FROM pg_stat_activity WHERE application_name = %s AND state = 'active'"
                " AND datname = current_database()",
                (APPLICATION_NAME,),
            )
        ]


def wait_idle(dsn: str, timeout: float = 1.0) -> float:
    """Seconds until no query of ours runs; fails after ``timeout``."""
    start = time.monotonic()
    while active_queries(dsn):
        assert time.monotonic() - start < timeout, f"still running: {active_queries(dsn)}"
        time.sleep(0.02)
    return time.monotonic() - start


# ------------------------------------------------------------ results


@pytest.mark.parametrize("query", QUERIES)
def test_stream_and_execute_return_the_same_documents_in_order(
    session: fq.Session, query: str
) -> None:
    streamed = list(session.stream(query))
    result = session.execute(query)
    assert isinstance(result, fq.Result)
    assert result.to_dicts() == streamed
    assert result.backend == "wire"
    assert result.metrics.rows == len(streamed)


def test_dataframe_columns_and_dtypes_come_from_the_schema(session: fq.Session) -> None:
    r = session.execute(
        "{ users(limit: 5) { id who: name age score created_at tags address { city zip } } }"
    )
    assert isinstance(r, fq.Result)
    assert r.df.schema == pl.Schema(
        {
            "id": pl.Int64,
            "who": pl.String,
            "age": pl.Int64,
            "score": pl.Float64,
            "created_at": pl.Datetime("us", "UTC"),
            "tags": pl.List(pl.String),
            "address": pl.Struct({"city": pl.String, "zip": pl.String}),
        }
    )
    assert r.to_arrow().num_rows == 5
    assert r.to_graphql()["data"]["users"][0]["created_at"] == "2024-02-21T06:15:22Z"


def test_dtypes_hold_when_the_first_thousands_are_null(session: fq.Session) -> None:
    r = session.execute("{ users(orderBy: {age: ASC_NULLS_FIRST}) { id age } }")
    assert isinstance(r, fq.Result)
    ages = r.df["age"]
    assert ages.dtype == pl.Int64
    assert ages.null_count() > 400
    assert ages[0] is None
    assert ages[-1] == 89
    empty = session.execute(
        '{ users(where: {name: {eq: "nobody at all"}}) { id created_at address { city } } }'
    )
    assert isinstance(empty, fq.Result)
    assert empty.df.height == 0
    assert empty.df.schema["created_at"] == pl.Datetime("us", "UTC")


def test_metrics_and_sql(session: fq.Session) -> None:
    r = session.execute('{ users(where: {name: {contains: "O\'B"}}, limit: 3) { id } }')
    assert isinstance(r, fq.Result)
    m = r.metrics
    assert (m.backend, m.kind, m.root_field, m.rows) == ("wire", "rows", "users", 3)
    assert 0 <= m.ttfr_ms <= m.duration_ms
    assert m.bytes > 0
    assert m.result_bytes > 0
    assert "LIKE ('%O''B%'::text)" in r.sql  # values inlined for reading; bound when run
    assert "%(p" not in r.sql


def test_several_root_fields(session: fq.Session) -> None:
    rs = session.execute("{ a: users(limit: 2) { id } b: user(id: 3) { name } }")
    assert isinstance(rs, fq.Results)
    assert list(rs) == ["a", "b"]
    assert rs.to_graphql() == {"data": {"a": [{"id": 1}, {"id": 2}], "b": {"name": "Priya 王"}}}
    missing = session.execute("{ user(id: 123456789) { name } }")
    assert missing.to_graphql() == {"data": {"user": None}}  # type: ignore[union-attr]


# ------------------------------------------------------------ paging


@pytest.mark.parametrize(
    "order",
    [
        "",
        "orderBy: [{age: DESC}, {name: ASC}]",
        "orderBy: {age: ASC_NULLS_FIRST}",
        "orderBy: [{address: {city: DESC_NULLS_FIRST}}, {score: ASC}]",
        "orderBy: {created_at: DESC}",
    ],
)
def test_keyset_pages_equal_offset_pages(session: fq.Session, order: str) -> None:
    page = session.execute(f"{{ users({order}, limit: 2100) {{ id }} }}")
    assert isinstance(page, fq.Result)
    keyset: list[int] = []
    while page is not None:
        keyset += page.df["id"].to_list()
        page = page.next_page()
    offset: list[int] = []
    for start in range(0, 10_000, 2100):
        r = session.execute(f"{{ users({order}, limit: 2100, offset: {start}) {{ id }} }}")
        assert isinstance(r, fq.Result)
        offset += r.df["id"].to_list()
    assert keyset == offset
    assert sorted(keyset) == list(range(1, 10_001))


def test_after_argument_continues_from_an_id(session: fq.Session) -> None:
    first = session.execute("{ users(orderBy: {age: DESC}, limit: 5) { id age } }")
    assert isinstance(first, fq.Result)
    last = first.df["id"][-1]
    after = session.execute(
        f"{{ users(orderBy: {{age: DESC}}, limit: 5, after: {last}) {{ id }} }}"
    )
    both = session.execute("{ users(orderBy: {age: DESC}, limit: 10) { id } }")
    assert isinstance(after, fq.Result)
    assert isinstance(both, fq.Result)
    assert first.df["id"].to_list() + after.df["id"].to_list() == both.df["id"].to_list()


def test_next_page_needs_a_limit(session: fq.Session) -> None:
    r = session.execute("{ products { id } }")
    assert isinstance(r, fq.Result)
    with pytest.raises(fq.QueryError, match="needs a row query with a limit"):
        r.next_page()


# ------------------------------------------------------ streaming bounds


def test_stream_memory_stays_bounded(odd_dsn: str) -> None:
    """200K documents through a stream in a separate process: peak RSS must not grow."""
    script = f"""
import resource, fraiseql_nb as fq
s = fq.connect({odd_dsn!r}, sample_size=10)
it = s.stream("{{ endlesses {{ id pad }} }}")
for i, _ in zip(range(2000), it): pass
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for i, _ in zip(range(200_000), it): pass
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
it.close()
s.close()
print((after - before) / 1024)
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    growth_mb = float(out.stdout.strip().splitlines()[-1])
    assert growth_mb < 16, f"peak RSS grew {growth_mb:.1f} MB over 200K streamed documents"


def test_leaving_a_stream_early_stops_the_server_query(odd_dsn: str) -> None:
    with fq.connect(odd_dsn, sample_size=10) as s:
        for i, _ in enumerate(s.stream("{ endlesses { id } }")):
            if i == 10:
                break
        assert wait_idle(odd_dsn) < 1.0
        assert s.pool_stats()["active"] == 0

        with pytest.raises(RuntimeError, match="boom"):
            for i, _ in enumerate(s.stream("{ endlesses { id } }")):
                if i == 10:
                    raise RuntimeError("boom")
        assert wait_idle(odd_dsn) < 1.0

        it = s.stream("{ endlesses { id } }")
        next(it)
        assert active_queries(odd_dsn)  # running while the generator lives
        del it
        gc.collect()
        assert wait_idle(odd_dsn) < 1.0
        assert s.execute("{ late(id: 5) { id } }").df["id"].to_list() == [5]  # type: ignore[union-attr]


@pytest.mark.parametrize("how", ["stream", "execute"])
def test_interrupt_cancels_the_server_query_and_keeps_the_pool(odd_dsn: str, how: str) -> None:
    with fq.connect(odd_dsn, sample_size=10) as s:
        threading.Timer(0.5, _thread.interrupt_main).start()
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            if how == "stream":
                for _ in s.stream("{ endlesses { id } }"):
                    pass
            else:
                s.execute("{ endlesses { id pad } }")
        assert time.monotonic() - started < 2.0
        assert wait_idle(odd_dsn) < 1.0
        assert s.execute("{ lates(limit: 3) { id } }").df["id"].to_list() == [1, 2, 3]  # type: ignore[union-attr]


# ---------------------------------------------------------------- faults


def test_a_terminated_backend_is_a_backend_error_and_the_next_query_works(odd_dsn: str) -> None:
    with fq.connect(odd_dsn, sample_size=10) as s:
        with pytest.raises(fq.BackendError, match="connection to PostgreSQL was lost"):
            for i, _ in enumerate(s.stream("{ endlesses { id } }")):
                if i == 1000:
                    with psycopg.connect(odd_dsn, autocommit=True) as killer:
                        killer.execute(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                            " WHERE application_name = %s AND state = 'active'"
                            " AND datname = current_database()",
                            (APPLICATION_NAME,),
                        )
        assert s.execute("{ lates(limit: 2) { id } }").df.height == 2  # type: ignore[union-attr]


def test_statement_timeout_is_reported_as_such(odd_dsn: str) -> None:
    cfg = {"connections": {"statement_timeout_ms": 300}}
    with fq.connect(odd_dsn, config=cfg, sample_size=1) as s:
        started = time.monotonic()
        with pytest.raises(fq.BackendError, match=r"statement timeout \(300 ms\)") as info:
            s.execute("{ slows { id } }")
        assert time.monotonic() - started < 3
        assert info.value.sqlstate == "57014"
        assert s.execute("{ slow(id: 1) { id } }").df.height == 1  # type: ignore[union-attr]


def test_a_restarted_server_costs_no_error(odd_dsn: str, embedded_home: Any) -> None:
    if embedded_home is None:
        pytest.skip("needs the embedded test server (cannot restart $FRAISEQL_TEST_DSN)")
    from fraiseql_nb.local import embedded

    with fq.connect(odd_dsn, sample_size=10) as s:
        assert s.execute("{ lates(limit: 1) { id } }").df.height == 1  # type: ignore[union-attr]
        embedded.stop(embedded_home)
        embedded.start(embedded_home)
        assert s.execute("{ lates(limit: 2) { id } }").df.height == 2  # type: ignore[union-attr]


def test_unreachable_dsn_is_a_masked_backend_error() -> None:
    started = time.monotonic()
    with pytest.raises(fq.BackendError) as info:
        fq.connect(
            "postgresql://u:hunter22@127.0.0.1:1/x",
            config={"connections": {"connect_timeout_s": 2}},
        )
    assert time.monotonic() - started < 5
    assert "hunter22" not in str(info.value)
    assert "postgresql://u:***@127.0.0.1:1/x" in str(info.value)


# ----------------------------------------------------------- concurrency


def test_thirty_two_threads_over_a_pool_of_sixteen(session: fq.Session, demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        names = dict(conn.execute("SELECT id, data->>'name' FROM v_user WHERE id <= 64").fetchall())
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for rep in range(3):
                uid = (k * 5 + rep) % 64 + 1
                r = session.execute(f"{{ users(where: {{id: {{eq: {uid}}}}}) {{ id name }} }}")
                assert r.to_dicts() == [{"id": uid, "name": names[uid]}]  # type: ignore[union-attr]
                got = list(session.stream(f"{{ user(id: {uid}) {{ name }} }}"))
                assert got == [{"name": names[uid]}]
        except BaseException as exc:  # noqa: BLE001 - collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    stats = session.pool_stats()
    assert stats["max"] == 16
    assert stats["size"] <= 16
    assert stats["waiting"] == 0


def test_no_free_connection_is_a_clear_error(demo_dsn: str) -> None:
    cfg = {"connections": {"pool_size": 1, "pool_timeout_s": 0.5}}
    with fq.connect(demo_dsn, config=cfg) as s:
        held = s.stream("{ users { id } }")
        next(held)  # holds the only connection
        with pytest.raises(
            fq.BackendError, match=r"no database connection became free within 0.5 s: all 1"
        ):
            s.execute("{ users(limit: 1) { id } }")
        held.close()
        assert s.execute("{ users(limit: 1) { id } }").df.height == 1  # type: ignore[union-attr]


def test_stream_takes_one_row_query(session: fq.Session) -> None:
    with pytest.raises(fq.QueryError, match="stream\\(\\) takes exactly one row query"):
        list(session.stream("{ a: users { id } b: users { id } }"))
    with pytest.raises(fq.QueryError, match="Cannot query field 'nme'"):
        list(session.stream("{ users { nme } }"))


def test_a_row_statement_is_compiled_once_and_shown_as_sent(
    demo_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One compile per new statement, a list filter included; what a result and explain
    show is that statement with its values inlined — the same text a literal compile of
    the same query gives."""
    from fraiseql_nb.planes import wire
    from fraiseql_nb.query import parse_query
    from fraiseql_nb.sql import Params, compile_row_query

    calls: list[str] = []
    real = wire.compile_rows

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[0].key)
        return real(*args, **kwargs)

    monkeypatch.setattr(wire, "compile_rows", counted)
    query = "{ users(where: {id: {in: [3, 1, 2]}}, orderBy: [{id: ASC}]) { id name } }"
    with fq.connect(demo_dsn) as s:
        first = s.execute(query)
        again = s.execute(query)
        plan = s.explain(query).plans[0]
        assert first.df["id"].to_list() == again.df["id"].to_list() == [1, 2, 3]
        assert calls == ["users"]  # the list filter's query is compiled once too
        q = parse_query(query, s.schema).queries[0]
        entity = s.schema.entity("users")
        literal = compile_row_query(
            q, entity, Params(literal=True), as_text=True, fixed=True, guard=False
        ).as_string(None)
    assert first.sql == again.sql == plan.sql["wire"] == literal
    assert "%(p" not in literal and "3" in literal


def test_equal_values_of_other_json_kinds_are_other_statements(scratch_dsn: str) -> None:
    """1, 1.0 and true are equal in Python (and hash alike) but not in a JSON document: a
    statement compiled for one is never reused for the other."""
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE tv_mixed (id bigint PRIMARY KEY, data jsonb NOT NULL);"
            """INSERT INTO tv_mixed VALUES (1, '{"id": 1, "v": 1}'), (2, '{"id": 2, "v": true}'),"""
            """ (3, '{"id": 3, "v": "x"}')"""
        )
    with fq.connect(scratch_dsn) as s:
        answers = {
            text: s.execute(f"{{ mixeds(where: {{v: {{eq: {text}}}}}) {{ id }} }}")
            .df["id"]
            .to_list()
            for text in ("1", "true", "1", "true")
        }
        assert answers == {"1": [1], "true": [2]}
        assert s.execute("{ mixeds(where: {v: {eq: true}}) { id } }").df["id"].to_list() == [2]
        assert s.execute("{ mixeds(where: {v: {eq: 1}}) { id } }").df["id"].to_list() == [1]
