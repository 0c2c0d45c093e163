"""The cluster plane on a real Ray cluster of two, then three, nodes on this machine
(``ray.cluster_utils.Cluster``, one per module): PostgreSQL is the oracle."""

from __future__ import annotations

import os
import signal
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import ray  # the [cluster] extra: the README's test command installs it
from hypothesis import HealthCheck, given, settings
from psycopg import sql
from psycopg.conninfo import make_conninfo
from ray.cluster_utils import Cluster
from ray.util import state

import fraiseql_nb as fq
from fraiseql_nb.compute.merge import shuffle_keys
from fraiseql_nb.config import load_config
from fraiseql_nb.local import demo
from fraiseql_nb.notebook.display import badge_parts
from fraiseql_nb.planes.cluster.work import ENV_DELAY
from fraiseql_nb.query import parse_query
from tests.conftest import TINY, own_database, plane_of, tenant_dsn
from tests.planes.conftest import append_sales
from tests.planes.corpus import (
    AGGREGATES,
    HARD_AGGREGATES,
    IDS_GROUPED,
    IDS_PRICED,
    ODD_AGGREGATE,
    WINDOWS,
    assert_same,
)
from tests.planes.fraiseql_corpus import AGGS, expected, same_rows
from tests.planes.fraiseql_corpus import WINDOWS as FRAISEQL_WINDOWS
from tests.planes.groups_corpus import GROUPS
from tests.planes.test_agreement import aggregate_queries

PASSWORD = "Xq7-cluster-secret-91"
SECRET_ROLE = "fq_cluster_pw"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Two nodes of one CPU each; a test may add a third. The workers see ENV_DELAY."""
    delay = tmp_path_factory.mktemp("cluster") / "delay"
    os.environ[ENV_DELAY] = str(delay)
    if ray.is_initialized():  # one Ray per process: not one an earlier test started
        ray.shutdown()
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)
    c.delay_file = delay  # type: ignore[attr-defined]
    yield c
    ray.shutdown()
    c.shutdown()
    os.environ.pop(ENV_DELAY, None)


def config(c: Any, **cluster: Any) -> dict[str, Any]:
    return {
        "cluster": {"address": c.address, "partitions": 4, **cluster},
        "arrow_backend": {"store_enabled": False},
    }


@pytest.fixture(scope="module")
def cs(cluster: Any, demo_dsn: str) -> Iterator[fq.Session]:
    s = fq.connect(demo_dsn, config=config(cluster))
    yield s
    s.close()


def on_both(s: fq.Session, query: str) -> tuple[fq.Result, fq.Result]:
    pg, cl = s.execute(query, backend="postgres"), s.execute(query, backend="cluster")
    assert isinstance(pg, fq.Result) and isinstance(cl, fq.Result)
    assert cl.backend == "cluster"
    return pg, cl


def partitioned(s: fq.Session, query: str) -> bool:
    """Whether the cluster plane takes the query (windows: only by a shared partitionBy)."""
    q = parse_query(query, s.schema).queries[0]
    return q.kind == "aggregate" or shuffle_keys(q) is not None  # type: ignore[arg-type]


def until(check: Any, seconds: float = 60) -> Any:
    """What ``check`` gives once it is true, or its last answer after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not (got := check()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return got


def run_corpus(s: fq.Session) -> tuple[int, int]:
    agreed = declined = 0
    for query in AGGREGATES + WINDOWS:
        if not partitioned(s, query):
            with pytest.raises(fq.QueryError, match="partitionBy"):
                s.execute(query, backend="cluster")
            declined += 1
            continue
        pg, cl = on_both(s, query)
        assert_same(pg.df, cl.df, query)
        agreed += 1
    return agreed, declined


# ------------------------------------------------------------ agreement


def test_the_corpus_agrees_on_two_nodes(cs: fq.Session) -> None:
    agreed, declined = run_corpus(cs)
    assert agreed >= 60 and declined == 4  # the windows with no partitionBy


def test_fraiseql_forms_answer_as_postgresql_on_the_cluster(cs: fq.Session, demo_dsn: str) -> None:
    """The compatibility corpus's aggregates and partitioned windows
    (tests/planes/fraiseql_corpus.py), merged or shuffled on two nodes."""
    ran = 0
    for name, query, variables, statement in AGGS + FRAISEQL_WINDOWS:
        if not partitioned(cs, query) if variables is None else "sales_window" in query:
            continue
        result = cs.execute(query, variables, backend="cluster")
        assert isinstance(result, fq.Result) and result.backend == "cluster"
        same_rows(result.df.rows(), expected(demo_dsn, statement), name)
        ran += 1
    assert ran >= len(AGGS)


def test_after_the_groups_answers_as_postgresql_on_the_cluster(
    cs: fq.Session, demo_dsn: str
) -> None:
    """Calcs, windows over groups, share, QUALIFY and limitPerGroup
    (tests/planes/groups_corpus.py) on the groups the cluster merged or shuffled."""
    for name, query, variables, statement in GROUPS:
        result = cs.execute(query, variables, backend="cluster")
        assert isinstance(result, fq.Result) and result.backend == "cluster"
        same_rows(result.df.rows(), expected(demo_dsn, statement), name)


def test_generated_aggregates_agree(cs: fq.Session) -> None:
    @settings(
        max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(query=aggregate_queries())
    def check(query: str) -> None:
        pg, cl = on_both(cs, query)
        assert_same(pg.df, cl.df, query)

    check()


def test_integer_sums_and_spreads_keep_postgresqls_precision(cluster: Any, hard_dsn: str) -> None:
    """Parts of a bigint sum that cancels, and of a spread of large values, merge exactly."""
    with fq.connect(hard_dsn, config=config(cluster)) as s:
        for query in HARD_AGGREGATES:
            pg, cl = on_both(s, query)
            assert_same(pg.df, cl.df, query)
        assert s.execute(HARD_AGGREGATES[0], backend="cluster").df["big_sum"].to_list() == [6000.0]
        with pytest.raises(fq.QueryError, match="amount, which holds NaN or infinite values"):
            s.execute(ODD_AGGREGATE, backend="cluster")
        with pytest.raises(fq.QueryError, match="ext_id, which holds NaN"):
            s.execute(IDS_GROUPED, backend="cluster")
        pg, cl = on_both(s, IDS_PRICED)
        assert_same(pg.df, cl.df, IDS_PRICED)


def test_results_say_workers_and_partitions(cs: fq.Session) -> None:
    q = "{ sales_aggregate(groupBy: {region: true}) { region count revenue_median } }"
    r = cs.execute(q, backend="cluster")
    assert isinstance(r, fq.Result)
    assert r.cluster == {"workers": r.cluster["workers"], "partitions": 4}  # type: ignore[index]
    assert 1 <= r.cluster["workers"] <= 2  # type: ignore[index]
    w = r.cluster["workers"]  # type: ignore[index]
    assert badge_parts(r)[0].startswith(f"cluster · {w} worker")
    assert "4 partitions" in badge_parts(r)[0]
    assert r.engine_plan() == (  # a median does not merge: rows go to buckets by key
        f"Polars on {w} worker{'' if w == 1 else 's'}: the rows of 4 partitions sent by"
        " their keys' hash to buckets, each computed whole on a worker"
    )
    h = cs.health()
    assert h["status"] == "healthy"
    held = h["backends"]["cluster"]
    assert held["status"] == "healthy" and held["tables"] >= 1
    assert held["partitions"] >= 4 and held["bytes"] > 0
    assert "cluster" in cs.ready()["backends"]


def test_explain_shows_the_partition_plan(cs: fq.Session) -> None:
    q = "{ sales_aggregate(groupBy: {region: true}) { region revenue_sum } }"
    text = cs.explain(q, backend="cluster").text()
    assert "→ cluster (requested)" in text
    assert "4 partitions over 2 nodes" in text
    for i in range(4):
        assert f"partition {i} of public.tf_sales (pages " in text
    assert "ctid >= '(0,0)'::tid" in text  # each worker's own statement


def test_a_row_query_is_not_for_the_cluster(cs: fq.Session) -> None:
    with pytest.raises(fq.QueryError, match="row query"):
        cs.execute("{ users(limit: 1) { id } }", backend="cluster")


# ------------------------------------------------------------ freshness


@pytest.fixture(scope="module")
def written(server_dsn: str) -> Iterator[str]:
    with own_database(server_dsn, "fq_cluster") as dsn:
        demo.load(dsn, TINY)
        yield dsn


def test_changes_reload_only_the_partitions_they_touch(cluster: Any, written: str) -> None:
    q = "{ sales_aggregate(groupBy: {category: true}) { category count revenue_sum } }"
    with fq.connect(written, config=config(cluster)) as s:
        first = s.execute(q, backend="cluster")
        assert isinstance(first, fq.Result) and first.sql.startswith("4 of 4 partitions")
        again = s.execute(q, backend="cluster")
        assert isinstance(again, fq.Result) and again.sql == ""  # nothing ran: no statement
        with psycopg.connect(written, autocommit=True) as conn:
            conn.execute(append_sales(20))
        pg, cl = on_both(s, q)
        assert_same(pg.df, cl.df, q)
        assert cl.sql.startswith("1 of 4 partitions"), cl.sql  # the appended rows' one
        with psycopg.connect(written, autocommit=True) as conn:
            conn.execute("DELETE FROM tf_sales WHERE id = 1")
        pg, cl = on_both(s, q)
        assert_same(pg.df, cl.df, q)
        assert cl.sql.startswith("1 of 4 partitions"), cl.sql  # the first page's
        with psycopg.connect(written, autocommit=True) as conn:
            conn.execute("CREATE TABLE unrelated (x int); INSERT INTO unrelated VALUES (1)")
        pg, cl = on_both(s, q)  # a commit elsewhere: checked, nothing reloaded
        assert_same(pg.df, cl.df, q)
        assert cl.sql == ""


def test_row_level_security_holds_on_a_replica_of_another_login(
    cluster: Any, conventions_dsn: str
) -> None:
    """The workers read a "replica" as a superuser, yet see what the tenant sees."""
    q = "{ billing_aggregate(groupBy: {tenant_id: true}) { tenant_id count amount_sum } }"
    cfg = config(cluster, replicas=[conventions_dsn])
    with fq.connect(tenant_dsn(conventions_dsn, 2), config=cfg) as s:
        pg, cl = on_both(s, q)
        assert cl.df["tenant_id"].to_list() == [2]
        assert_same(pg.df, cl.df, q)


# ------------------------------------------------------------ faults


def test_a_partition_that_cannot_load_names_itself(cluster: Any, demo_dsn: str) -> None:
    down = "host=/nonexistent/fq-replica dbname=nothing user=postgres"
    q = "{ sales_aggregate { count } }"
    with fq.connect(demo_dsn, config=config(cluster, replicas=[demo_dsn, down])) as s:
        with pytest.raises(fq.BackendError) as err:
            s.execute(q, backend="cluster")
        message = str(err.value)
        assert "partition 1 of public.tf_sales (pages " in message
        assert "on replica 2" in message and "nonexistent" in message
        assert (
            s.execute(q).df["count"].to_list()
            == s.execute(q, backend="postgres").df["count"].to_list()
        )


def test_a_replica_login_that_may_not_be_the_sessions_role_fails_by_partition(
    cluster: Any, demo_dsn: str
) -> None:
    role = "fq_cluster_other"
    with psycopg.connect(demo_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {n}) THEN"
                " CREATE ROLE {r} LOGIN; END IF; END $$"
            ).format(n=sql.Literal(role), r=sql.Identifier(role))
        )
    other = make_conninfo(demo_dsn, user=role)
    pattern = r"partition 0 of public.tf_sales.*permission"
    with (
        fq.connect(demo_dsn, config=config(cluster, replicas=[other])) as s,
        pytest.raises(fq.BackendError, match=pattern),
    ):
        s.execute("{ sales_aggregate { count } }", backend="cluster")


def running_parts() -> list[Any]:
    """The cluster's compute tasks running now, as the state API has heard."""
    running = state.list_tasks(filters=[("state", "=", "RUNNING")])
    return [t for t in running if t.name.startswith("fraiseql-nb part")]


def test_a_worker_killed_mid_query_is_retried(cluster: Any, cs: fq.Session) -> None:
    q = "{ sales_aggregate(groupBy: {channel: true}) { channel count revenue_avg } }"
    expected = cs.execute(q, backend="postgres").df
    cs.execute(q, backend="cluster")  # loaded: the next run computes only
    # Task events reach the state API about a second late: the run above must not look
    # running still, or its worker (now running the next query's task) would be killed
    # for a task already done.
    assert until(lambda: not running_parts(), seconds=20)
    seen = {t.task_id for t in state.list_tasks(limit=10_000)}
    delay: Path = cluster.delay_file
    delay.write_text("3")
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = cs.execute(q, backend="cluster")
        except BaseException as exc:  # noqa: BLE001 - reported below
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    killed = None
    deadline = time.monotonic() + 30
    try:
        while killed is None and time.monotonic() < deadline:
            for task in running_parts():
                if task.task_id not in seen and task.worker_pid:
                    os.kill(task.worker_pid, signal.SIGKILL)
                    killed = task
                    break
            time.sleep(0.2)
    finally:
        delay.unlink(missing_ok=True)
    thread.join(120)
    assert killed is not None, "no compute task was seen running"
    assert "error" not in out, out.get("error")
    assert_same(expected, out["result"].df, q)
    deadline = time.monotonic() + 20
    attempts: list[int] = []
    while time.monotonic() < deadline and max(attempts, default=0) < 1:
        attempts = [
            t.attempt_number for t in state.list_tasks(filters=[("task_id", "=", killed.task_id)])
        ]
        time.sleep(0.5)
    assert max(attempts) >= 1  # Ray ran it again


def test_an_unreachable_cluster_warns_once_and_the_rest_works(demo_dsn: str) -> None:
    cfg = {"cluster": {"address": "127.0.0.1:9", "connect_timeout_s": 0.5}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = fq.connect(demo_dsn, config=cfg)
    try:
        said = [str(w.message) for w in caught if "cluster plane is off" in str(w.message)]
        # It points at the line that connected, not inside fraiseql_nb.
        assert [w.filename for w in caught if "cluster plane is off" in str(w.message)] == [
            __file__
        ]
        assert said == [
            "the cluster plane is off: the Ray cluster at 127.0.0.1:9 does not"
            " answer; the other planes work"
        ]
        q = "{ sales_aggregate { count } }"
        assert s.execute(q).backend in ("arrow", "postgres")
        with pytest.raises(fq.BackendError, match="cluster plane is off"):
            s.execute(q, backend="cluster")
        h = s.health()
        assert h["status"] == "degraded"
        assert h["backends"]["cluster"]["status"] == "unavailable"
        assert "127.0.0.1:9 does not answer" in h["backends"]["cluster"]["reason"]
        assert h["backends"]["postgres"]["status"] == "healthy"
        assert s.ready() == {"ready": True, "backends": ["wire", "arrow", "postgres"]}
    finally:
        s.close()


def test_a_bad_address_is_a_config_error() -> None:
    with pytest.raises(fq.ConfigError, match=r"cluster\.address"):
        load_config({"cluster": {"address": "somewhere"}})


# ------------------------------------------------------------ routing


def beyond_the_store(c: Any, **cluster: Any) -> dict[str, Any]:
    """A configuration whose store (the ``store`` fixture's) cannot take the demo table:
    auto looks to the cluster."""
    cfg = config(c, **cluster)
    cfg["arrow_backend"] = {"store_size_mb": 1, "memory_mb": 0}
    return cfg


def test_auto_answers_on_postgres_while_the_cluster_loads_then_on_the_cluster(
    cluster: Any, demo_dsn: str, store: Path
) -> None:
    q = "{ sales_aggregate(groupBy: {category: true}) { category revenue_p90 } }"
    with fq.connect(demo_dsn, config=beyond_the_store(cluster)) as s:
        first = s.execute(q)
        assert isinstance(first, fq.Result) and first.backend == "postgres"
        assert "the store's budget" in first.reason
        assert first.reason.endswith(": loading on the cluster in the background")
        assert until(lambda: s.health()["backends"]["cluster"]["tables"] == 1)
        again = s.execute(q)
        assert isinstance(again, fq.Result)
        assert (again.backend, again.reason) == ("cluster", "on the cluster")
        assert_same(first.df, again.df, q)
        window = "{ sales_window { id n: row_number(orderBy: {id: ASC}) } }"
        w = s.execute(window)
        assert isinstance(w, fq.Result) and w.backend == "postgres"
    foreground = beyond_the_store(cluster)
    foreground["routing"] = {"background_loads": False}
    with fq.connect(demo_dsn, config=foreground) as s:
        r = s.execute(q)
        assert isinstance(r, fq.Result) and r.backend == "cluster"
        assert "the store's budget" in r.reason and r.reason.endswith(": on the cluster")


def test_a_failed_background_load_is_the_reason_and_postgres_answers(
    cluster: Any, demo_dsn: str, store: Path
) -> None:
    down = "host=/nonexistent/fq-replica dbname=nothing user=postgres"
    q = "{ sales_aggregate { count } }"
    with fq.connect(demo_dsn, config=beyond_the_store(cluster, replicas=[down])) as s:
        assert s.execute(q).reason.endswith("loading on the cluster in the background")
        failed = until(lambda: "load failed" in (r := s.execute(q)).reason and r)
        assert failed and failed.backend == "postgres", failed
        assert "the cluster's load failed: partition 0 of public.tf_sales" in failed.reason
        assert (
            failed.df["count"].to_list() == s.execute(q, backend="postgres").df["count"].to_list()
        )


# ------------------------------------------------------------ credentials


def test_the_password_never_shows_in_ray(cluster: Any, demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {n}) THEN"
                " CREATE ROLE {r} LOGIN PASSWORD {p}; END IF; END $$"
            ).format(
                n=sql.Literal(SECRET_ROLE), r=sql.Identifier(SECRET_ROLE), p=sql.Literal(PASSWORD)
            )
        )
        conn.execute(
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(
                sql.Identifier(SECRET_ROLE)
            )
        )
    dsn = make_conninfo(demo_dsn, user=SECRET_ROLE, password=PASSWORD)
    down = make_conninfo("host=/nonexistent/fq dbname=x", user=SECRET_ROLE, password=PASSWORD)
    q = "{ sales_aggregate(groupBy: {region: true}) { region count customer_id_count_distinct } }"
    with fq.connect(dsn, config=config(cluster)) as s:
        assert s.execute(q, backend="cluster").df.height > 0
        assert PASSWORD not in s.explain(q, backend="cluster").text()
    with fq.connect(dsn, config=config(cluster, replicas=[dsn, down])) as s:
        with pytest.raises(fq.BackendError) as err:
            s.execute(q, backend="cluster")
        assert PASSWORD not in str(err.value) and "partition 1" in str(err.value)
    listings = [
        state.list_tasks(detail=True, limit=10_000),
        state.list_actors(detail=True),
        state.list_objects(detail=True, limit=10_000, raise_on_missing_output=False),
        state.list_jobs(detail=True),
        state.list_workers(detail=True, limit=10_000),
        state.list_nodes(detail=True),
    ]
    assert any("fraiseql-nb load public.tf_sales" in str(x) for x in listings[0])
    for listing in listings:
        assert PASSWORD not in str(listing)
    logs = Path(cluster.head_node.get_session_dir_path()) / "logs"
    for path in logs.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path


# ------------------------------------------------------------ three nodes (last)


def test_the_corpus_agrees_on_three_nodes(cluster: Any, demo_dsn: str) -> None:
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    with fq.connect(demo_dsn, config=config(cluster, partitions=6)) as s:
        agreed, declined = run_corpus(s)
        assert agreed >= 60 and declined == 4
        r = s.execute("{ sales_aggregate { count } }", backend="cluster")
        assert isinstance(r, fq.Result) and r.cluster is not None
        assert r.cluster["partitions"] == 6 and r.cluster["workers"] >= 2


def test_partitions_the_filter_rules_out_are_skipped(cs: fq.Session) -> None:
    """Each partition's statistics (least, greatest, NULLs per column, gathered where it was
    loaded) let a filter skip it: no task runs on it."""
    plane = plane_of(cs, "cluster")
    _, whole = on_both(cs, "{ sales_aggregate { count } }")
    assert whole.partitions == {"read": 4, "skipped": 0, "total": 4}
    read, skipped = plane.partitions_read, plane.partitions_skipped
    query = "{ sales_aggregate(where: {id: {lte: 20}}, groupBy: {region: true}) { region count } }"
    pg, cl = on_both(cs, query)
    assert_same(pg.df, cl.df, query)
    assert cl.partitions == {"read": 1, "skipped": 3, "total": 4}
    assert (plane.partitions_read - read, plane.partitions_skipped - skipped) == (1, 3)
    assert "1 of 4 partitions read" in cl.engine_plan()
    nothing = '{ sales_aggregate(where: {occurred_at: {gte: "2100-01-01"}}) { count } }'
    pg, cl = on_both(cs, nothing)
    assert_same(pg.df, cl.df, nothing)
