"""The operator table is the one source: schema filters, parsing, SQL and the engine all
read it, so one new row is an operator everywhere; what the engine cannot compute it
declines (PostgreSQL answers), an aggregate it does not know too."""

from __future__ import annotations

import dataclasses
from typing import Any

import polars as pl
import psycopg
import pytest
from graphql import GraphQLList, GraphQLNonNull, get_named_type

import fraiseql_nb as fq
from fraiseql_nb.compute.aggregate import run_aggregate
from fraiseql_nb.errors import UnsupportedError
from fraiseql_nb.language import operators
from fraiseql_nb.language.operators import LIST, OPERATORS, Operator
from fraiseql_nb.query import parse_query
from fraiseql_nb.query.ir import Aggregate, AggregateQuery
from fraiseql_nb.schema import graphql_schema
from fraiseql_nb.sql import Params, compile_row_query

#: An aggregate the vocabulary does not have (as if added there but not to the engine).
MODE = AggregateQuery(
    key="sales_aggregate",
    fact="sales",
    aggregates=(Aggregate(name="revenue_mode", function="mode", field="revenue"),),
    columns=(("revenue_mode", "revenue_mode"),),
    group_keys=(),
)


def test_every_filter_offers_what_the_table_says(schema: Any) -> None:
    built = graphql_schema(schema)
    string = built.get_type("StringFilter")
    assert string is not None
    fields = string.fields  # type: ignore[attr-defined]
    # One field per operator and per negation; every other spelling is deprecated.
    shown = {name for name, f in fields.items() if f.deprecation_reason is None}
    ops = operators.scalar_operators("String")
    assert shown == {n for op in ops for n in operators.shown_names(op)}
    assert {"nlike", "nilike", "nregex", "niregex"} <= shown
    assert fields["ne"].deprecation_reason == "another spelling of neq"
    assert fields["_eq"].deprecation_reason == "another spelling of eq"
    assert get_named_type(fields["contains"].type).name == "String"
    assert isinstance(fields["in"].type, GraphQLList)
    assert isinstance(fields["in"].type.of_type, GraphQLNonNull)
    assert fields["regex"].description == OPERATORS["regex"].doc
    boolean = built.get_type("BooleanFilter").fields  # type: ignore[union-attr]
    assert "gt" not in boolean and "contains" not in boolean and "eq" in boolean
    listed = built.get_type("StringListFilter").fields  # type: ignore[union-attr]
    assert {"array_contained_by", "len_gte", "len_lte"} <= set(listed)
    assert get_named_type(listed["len_gte"].type).name == "Int"


def _length_neq(f: Any, c: Any, p: Params) -> Any:
    return psycopg.sql.SQL("(jsonb_array_length({}) <> {})").format(
        operators.json_array(f), p.add(c.value, "integer")
    )


def test_one_new_row_is_an_operator_everywhere(
    monkeypatch: pytest.MonkeyPatch, demo_schema: Any, demo_dsn: str
) -> None:
    row = Operator("len_other", "list", "the list has not this many elements", (LIST,), "int",
                   _length_neq, None)  # fmt: skip
    monkeypatch.setitem(OPERATORS, "len_other", row)
    schema = dataclasses.replace(demo_schema)  # a new Schema: its GraphQL schema is rebuilt
    listed = graphql_schema(schema).get_type("StringListFilter").fields  # type: ignore[union-attr]
    assert listed["len_other"].description == row.doc
    doc = parse_query("{ users(where: {tags: {len_other: 1}}) { id } }", schema)
    query = doc.queries[0]
    entity = schema.entity("users")
    params = Params()
    statement = compile_row_query(query, entity, params)  # type: ignore[arg-type]
    assert "<>" in statement.as_string(None)
    with psycopg.connect(demo_dsn) as conn:
        got = conn.execute(statement, params.values).fetchall()
        tags = conn.execute("SELECT data -> 'tags' FROM v_user ORDER BY id").fetchall()
    expected = sum(1 for (t,) in tags if isinstance(t, list) and len(t) != 1)
    assert len(got) == expected > 0


def test_an_operator_the_engine_does_not_compute_is_declined(
    session: fq.Session, demo_dsn: str
) -> None:
    query = '{ sales_aggregate(where: {region: {strictly_contains: "EU"}}) { count } }'
    auto = session.execute(query)
    assert isinstance(auto, fq.Result)
    assert auto.backend == "postgres"
    assert auto.reason == "arrow declines the operator strictly_contains (json)"
    with pytest.raises(fq.QueryError, match="strictly_contains"):
        session.execute(query, backend="arrow")
    # The answer is the database's own count of rows whose region holds "EU" (@>).
    with psycopg.connect(demo_dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM tf_sales WHERE dimensions -> 'region' @> '\"EU\"'::jsonb"
        ).fetchone()
    assert row is not None and row[0] > 0
    assert auto.df.to_dicts() == [{"count": row[0]}]


def test_an_aggregate_the_engine_does_not_know_is_declined(schema: Any) -> None:
    fact = schema.fact("sales")
    query = MODE
    data = pl.DataFrame({"revenue": [1.0, 2.0, 2.0]})
    with pytest.raises(UnsupportedError, match="the aggregate mode"):
        run_aggregate(data, query, fact)


def test_every_aggregate_of_the_table_is_computed_by_both_planes() -> None:
    from fraiseql_nb.compute.merge import MERGEABLE
    from fraiseql_nb.language.aggregates import AGGREGATES

    for name, fn in AGGREGATES.items():
        assert fn.name == name and fn.polars is not None, name
        value = None if fn.over == "rows" else psycopg.sql.Identifier("x")
        rendered = fn.sql(
            value, psycopg.sql.SQL("ORDER BY {}").format(psycopg.sql.Identifier("id"))
        )
        # an ordered aggregate places its ORDER BY (its values in the fact's id order)
        assert not fn.ordered or '"id"' in rendered.as_string(None), name
        assert fn.over == "rows" or '"x"' in rendered.as_string(None), name
        assert fn.merge == "shuffle" or name in MERGEABLE, name  # "parts" is implemented
    assert "mode" not in AGGREGATES


def test_an_unknown_aggregate_is_declined_up_front(schema: Any) -> None:
    from fraiseql_nb.compute.columns import declines

    fact = schema.fact("sales")
    query = MODE
    assert declines(query, fact, ("revenue",)) == "the aggregate mode"


def test_one_new_row_is_an_aggregate_everywhere(demo_schema: Any, demo_dsn: str) -> None:
    """An aggregate added to the table at run time — distinct_sum, the sum of a measure's
    distinct values, integer-valued — is in the GraphQL schema, the SQL (run on the database) and
    the Polars result, with its type, as the database computes it."""
    from fraiseql_nb.language.aggregates import AGGREGATES, AggregateFunction

    row = AggregateFunction(
        "distinct_sum",
        "measure",
        "Int",
        lambda v, _order: psycopg.sql.SQL("sum(DISTINCT {})").format(v),
        lambda col, num, exact: exact.drop_nulls().unique().sum(),
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(AGGREGATES, "distinct_sum", row)
        schema = dataclasses.replace(demo_schema)  # a new Schema: its GraphQL schema is rebuilt
        fields = graphql_schema(schema).get_type("SalesAggregate").fields  # type: ignore[union-attr]
        assert get_named_type(fields["quantity_distinct_sum"].type).name == "Int"
        query = (
            "{ sales_aggregate(groupBy: {channel: true}, orderBy: [{channel: ASC}])"
            " { channel quantity_distinct_sum } }"
        )
        with fq.connect(demo_dsn, schema=schema) as s:
            pg = s.execute(query, backend="postgres")
            arrow = s.execute(query, backend="arrow")
    assert isinstance(pg, fq.Result) and isinstance(arrow, fq.Result)
    assert "sum(DISTINCT" in pg.sql and arrow.backend == "arrow"
    with psycopg.connect(demo_dsn) as conn:
        rows = conn.execute(
            "SELECT (dimensions ->> 'channel') COLLATE \"C\", sum(DISTINCT quantity)"
            " FROM tf_sales"
            " GROUP BY 1 ORDER BY 1 NULLS LAST"
        ).fetchall()
    expected = [{"channel": c, "quantity_distinct_sum": r} for c, r in rows]
    assert len(expected) > 1
    assert pg.df.to_dicts() == expected
    assert arrow.df.to_dicts() == expected
    assert arrow.df.schema["quantity_distinct_sum"] == pl.Int64
