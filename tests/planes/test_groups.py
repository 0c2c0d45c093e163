"""Calcs, windows over grouped rows, share, QUALIFY and limitPerGroup answer what the
hand-written PostgreSQL says (tests/planes/groups_corpus.py), on postgres and on the
arrow plane in memory (from disk: tests/planes/test_disk.py; on a cluster:
tests/planes/test_cluster.py)."""

from __future__ import annotations

import pytest

import fraiseql_nb as fq
from tests.planes.fraiseql_corpus import check_entry
from tests.planes.groups_corpus import GROUPS

CASES = [(backend, *entry) for entry in GROUPS for backend in ("postgres", "arrow")]


@pytest.mark.parametrize(
    ("backend", "name", "query", "variables", "statement"),
    CASES,
    ids=[f"{c[0]}-{c[1]}" for c in CASES],
)
def test_after_the_groups_answers_as_postgresql(
    session: fq.Session,
    demo_dsn: str,
    backend: str,
    name: str,
    query: str,
    variables: object,
    statement: str,
) -> None:
    check_entry(session, demo_dsn, backend, name, query, variables, statement)
