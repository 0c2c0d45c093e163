"""Vector distances (pgvector) on JSON arrays of numbers, and Jaccard distance on lists of
text, against PostgreSQL's own SQL over a real ``vector`` column: wrong lengths, NULLs
and missing keys match nothing; bad vectors are refused, named."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

import fraiseql_nb as fq
from tests.conftest import own_database

ITEMS: list[tuple[Any, Any]] = [
    ([1.0, 0.0, 0.0], ["red", "blue"]),
    ([0.9, 0.1, 0.0], ["red"]),
    ([0.0, 1.0, 0.0], ["green", "blue"]),
    ([0.0, 0.0, 1.0], []),
    ([-1.0, 0.0, 0.0], ["red", "red", "blue"]),
    ([0.5, 0.5, 0.5], ["Blue"]),
    ([0.0, 0.0, 0.0], ["yellow"]),  # cosine distance to a zero vector is NaN: no match
    ([1.0, 2.0], ["red"]),  # another length
    (None, None),  # null
    ("missing", "missing"),
]


def _with_pgvector(conn: psycopg.Connection[Any]) -> None:
    """pgvector in this database, or the test is skipped (the embedded server has it)."""
    available = "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
    if not conn.execute(available).fetchone():
        pytest.skip("this server has no pgvector (the embedded one has)")
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")


@pytest.fixture(scope="module")
def items(server_dsn: str) -> Iterator[str]:
    with own_database(server_dsn, "fq_vector_operators") as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            _with_pgvector(conn)
            conn.execute(
                "CREATE TABLE tb_item (id int PRIMARY KEY, data jsonb NOT NULL, emb vector(3));"
                " CREATE VIEW v_item AS SELECT id, data FROM tb_item"
            )
            for i, (emb, tags) in enumerate(ITEMS, start=1):
                doc: dict[str, Any] = {"id": i}
                if emb != "missing":
                    doc["emb"] = emb
                    doc["tags"] = tags
                valid = (
                    isinstance(emb, list)
                    and len(emb) == 3
                    and all(isinstance(x, float) for x in emb)
                )
                conn.execute(
                    "INSERT INTO tb_item VALUES (%s, %s, %s::vector)",
                    (i, Jsonb(doc), str(emb) if valid else None),
                )
        yield dsn


@pytest.fixture(scope="module")
def s(items: str) -> Iterator[fq.Session]:
    with fq.connect(items) as session:
        yield session


def ids(s: fq.Session, where: str, backend: str = "wire") -> list[int]:
    r = s.execute(f"{{ items(where: {where}, orderBy: {{id: ASC}}) {{ id }} }}", backend=backend)
    assert isinstance(r, fq.Result)
    return [int(x) for x in r.df["id"].to_list()]


def oracle(dsn: str, condition: str, *params: Any) -> list[int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            f"SELECT id FROM tb_item WHERE {condition} ORDER BY id", params
        ).fetchall()
    return [r[0] for r in rows]


@pytest.mark.parametrize(
    ("op", "symbol", "vector", "threshold"),
    [
        ("l2_distance", "<->", [1.0, 0.0, 0.0], 0.5),
        ("l2_distance", "<->", [0.0, 0.0, 0.0], 1.0),
        ("cosine_distance", "<=>", [1.0, 0.0, 0.0], 0.2),
        ("cosine_distance", "<=>", [0.2, 0.2, 0.2], 0.5),
        ("inner_product", "<#>", [1.0, 0.0, 0.0], 0.5),
        ("inner_product", "<#>", [0.0, 1.0, 1.0], -0.5),
    ],
)
def test_vector_distances_agree_with_pgvector(
    s: fq.Session, items: str, op: str, symbol: str, vector: list[float], threshold: float
) -> None:
    bound = -threshold if op == "inner_product" else threshold
    expected = oracle(items, f"(emb {symbol} %s::vector) <= %s", str(vector), bound)
    where = f"{{emb: {{{op}: {{vector: {vector}, threshold: {threshold}}}}}}}"
    assert ids(s, where) == expected
    assert ids(s, where, backend="postgres") == expected


def test_vector_distances_pin(s: fq.Session) -> None:
    near = "{emb: {l2_distance: {vector: [1, 0, 0], threshold: 0.2}}}"
    assert ids(s, near) == [1, 2]  # the two near (1, 0, 0); lengths 2 and strings never
    # pgvector holds float4: 0.9 is 0.8999999762, so a bound of exactly 0.9 would miss it.
    similar = "{emb: {inner_product: {vector: [1, 0, 0], threshold: 0.85}}}"
    assert ids(s, similar) == [1, 2]
    assert ids(s, "{emb: {cosine_distance: {vector: [1, 0, 0], threshold: 2}}}") == [
        1,
        2,
        3,
        4,
        5,
        6,
    ]  # fmt: skip  (not 7: a zero vector's cosine distance is NaN)


def jaccard(a: list[str], b: list[str]) -> float:
    sa, sb = set(a), set(b)
    return 0.0 if not sa | sb else 1 - len(sa & sb) / len(sa | sb)


@pytest.mark.parametrize(
    ("values", "threshold"),
    [(["red", "blue"], 0.0), (["red"], 0.5), (["blue", "green"], 0.7), ([], 0.0), (["x"], 1.0)],
)
def test_jaccard_distance_of_text_lists(s: fq.Session, values: list[str], threshold: float) -> None:
    expected = [
        i
        for i, (_, tags) in enumerate(ITEMS, start=1)
        if isinstance(tags, list) and jaccard(tags, values) <= threshold
    ]
    quoted = "[" + ", ".join(f'"{v}"' for v in values) + "]"
    where = f"{{tags: {{jaccard_distance: {{values: {quoted}, threshold: {threshold}}}}}}}"
    assert ids(s, where) == expected


def test_bad_vectors_are_refused(s: fq.Session) -> None:
    with pytest.raises(fq.QueryError, match=r"emb\.l2_distance: the vector is empty"):
        ids(s, "{emb: {l2_distance: {vector: [], threshold: 1}}}")
    with pytest.raises(fq.QueryError, match="Float cannot represent"):
        ids(s, '{emb: {l2_distance: {vector: ["a"], threshold: 1}}}')
    with pytest.raises(fq.QueryError, match="threshold"):
        ids(s, "{emb: {l2_distance: {vector: [1, 2, 3]}}}")
    # A vector of another length than the documents': no document matches (not an error).
    assert ids(s, "{emb: {l2_distance: {vector: [1, 2, 3, 4], threshold: 100}}}") == []
    # A vector operator on a list of text: the schema refuses it.
    with pytest.raises(fq.QueryError, match="l2_distance"):
        ids(s, "{tags: {l2_distance: {vector: [1], threshold: 1}}}")


@pytest.mark.parametrize(
    ("distance", "symbol"),
    [("l2_distance", "<->"), ("cosine_distance", "<=>"), ("inner_product", "<#>")],
)
def test_nearest_first_agrees_with_pgvector(
    s: fq.Session, items: str, distance: str, symbol: str
) -> None:
    vector = [0.8, 0.3, 0.1]
    with psycopg.connect(items) as conn:
        expected = [
            r[0]
            for r in conn.execute(
                f"SELECT id FROM tb_item ORDER BY emb {symbol} %s::vector ASC NULLS LAST, id",
                (str(vector),),
            ).fetchall()
        ]
    query = f"{{ items(orderBy: {{emb: {{{distance}: {vector}}}}}, limit: 4) {{ id }} }}"
    first = s.execute(query)
    assert isinstance(first, fq.Result)
    got = [int(x) for x in first.df["id"].to_list()]
    assert got == expected[:4]
    # Keyset paging goes on from the 4th nearest, to the end: rows without a vector last.
    pages = got
    page = first.next_page()
    while page is not None and page.df.height:
        pages += [int(x) for x in page.df["id"].to_list()]
        page = page.next_page()
    assert pages == expected


def test_nearest_first_needs_one_distance(s: fq.Session) -> None:
    with pytest.raises(fq.QueryError, match="give one distance"):
        s.execute(
            "{ items(orderBy: {emb: {l2_distance: [1, 0, 0], cosine_distance: [1]}}) { id } }"
        )
    with pytest.raises(fq.QueryError, match="the vector is empty"):
        s.execute("{ items(orderBy: {emb: {l2_distance: []}}) { id } }")


@pytest.fixture(scope="module")
def docs(server_dsn: str) -> Iterator[str]:
    """5,000 documents with a vector(8) column beside them, under an HNSW index."""
    with own_database(server_dsn, "fq_vector_index") as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            _with_pgvector(conn)
            conn.execute(
                "CREATE TABLE tb_doc (id int PRIMARY KEY, data jsonb NOT NULL, embedding vector(8));"
                " INSERT INTO tb_doc SELECT g, jsonb_build_object('id', g, 'title', 'doc ' || g),"
                " (SELECT array_agg(sin(g * k + k * k)::real) FROM generate_series(1, 8) AS k)::vector"
                " FROM generate_series(1, 5000) AS g;"
                " CREATE INDEX tb_doc_embedding_hnsw ON tb_doc USING hnsw (embedding vector_cosine_ops);"
                " CREATE VIEW v_doc AS SELECT id, data, embedding FROM tb_doc;"
                " ANALYZE tb_doc"
            )
        yield dsn


def test_a_pgvector_index_serves_the_nearest_documents(docs: str) -> None:
    target = [0.5, -0.2, 0.1, 0.9, -0.4, 0.3, 0.0, 0.7]
    query = f"{{ docs(orderBy: {{embedding: {{cosine_distance: {target}}}}}, limit: 5) {{ id title embedding }} }}"
    with fq.connect(docs) as s:
        plan = s.explain(query, plan=True).plans[0]
        assert "tb_doc_embedding_hnsw" in plan.pg_plan  # an Index Scan on the HNSW index
        r = s.execute(query)
        assert isinstance(r, fq.Result)
        with psycopg.connect(docs) as conn:
            # PostgreSQL's own SQL, through the same (approximate) index: the same answer.
            exact = [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM tb_doc ORDER BY embedding <=> %s::vector, id LIMIT 5",
                    (str(target),),
                ).fetchall()
            ]
        got = [int(x) for x in r.df["id"].to_list()]
        assert got == exact
        assert r.df["embedding"][0].to_list() == pytest.approx(
            [float(x) for x in psycopg.connect(docs).execute(
                "SELECT embedding::text FROM tb_doc WHERE id = %s", (got[0],)
            ).fetchone()[0].strip("[]").split(",")]
        )  # fmt: skip
        filtered = s.execute(
            f"{{ docs(where: {{embedding: {{cosine_distance: {{vector: {target}, threshold: 0.05}}}}}}) {{ id }} }}"
        )
        assert isinstance(filtered, fq.Result)
        with psycopg.connect(docs) as conn:
            within = conn.execute(
                "SELECT count(*) FROM tb_doc WHERE (embedding <=> %s::vector) <= 0.05",
                (str(target),),
            ).fetchone()[0]
        assert filtered.df.height == within
        with pytest.raises(
            fq.QueryError, match=r"the vector has 3 dimensions; vector\(8\) holds 8"
        ):
            s.execute("{ docs(orderBy: {embedding: {l2_distance: [1, 2, 3]}}, limit: 1) { id } }")
        with pytest.raises(fq.QueryError, match=r"embedding\.l2_distance: the vector has 2"):
            s.execute(
                "{ docs(where: {embedding: {l2_distance: {vector: [1, 2], threshold: 1}}}) { id } }"
            )


def test_generated_vector_trees_agree_with_pgvector(s: fq.Session, items: str) -> None:
    """Random vectors, thresholds and distances under _and/_or/_not, against pgvector's own
    operators on the real vector column (documents that hold no 3-vector are NULL there)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    symbols = {"l2_distance": "<->", "cosine_distance": "<=>", "inner_product": "<#>"}
    number = st.integers(-200, 200).map(lambda n: n / 100)

    def leaf(op: str, vector: list[float], threshold: float) -> tuple[dict[str, Any], str]:
        bound = -threshold if op == "inner_product" else threshold
        text = "[" + ",".join(repr(v) for v in vector) + "]"
        return (
            {"emb": {op: {"vector": vector, "threshold": threshold}}},
            f"((emb {symbols[op]} '{text}'::vector) <= {bound!r})",
        )

    leaves = st.builds(
        leaf, st.sampled_from(sorted(symbols)), st.lists(number, min_size=3, max_size=3), number
    )
    trees = st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.builds(
                lambda xs: (
                    {"_and": [w for w, _ in xs]},
                    "(" + " AND ".join(c for _, c in xs) + ")",
                ),
                st.lists(inner, min_size=1, max_size=3),
            ),
            st.builds(
                lambda xs: ({"_or": [w for w, _ in xs]}, "(" + " OR ".join(c for _, c in xs) + ")"),
                st.lists(inner, min_size=1, max_size=3),
            ),
            st.builds(lambda x: ({"_not": x[0]}, f"(NOT {x[1]})"), inner),
        ),
        max_leaves=4,
    )
    query = "query ($w: ItemWhereInput) { items(where: $w, orderBy: {id: ASC}) { id } }"

    @settings(
        max_examples=60,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(trees)
    def check(case: tuple[dict[str, Any], str]) -> None:
        where, condition = case
        r = s.execute(query, {"w": where})
        assert isinstance(r, fq.Result)
        assert [int(x) for x in r.df["id"].to_list()] == oracle(items, condition)

    check()
