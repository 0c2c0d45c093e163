"""A least-privilege role: tables and columns it may not read are schema problems, not
a failed connection; everything it may read works on every plane."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

import fraiseql_nb as fq
from fraiseql_nb.errors import QueryError

SETUP = """
CREATE TABLE tf_open (id bigint, amount numeric(12, 2), region text);
INSERT INTO tf_open SELECT g, g * 1.5, 'r' || (g % 3) FROM generate_series(1, 60) AS g;
CREATE TABLE tf_closed (id bigint, amount float8);
INSERT INTO tf_closed SELECT g, g FROM generate_series(1, 10) AS g;
CREATE TABLE tf_partial (id bigint, amount float8, cost float8, region text, secret jsonb);
INSERT INTO tf_partial SELECT g, g, g * 100, 'r' || (g % 2), '{"k": 1}'
    FROM generate_series(1, 40) AS g;
CREATE TABLE tb_thing (id bigint PRIMARY KEY, data jsonb);
INSERT INTO tb_thing SELECT g, jsonb_build_object('id', g, 'name', 'n' || g, 'size', g)
    FROM generate_series(1, 20) AS g;
CREATE VIEW v_thing AS SELECT id, data FROM tb_thing;
CREATE VIEW v_hidden AS SELECT id, data FROM tb_thing;
CREATE TABLE tv_half (id bigint, data jsonb);
INSERT INTO tv_half SELECT g, jsonb_build_object('name', 'h' || g) FROM generate_series(1, 5) g;
"""


@pytest.fixture
def least(scratch_dsn: str) -> Iterator[tuple[str, str]]:
    """(dsn as a least-privilege role, the role's name) on a database with readable,
    unreadable and partly readable relations."""
    role = f"fq_least_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute(SETUP)  # type: ignore[arg-type]
        r = sql.Identifier(role)
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(r))
        conn.execute(sql.SQL("GRANT SELECT ON tf_open, v_thing, tb_thing TO {}").format(r))
        conn.execute(sql.SQL("GRANT SELECT (id, amount, region) ON tf_partial TO {}").format(r))
        conn.execute(sql.SQL("GRANT SELECT (id) ON tv_half TO {}").format(r))
    yield make_conninfo(scratch_dsn, user=role), role
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_role_that_cannot_read_every_table_still_connects(least: tuple[str, str]) -> None:
    dsn, role = least
    with fq.connect(dsn) as s:
        by_relation = {p.relation: p.message for p in s.schema.problems}
        for rel in ("public.tf_closed", "public.v_hidden"):
            assert f"no SELECT privilege for role {role} on {rel}" in by_relation[rel]
        assert "closed_aggregate" not in s.schema.root_fields()
        assert {"things", "thing", "open_aggregate", "partial_aggregate"} <= set(
            s.schema.root_fields()
        )
        for query in (
            "{ closed_aggregate { count } }",
            "{ hiddens { id } }",
        ):
            with pytest.raises(QueryError, match=f"no SELECT privilege for role {role}"):
                s.execute(query)
        q = "{ open_aggregate(groupBy: {region: true}, orderBy: {region: ASC}) { region count amount_sum } }"
        expected = [
            {"region": "r0", "count": 20, "amount_sum": 945},
            {"region": "r1", "count": 20, "amount_sum": 885},
            {"region": "r2", "count": 20, "amount_sum": 915},
        ]
        for backend in ("postgres", "arrow", "auto"):
            rows = s.execute(q, backend=backend).df.to_dicts()
            assert [{**r, "amount_sum": float(r["amount_sum"])} for r in rows] == expected
        things = s.execute("{ things(where: {size: {gte: 18}}, orderBy: {size: ASC}) { name } }")
        assert things.df["name"].to_list() == ["n18", "n19", "n20"]


def test_columns_hidden_by_column_privileges_are_left_out(least: tuple[str, str]) -> None:
    dsn, role = least
    with fq.connect(dsn) as s:
        fact = s.schema.fact("partial_aggregate")
        assert fact is not None
        assert [c.name for c in fact.measures] == ["amount"]
        assert [c.name for c in fact.filters] == ["id", "region"]
        assert fact.dimensions == ()
        message = next(p.message for p in s.schema.problems if p.relation == "public.tf_partial")
        assert f"role {role} may not read columns cost, secret of public.tf_partial" in message
        q = "{ partial_aggregate(groupBy: {region: true}, orderBy: {region: ASC}) { region count amount_sum } }"
        for backend in ("postgres", "arrow"):
            assert s.execute(q, backend=backend).df.to_dicts() == [
                {"region": "r0", "count": 20, "amount_sum": 420.0},
                {"region": "r1", "count": 20, "amount_sum": 400.0},
            ], backend
        with pytest.raises(QueryError, match="cost"):
            s.execute("{ partial_aggregate { cost_sum } }")
        # An entity whose data column is hidden cannot be an entity: said so, by name.
        half = next(p.message for p in s.schema.problems if p.relation == "public.tv_half")
        assert f"role {role} may not read column data of public.tv_half" in half
        with pytest.raises(QueryError, match="may not read column data"):
            s.execute("{ halves { id } }")
