"""FraiseQL's query forms, and what an aggregate computes after its groups, answer what the
hand-written PostgreSQL says, on every plane that answers them here: rows on the wire and postgres planes, aggregates and windows on postgres
and on the arrow plane in memory (from disk: tests/planes/test_disk.py; on a cluster:
tests/planes/test_cluster.py)."""

from __future__ import annotations

import pytest

import fraiseql_nb as fq
from tests.planes.fraiseql_corpus import AGGS, CORPUS, ROWS, WINDOWS, check_entry
from tests.planes.groups_corpus import GROUPS


def test_the_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 40
    assert len({name for name, *_ in CORPUS}) == len(CORPUS)


#: Each entry with each plane that answers its kind: rows on postgres and wire, aggregates
#: and windows on postgres and arrow — FraiseQL's forms, and what is computed after the
#: groups (calcs, windows over grouped rows, share, QUALIFY, limitPerGroup:
#: tests/planes/groups_corpus.py).
CASES = [(backend, *entry) for entry in ROWS for backend in ("postgres", "wire")] + [
    (backend, *entry) for entry in AGGS + WINDOWS + GROUPS for backend in ("postgres", "arrow")
]


@pytest.mark.parametrize(
    ("backend", "name", "query", "variables", "statement"),
    CASES,
    ids=[f"{c[0]}-{c[1]}" for c in CASES],
)
def test_hand_written_corpora_answer_as_postgresql(
    session: fq.Session,
    demo_dsn: str,
    backend: str,
    name: str,
    query: str,
    variables: object,
    statement: str,
) -> None:
    check_entry(session, demo_dsn, backend, name, query, variables, statement)
