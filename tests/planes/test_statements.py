"""What a warm query sends PostgreSQL, counted in the embedded server's own log
(``log_statement = 'all'`` for the test's database only): a fact table is resolved once
per query, and a warm arrow aggregate sends its freshness check alone."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

import fraiseql_nb as fq

QUERY = "{ sales_aggregate(groupBy: {region: true}) { region count revenue_sum } }"
_ENTRY = re.compile(
    r"^\d{4}-\d\d-\d\d [\d:.]+ \w+ \[\d+\] LOG:  (?:statement|execute [^:]*): ?(.*)$"
)


@pytest.fixture
def logged_dsn(tiny: str, embedded_home: Path | None) -> Iterator[str]:
    if embedded_home is None:
        pytest.skip("counts statements in the embedded server's log")
    name = conninfo_to_dict(tiny)["dbname"]
    with psycopg.connect(tiny, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE \"{name}\" SET log_statement = 'all'")
    try:
        yield tiny
    finally:
        with psycopg.connect(tiny, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" RESET log_statement')


def statements(log: Path, run: Callable[[], object]) -> list[str]:
    """The statements the server logged while ``run`` ran (empty ones, a pool's liveness
    check, left out)."""
    start = log.stat().st_size
    run()
    time.sleep(0.3)  # the server writes its log asynchronously
    with open(log, "rb") as handle:
        handle.seek(start)
        lines = handle.read().decode("utf-8", "replace").splitlines()
    found: list[str] = []
    for line in lines:
        entry = _ENTRY.match(line)
        if entry:
            found.append(entry.group(1))
        elif line.startswith("\t") and found:
            found[-1] += "\n" + line.strip()
    return [s.strip() for s in found if s.strip()]


def test_a_warm_arrow_aggregate_sends_only_its_freshness_check(
    logged_dsn: str, embedded_home: Path
) -> None:
    log = embedded_home / "pgdata" / "log"
    config = {"arrow_backend": {"change_capture": False, "store_enabled": False}}
    with fq.connect(logged_dsn, config=config) as s:
        s.execute(QUERY, backend="arrow")  # loads
        for backend in ("arrow", "auto"):
            sent = statements(log, lambda b=backend: s.execute(QUERY, backend=b))  # type: ignore[misc]
            assert len(sent) == 1, (backend, sent)
            assert "pg_current_snapshot()" in sent[0]  # the table's version: nothing else
