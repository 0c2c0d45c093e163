"""A view-backed fact table is fresh while the tables it reads are: commits elsewhere
(another database, an unrelated table) do not reload it; any change to what it reads does."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

import fraiseql_nb as fq
from tests.conftest import own_database, plane_of

QUERY = "{ view_aggregate(groupBy: {kind: true}, orderBy: {kind: ASC}) { kind count amount_sum } }"
ORACLE = "SELECT kind, count(*), sum(amount) FROM tf_view GROUP BY kind ORDER BY kind"

SETUP = """
CREATE TABLE tb_base (id bigint PRIMARY KEY, amount numeric(12, 2), kind text);
CREATE TABLE tb_factor (kind text PRIMARY KEY, factor int);
CREATE TABLE tb_unrelated (x int);
INSERT INTO tb_base SELECT g, g * 1.25, CASE WHEN g % 3 = 0 THEN 'a' ELSE 'b' END
    FROM generate_series(1, 500) g;
INSERT INTO tb_factor VALUES ('a', 2), ('b', 3);
CREATE VIEW v_inner AS SELECT id, amount, kind FROM tb_base WHERE id > 10;
CREATE VIEW tf_view AS
    SELECT i.id, i.amount * f.factor AS amount, i.kind FROM v_inner AS i JOIN tb_factor AS f USING (kind);
CREATE VIEW tf_clock AS SELECT id, amount, kind FROM tb_base WHERE now() > '2000-01-01';
"""


@pytest.fixture
def views(scratch_dsn: str) -> str:
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute(SETUP)
    return scratch_dsn


@pytest.fixture
def elsewhere(server_dsn: str) -> Iterator[str]:
    """Another database on the same server, to commit in."""
    with own_database(server_dsn, "fq_elsewhere") as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE noise (x int)")
        yield dsn


def rows(s: fq.Session, query: str = QUERY) -> tuple[list[tuple[object, ...]], bool]:
    r = s.execute(query, backend="arrow")
    assert isinstance(r, fq.Result) and r.backend == "arrow"
    return [tuple(x.values()) for x in r.df.to_dicts()], bool(r.metrics.cache_hit)


def oracle(dsn: str, statement: str = ORACLE) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        return [(k, n, float(a)) for k, n, a in conn.execute(statement).fetchall()]


def as_floats(got: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return [(k, n, float(a)) for k, n, a in got]  # type: ignore[arg-type]


def commit(dsn: str, statement: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement)


def test_commits_elsewhere_do_not_reload_a_view(views: str, elsewhere: str) -> None:
    with fq.connect(views) as s:
        first, _ = rows(s)
        assert as_floats(first) == oracle(views)
        loads = plane_of(s, "arrow").loads
        commit(elsewhere, "INSERT INTO noise VALUES (1)")  # another database
        commit(views, "INSERT INTO tb_unrelated VALUES (1)")  # a table the view does not read
        again, hit = rows(s)
        assert again == first
        assert hit is True
        assert plane_of(s, "arrow").loads == loads  # proven unchanged, not reloaded
        commit(elsewhere, "INSERT INTO noise VALUES (2)")
        assert rows(s) == (first, True)  # proven again from the carried-over state
        assert plane_of(s, "arrow").loads == loads


@pytest.mark.parametrize(
    "change",
    [
        "INSERT INTO tb_base VALUES (1000, 7.5, 'a')",  # an append, two views down
        "UPDATE tb_factor SET factor = 5 WHERE kind = 'b'",  # the other table of the join
        "DELETE FROM tb_base WHERE id = 20",
        "DELETE FROM tb_base WHERE id = 20; INSERT INTO tb_base VALUES (20, 25, 'b')",  # same count
        "TRUNCATE tb_factor; INSERT INTO tb_factor VALUES ('a', 2), ('b', 3)",  # same rows
        "CREATE OR REPLACE VIEW v_inner AS SELECT id, amount, kind FROM tb_base WHERE id > 400",
    ],
)
def test_any_change_to_what_a_view_reads_reloads_it(views: str, change: str) -> None:
    with fq.connect(views) as s:
        before, _ = rows(s)
        loads = plane_of(s, "arrow").loads
        commit(views, change)
        after, hit = rows(s)
        assert as_floats(after) == oracle(views)
        assert hit is False
        assert plane_of(s, "arrow").loads == loads + 1
        if "TRUNCATE" not in change and "(20, 25" not in change:
            assert after != before


def test_a_view_with_a_clock_reloads_after_any_commit(views: str, elsewhere: str) -> None:
    query = "{ clock_aggregate { count amount_sum } }"
    with fq.connect(views) as s:
        rows(s, query)
        loads = plane_of(s, "arrow").loads
        commit(elsewhere, "INSERT INTO noise VALUES (1)")
        _, hit = rows(s, query)
        assert hit is False  # now() may have moved: no proof without a snapshot unchanged
        assert plane_of(s, "arrow").loads == loads + 1


def test_rows_of_a_transaction_in_progress_at_the_load_are_not_missed(views: str) -> None:
    with psycopg.connect(views) as writer:
        writer.execute("INSERT INTO tb_base VALUES (2000, 1, 'a')")
        writer.execute("SAVEPOINT s1")
        writer.execute("INSERT INTO tb_base VALUES (2001, 2, 'b')")  # a subtransaction's row
        with fq.connect(views) as s:
            loaded, _ = rows(s)
            assert as_floats(loaded) == oracle(views)  # without the writer's rows
            writer.commit()
            after, hit = rows(s)
            assert hit is False
            assert as_floats(after) == oracle(views)
            assert after != loaded
