"""The persisted column store: reuse by new processes, exact incremental freshness, damage,
concurrency, privacy, and the CLI that shows and empties it."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

import fraiseql_nb as fq
from tests.conftest import ENV_STORE, REPO, TINY, plane_of, run_cli, tenant_dsn
from tests.planes.conftest import append_sales
from tests.planes.corpus import assert_same

QUERY = "{ sales_aggregate(groupBy: {category: true}) { category count revenue_sum } }"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store of the test's own (the environment wins over config: set it there)."""
    path = tmp_path / "store"
    monkeypatch.setenv(ENV_STORE, str(path))
    return path


def connect(dsn: str, store: Path, *, capture: bool = True) -> fq.Session:
    """A session using ``store``; ``capture=False`` keeps loaded rows exact by the scan
    (the path of servers without logical decoding), which these tests are about."""
    assert os.environ[ENV_STORE] == str(store)
    return fq.connect(dsn, config={"arrow_backend": {"change_capture": capture}})


def script(dsn: str, code: str) -> list[str]:
    """A command running ``code`` (which sets ``out``) in a fresh Python with session ``s``
    open (its store from the environment), printing ``out`` as JSON."""
    text = (
        textwrap.dedent(
            f"""
            import json, fraiseql_nb as fq
            s = fq.connect({dsn!r})
            out = {{}}
            """
        )
        + textwrap.dedent(code)
        + "\ns.close()\nprint(json.dumps(out, default=str))\n"
    )
    return [sys.executable, "-c", text]


def in_new_process(dsn: str, store: Path, code: str) -> dict[str, Any]:
    """Run ``code`` (which sets ``out``) in a fresh Python with session ``s`` open."""
    assert os.environ[ENV_STORE] == str(store)
    proc = subprocess.run(script(dsn, code), capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def postgres(s: fq.Session, query: str = QUERY) -> Any:
    return s.execute(query, backend="postgres").df  # type: ignore[union-attr]


# --------------------------------------------------------------- reuse


def test_a_new_process_answers_from_the_store_without_reading_the_table(
    tiny: str, store: Path
) -> None:
    with connect(tiny, store) as s:
        s.prefetch("sales", wait=True)
        expected = postgres(s).to_dicts()
    # Files are the owner's only: the store holds table data.
    [entry] = [p for p in store.iterdir() if p.is_dir()]
    assert stat.S_IMODE(entry.stat().st_mode) == 0o700
    assert {stat.S_IMODE(f.stat().st_mode) for f in entry.iterdir()} == {0o600}
    out = in_new_process(
        tiny,
        store,
        f"""
        r = s.execute({QUERY!r})
        out.update(backend=r.backend, reason=r.reason, hit=r.metrics.cache_hit,
                   loaded=r.metrics.bytes, rows=r.df.to_dicts(),
                   adbc_connections=s._planes["arrow"]._connections.opened, loads=s._planes["arrow"].loads)
        """,
    )
    assert out["backend"] == "arrow" and out["reason"] == "stored" and out["hit"] is True
    # Nothing loaded: no load statement. One connection at most: when any transaction of
    # the cluster (autovacuum's ANALYZE of the new table, say) ran since the prefetch, the
    # snapshot moved and a check proves that nothing was appended (CI saw it once).
    assert (out["loaded"], out["loads"]) == (0, 0)
    assert out["adbc_connections"] <= 1
    assert len(out["rows"]) == len(expected) == 8
    for got, want in zip(out["rows"], expected, strict=True):
        assert got["count"] == want["count"]
        assert got["revenue_sum"] == pytest.approx(want["revenue_sum"], rel=1e-12)
    # A transaction elsewhere moves the snapshot: the next process checks (one connection,
    # one statement) that nothing was appended, and still loads nothing.
    with psycopg.connect(tiny, autocommit=True) as conn:
        conn.execute("SELECT txid_current()")  # assigns a transaction id: xmax moves
    again = in_new_process(
        tiny,
        store,
        f"""
        r = s.execute({QUERY!r})
        out.update(hit=r.metrics.cache_hit, loaded=r.metrics.bytes, sql=r.sql,
                   adbc_connections=s._planes["arrow"]._connections.opened, loads=s._planes["arrow"].loads)
        """,
    )
    assert again["hit"] is True and again["sql"] == ""
    assert (again["loaded"], again["loads"], again["adbc_connections"]) == (0, 0, 1)


def test_appended_rows_are_loaded_alone_and_exactly(tiny: str, store: Path) -> None:
    with connect(tiny, store, capture=False) as s:
        full = s.execute(QUERY, backend="arrow")
        with psycopg.connect(tiny, autocommit=True) as conn:
            conn.execute(append_sales(30))
        after = s.execute(QUERY, backend="arrow")
        assert after.metrics.cache_hit is False
        assert "xmin = ANY(" in after.sql and "ctid >= " in after.sql
        # 30 new rows of 3,000: about 1 % of the first load's bytes.
        assert 0 < after.metrics.bytes < full.metrics.bytes * 0.03
        assert_same(after.df, postgres(s), QUERY)
        assert sum(after.df["count"]) == TINY.sales + 30
        assert s.execute(QUERY, backend="arrow").metrics.cache_hit is True
    # The store was appended to: a new process starts from the new rows too, checking only.
    out = in_new_process(
        tiny,
        store,
        f"""
        r = s.execute({QUERY!r}, backend="arrow")
        out.update(n=sum(r.df["count"]), hit=r.metrics.cache_hit, loaded=r.metrics.bytes)
        """,
    )
    assert out == {"n": TINY.sales + 30, "hit": True, "loaded": 0}


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE tf_sales SET revenue = revenue + 1 WHERE id = 7",
        "DELETE FROM tf_sales WHERE id = 11",
        "TRUNCATE tf_sales",
        "ALTER TABLE tf_sales ADD COLUMN note text",
        # A delete and an insert that keep the row count: still a reload.
        f"DELETE FROM tf_sales WHERE id = 12; {append_sales(1)}",
    ],
)
def test_anything_but_appends_reloads_the_table(tiny: str, store: Path, change: str) -> None:
    with connect(tiny, store, capture=False) as s:
        s.execute(QUERY, backend="arrow")
        with psycopg.connect(tiny, autocommit=True) as conn:
            conn.execute(change)
        after = s.execute(QUERY, backend="arrow")
        assert after.metrics.cache_hit is False
        assert "xmin" not in after.sql  # a whole load, not appended rows
        assert_same(after.df, postgres(s), change)


def test_a_write_committed_just_before_a_query_is_never_missed(tiny: str, store: Path) -> None:
    with connect(tiny, store) as s, psycopg.connect(tiny, autocommit=True) as busy:
        s.execute(QUERY, backend="arrow")
        for n in (1, 2, 3):
            # The writer keeps working: PostgreSQL's table statistics lag behind it.
            busy.execute(append_sales(n, offset=n * 1_000_000))
            busy.execute("SELECT count(*) FROM tf_sales")
            r = s.execute(QUERY)
            assert (r.backend, sum(r.df["count"])) == ("arrow", TINY.sales + n * (n + 1) // 2)


def test_rows_of_transactions_running_during_the_load_are_not_missed(
    tiny: str, store: Path
) -> None:
    with connect(tiny, store) as s, psycopg.connect(tiny) as writer:
        writer.execute(append_sales(2))  # a top-level transaction, in progress
        writer.execute("SAVEPOINT nested")
        writer.execute(append_sales(3, offset=2_000_000))  # a subtransaction
        loaded = s.execute(QUERY, backend="arrow")
        assert sum(loaded.df["count"]) == TINY.sales  # neither is visible yet
        writer.commit()
        after = s.execute(QUERY, backend="arrow")
        assert sum(after.df["count"]) == TINY.sales + 5
        assert_same(after.df, postgres(s), QUERY)


# ------------------------------------------------------------- damage


def test_a_damaged_store_file_is_reloaded_never_answered_from(
    tiny: str, store: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with connect(tiny, store) as s:
        s.prefetch("sales", wait=True)
        expected = postgres(s)
    [segment] = store.glob("*/*.arrow")
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle of the column data
    segment.write_bytes(bytes(data))
    with connect(tiny, store) as s:
        r = s.execute(QUERY, backend="arrow")
        assert r.metrics.cache_hit is False and r.metrics.bytes > 0  # loaded again
        assert_same(r.df, expected, QUERY)
    assert "checksum mismatch" in caplog.text
    # A truncated file too.
    with connect(tiny, store) as s:
        s.prefetch("sales", wait=True)
    [segment] = store.glob("*/*.arrow")
    segment.write_bytes(segment.read_bytes()[:100])
    with connect(tiny, store) as s:
        r = s.execute(QUERY, backend="arrow")
        assert r.metrics.cache_hit is False
        assert_same(r.df, expected, QUERY)


def test_two_processes_writing_the_store_at_once(tiny: str, store: Path) -> None:
    code = f"""
    s.prefetch("sales", wait=True)
    out["n"] = sum(s.execute({QUERY!r}, backend="arrow").df["count"])
    """
    procs = [
        subprocess.Popen(
            script(tiny, code), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1] for r in results]
    assert [json.loads(r[0].strip().splitlines()[-1]) for r in results] == [{"n": TINY.sales}] * 2
    assert not list(store.glob("*/.tmp-*"))  # no half-written file left behind
    out = in_new_process(
        tiny, store, f'r = s.execute({QUERY!r}); out.update(reason=r.reason, n=sum(r.df["count"]))'
    )
    assert out == {"reason": "stored", "n": TINY.sales}


def test_an_unwritable_store_warns_once_and_works_from_memory(
    tiny: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the store's folder should be")
    monkeypatch.setenv(ENV_STORE, str(blocked / "store"))

    def load(s: fq.Session) -> None:
        s.prefetch("sales", wait=True)
        plane_of(s, "arrow").flush()  # the store writer has run

    with connect(tiny, blocked / "store") as s:
        with pytest.warns(RuntimeWarning, match="cannot be written") as caught:
            load(s)
        assert len(caught) == 1
        s.refresh()
        load(s)  # no second warning: the store is off for this session
        r = s.execute(QUERY)
        assert (r.backend, r.reason) == ("arrow", "cached")
        assert_same(r.df, postgres(s), QUERY)


# ---------------------------------------------------------- visibility


def test_tables_under_row_level_security_are_never_stored(
    conventions_dsn: str, store: Path
) -> None:
    query = "{ billing_aggregate(groupBy: {tenant_id: true}) { tenant_id count } }"
    for tenant in (1, 2):
        with connect(tenant_dsn(conventions_dsn, tenant), store) as s:
            r = s.execute(query, backend="arrow")
            assert r.df["tenant_id"].to_list() == [tenant]
    assert not [p for p in store.glob("*") if p.is_dir()]


def test_refresh_clears_the_store_for_that_table(tiny: str, store: Path) -> None:
    with connect(tiny, store) as s:
        s.prefetch("sales", wait=True)
        assert len(list(store.glob("*/meta.json"))) == 1
        assert s.refresh("tf_sales") == 1
        assert not list(store.glob("*/meta.json"))


# ----------------------------------------------------------------- CLI


def test_cache_status_and_clear(tiny: str, store: Path) -> None:
    with connect(tiny, store) as s:
        s.prefetch("sales", wait=True)
    env = {"FRAISEQL_ARROW_BACKEND_STORE_DIR": str(store)}
    status = run_cli("cache", "status", env=env)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert re.fullmatch(
        rf"store {re.escape(str(store))} · 1 table · budget [\d,]+ MB \(half the free disk\)",
        lines[0],
    ), lines[0]
    assert "public.tf_sales" in lines[1] and "3,000 rows" in lines[1] and "postgres" in lines[1]
    cleared = run_cli("cache", "clear", env=env)
    assert (cleared.returncode, cleared.stdout.strip()) == (0, "removed 1 stored table")
    (empty,) = run_cli("cache", "status", env=env).stdout.splitlines()
    assert empty.startswith(f"store {store} · 0 tables · budget "), empty
    assert not os.listdir(store) or os.listdir(store) == [".lock"]


# ------------------------------------------------------- review findings


def test_a_slower_writer_never_leaves_older_rows_stamped_current(tiny: str, store: Path) -> None:
    query = "{ sales_aggregate { count revenue_sum } }"
    with connect(tiny, store) as a, connect(tiny, store) as b:
        b.execute(query, backend="arrow")  # B loads before the update...
        with psycopg.connect(tiny, autocommit=True) as conn:
            conn.execute("UPDATE tf_sales SET revenue = revenue + 100000 WHERE id = 1")
        a.execute(query, backend="arrow")  # ... A after it
        plane_of(a, "arrow").flush()
        plane_of(b, "arrow").flush()  # B's older rows land last in the store
        with psycopg.connect(tiny, autocommit=True) as conn:
            conn.execute("CREATE TABLE elsewhere (x int); INSERT INTO elsewhere VALUES (1)")
        a.execute(query, backend="arrow")  # nothing appended: A records its snapshot
        plane_of(a, "arrow").flush()
        expected = postgres(a, query).to_dicts()
    out = in_new_process(
        tiny, store, f"out['rows'] = s.execute({query!r}, backend='arrow').df.to_dicts()"
    )
    assert out["rows"][0]["count"] == expected[0]["count"]
    assert out["rows"][0]["revenue_sum"] == pytest.approx(expected[0]["revenue_sum"], rel=1e-12)


def test_a_damaged_meta_is_reloaded(tiny: str, store: Path) -> None:
    with connect(tiny, store) as s:
        s.prefetch("sales", wait=True)
        expected = postgres(s).to_dicts()
    [meta] = store.glob("*/meta.json")
    good = json.loads(meta.read_text())
    for damage in (
        [1, 2],
        {**good, "columns": None},
        {**good, "columns": {**good["columns"], "ghost": "1"}},
    ):
        meta.write_text(json.dumps(damage))
        with connect(tiny, store) as s:
            r = s.execute(QUERY, backend="arrow")
            assert r.metrics.cache_hit is False
            assert r.df["count"].to_list() == [row["count"] for row in expected]
            s.prefetch("sales", wait=True)
        [meta] = store.glob("*/meta.json")
        good = json.loads(meta.read_text())


def test_a_database_recreated_from_a_template_is_not_answered_from_the_old_one(
    server_dsn: str, store: Path
) -> None:
    import uuid

    from fraiseql_nb.pg.conninfo import with_database

    template, copy = f"fq_tpl_{uuid.uuid4().hex[:8]}", f"fq_cpy_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(server_dsn, autocommit=True)
    try:
        admin.execute(f'CREATE DATABASE "{template}"')
        with psycopg.connect(with_database(server_dsn, template), autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE tf_work (id bigint, amount float8);"
                " INSERT INTO tf_work SELECT g, g FROM generate_series(1, 100) AS g"
            )
        admin.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{template}"')
        dsn = with_database(server_dsn, copy)
        query = "{ work_aggregate { amount_sum } }"
        with connect(dsn, store) as s:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("UPDATE tf_work SET amount = amount + 1000 WHERE id = 1")
            assert s.execute(query, backend="arrow").df["amount_sum"].to_list() == [6050.0]
        admin.execute(f'DROP DATABASE "{copy}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{template}"')  # the same oids again
        out = in_new_process(
            dsn, store, f"out['sum'] = s.execute({query!r}, backend='arrow').df['amount_sum'][0]"
        )
        assert out["sum"] == 5050.0
    finally:
        for name in (copy, template):
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_bounded_staleness_starts_from_a_check_in_each_process(tiny: str, store: Path) -> None:
    with connect(tiny, store) as s:
        s.prefetch("sales", wait=True)
    with psycopg.connect(tiny, autocommit=True) as conn:
        conn.execute("UPDATE tf_sales SET revenue = revenue + 1000000 WHERE id = 1")
    with fq.connect(tiny, config={"arrow_backend": {"cache_ttl_s": 86400}}) as s:
        r = s.execute(QUERY, backend="arrow")
        assert_same(r.df, postgres(s), QUERY)  # stored data is checked before it is trusted


def test_close_during_a_foreground_load_is_clean(tiny: str, store: Path) -> None:
    import threading

    s = connect(tiny, store)
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(s.execute(QUERY, backend="arrow"))
        except fq.FraiseQLError as exc:
            outcome.append(exc)
        except BaseException as exc:  # noqa: BLE001 - what the test is about
            outcome.append(("raw", exc))

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(0.02)
    s.close()
    worker.join(timeout=30)
    assert outcome and not isinstance(outcome[0], tuple), outcome
    assert plane_of(s, "arrow")._connections._idle == []  # nothing left open


def test_a_store_locked_by_another_process_does_not_block(
    tiny: str, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fcntl

    from fraiseql_nb.planes.arrow import store as store_module

    monkeypatch.setattr(store_module, "_WRITE_WAIT_S", 0.5)
    store.mkdir(parents=True)
    holder = os.open(store / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(holder, fcntl.LOCK_EX)  # as a suspended kernel would hold it
    try:
        with connect(tiny, store) as s:
            started = time.monotonic()
            s.prefetch("sales", wait=True)  # its store write gives up
            r = s.execute(QUERY)
            s.refresh()
            assert time.monotonic() - started < 10
            assert r.backend == "arrow"
            assert_same(r.df, postgres(s), QUERY)
    finally:
        os.close(holder)
    assert not list(store.glob("*/meta.json"))  # nothing was written under the lock


def test_exact_decimals_of_unconstrained_numerics_keep_every_digit(
    scratch_dsn: str, store: Path
) -> None:
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE tf_fine (id bigint, amount numeric);"
            " INSERT INTO tf_fine VALUES (1, 0.123456789012345), (2, 1.5), (3, NULL)"
        )
    query = "{ fine_aggregate { amount_sum amount_max } }"
    with fq.connect(scratch_dsn, config={"arrow_backend": {"exact_decimals": True}}) as s:
        assert s.execute(query, backend="arrow").df.to_dicts() == postgres(s, query).to_dicts()


def test_row_level_security_that_reads_other_tables_follows_them(
    scratch_dsn: str, store: Path
) -> None:
    from tests.conftest import TENANT_ROLE

    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute(
            f"""
            DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{TENANT_ROLE}')
            THEN CREATE ROLE {TENANT_ROLE} LOGIN; END IF; END $$;
            CREATE TABLE grants (who text, tenant int);
            INSERT INTO grants VALUES ('{TENANT_ROLE}', 1);
            CREATE TABLE tf_usage (id bigint, tenant int, amount float8);
            INSERT INTO tf_usage SELECT g, 1 + g % 2, g FROM generate_series(1, 100) AS g;
            ALTER TABLE tf_usage ENABLE ROW LEVEL SECURITY;
            CREATE POLICY mine ON tf_usage USING
                (tenant IN (SELECT tenant FROM grants WHERE who = current_user));
            GRANT SELECT ON grants, tf_usage TO {TENANT_ROLE};
            """
        )
    query = "{ usage_aggregate(groupBy: {tenant: true}) { tenant count } }"
    with connect(tenant_dsn(scratch_dsn, None), store) as s:
        assert s.execute(query, backend="arrow").df.to_dicts() == [{"tenant": 1, "count": 50}]
        with psycopg.connect(scratch_dsn, autocommit=True) as conn:
            conn.execute("UPDATE grants SET tenant = 2")  # no row of tf_usage changed
        for backend in ("arrow", "auto"):
            r = s.execute(query, backend=backend)
            assert r.df.to_dicts() == [{"tenant": 2, "count": 50}], backend


def test_rows_of_an_inheriting_child_are_seen(tiny: str, store: Path) -> None:
    query = "{ sales_aggregate { count revenue_sum } }"
    with connect(tiny, store) as s:
        s.execute(query, backend="arrow")
        with psycopg.connect(tiny, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE old_sales (LIKE tf_sales);"
                " INSERT INTO old_sales SELECT * FROM tf_sales WHERE id <= 10;"
                " BEGIN; ALTER TABLE old_sales INHERIT tf_sales;"
                " DELETE FROM ONLY tf_sales WHERE id > 2990; COMMIT"
            )
        assert_same(s.execute(query, backend="arrow").df, postgres(s, query), query)


def test_times_read_from_documents_follow_the_session_time_zone(
    scratch_dsn: str, store: Path
) -> None:
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE tf_seen (id bigint, amount float8, dimensions jsonb);"
            " INSERT INTO tf_seen SELECT g, g, jsonb_build_object('seen',"
            " to_char(timestamp '2024-02-29 00:00' + g * interval '1 hour', 'YYYY-MM-DD\"T\"HH24:MI:SS'))"
            " FROM generate_series(1, 100) AS g"
        )
    query = '{ seen_aggregate(where: {seen: {lt: "2024-03-01T12:00:00Z"}}) { count } }'
    counts = {}
    for zone in ("UTC", "Asia/Tokyo"):
        config = {"routing": {"timezone": zone}}
        with fq.connect(scratch_dsn, config=config) as s:
            got = s.execute(query, backend="arrow").df["count"].to_list()
            assert got == postgres(s, query)["count"].to_list(), zone
            plane_of(s, "arrow").flush()
            counts[zone] = got[0]
    assert counts == {"UTC": 35, "Asia/Tokyo": 44}
