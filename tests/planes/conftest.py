"""What the analytics-plane tests share: rows appended to the demo fact table, a store
of a test's own, and a database of numbers where float64 loses what PostgreSQL keeps."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ENV_STORE, own_database
from tests.planes.corpus import HARD_TABLE


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store of the test's own: the environment wins over config, and the test session
    sets one store for all (subprocesses inherit this one)."""
    monkeypatch.setenv(ENV_STORE, str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def hard_dsn(server_dsn: str) -> Iterator[str]:
    """A database holding tests/planes/corpus.py's ``tf_hard``."""
    with own_database(server_dsn, "fq_hard") as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for statement in HARD_TABLE.split(";\n"):
                if statement.strip():
                    conn.execute(statement)  # type: ignore[call-overload]
        yield dsn


def append_sales(n: int, offset: int = 1_000_000) -> str:
    """SQL appending copies of the first ``n`` sales, their ids moved up by ``offset``."""
    return (
        f"INSERT INTO tf_sales SELECT id + {offset}, customer_id, product_id, occurred_at,"
        " revenue, quantity, cost, discount, dimensions, date_info FROM tf_sales"
        f" WHERE id <= {n}"
    )
