"""FraiseQL's (and Hasura's) spellings of the WHERE operators: each is a column of its
operator's row, validates, means exactly what the canonical name means on every plane,
and is deprecated in the schema so completion shows one name per meaning."""

from __future__ import annotations

from typing import Any

import pytest

import fraiseql_nb as fq
from fraiseql_nb.language.operators import OPERATORS, SPELLINGS
from fraiseql_nb.notebook.completion import complete
from fraiseql_nb.schema import graphql_schema

#: Every name in FraiseQL's operator table (crates/fraiseql-db/src/where_clause/
#: operator_table.rs) whose meaning this toolkit has, and the Hasura forms its docs use:
#: (written, canonical operator, negated).
FRAISEQL = [
    ("ne", "neq", False),
    ("notin", "nin", False),
    ("is_null", "isnull", False),
    ("is_not_null", "isnull", True),
    ("isnotnull", "isnull", True),
    ("isNull", "isnull", False),
    ("isNotNull", "isnull", True),
    ("nlike", "like", True),
    ("nilike", "ilike", True),
    ("nregex", "regex", True),
    ("not_matches", "regex", True),
    ("niregex", "iregex", True),
    ("imatches", "iregex", False),
    ("len_neq", "len_eq", True),
    ("contained_in", "array_contained_by", False),
    ("array_contained_in", "array_contained_by", False),
    ("arrayContains", "array_contains", False),
    ("arrayContainedBy", "array_contained_by", False),
    ("arrayOverlaps", "array_overlaps", False),
    ("startsWith", "startswith", False),
    ("endsWith", "endswith", False),
    ("search", "matches", False),
    ("plainto_tsquery", "plain_query", False),
    ("phraseto_tsquery", "phrase_query", False),
    ("websearch_to_tsquery", "websearch_query", False),
    ("isIPv4", "is_ipv4", False),
    ("isIPv6", "is_ipv6", False),
    ("isPrivate", "is_private", False),
    ("isLoopback", "is_loopback", False),
    ("inrange", "in_subnet", False),
    ("inSubnet", "in_subnet", False),
    ("subnet_contains", "contains_subnet", False),
    ("subnet_overlaps", "ip_range_overlap", False),
    ("_eq", "eq", False),
    ("_neq", "neq", False),
    ("_gt", "gt", False),
    ("_gte", "gte", False),
    ("_lt", "lt", False),
    ("_lte", "lte", False),
    ("_in", "in", False),
    ("_nin", "nin", False),
    ("_is_null", "isnull", False),
]


@pytest.mark.parametrize(("written", "op", "negated"), FRAISEQL)
def test_each_spelling_names_its_operator(written: str, op: str, negated: bool) -> None:
    assert SPELLINGS[written] == (op, negated)
    assert op in OPERATORS  # a column of an existing row, not a row of its own


def test_aliases_are_deprecated_and_completion_offers_one_name(schema: Any) -> None:
    built = graphql_schema(schema)
    fields = built.get_type("IntFilter").fields  # type: ignore[union-attr]
    assert fields["neq"].deprecation_reason is None
    assert fields["ne"].deprecation_reason == "another spelling of neq"
    assert fields["_gte"].deprecation_reason == "another spelling of gte"
    assert fields["isNotNull"].deprecation_reason == "another spelling of is_not_null"
    assert fields["is_not_null"].deprecation_reason is None  # a meaning: its own field
    _, offered = complete("{ users(where: {age: {", built)
    names = {n for n, _ in offered}
    assert {"eq", "neq", "gte", "isnull", "is_not_null"} <= names
    assert not names & {"ne", "_eq", "_gte", "isNull", "notin", "is_null"}


#: (spelled, canonical) row queries over the demo users: the same rows, in order.
ROWS = [
    ("{age: {ne: 40}}", "{age: {neq: 40}}"),
    ("{age: {_gte: 30, _lt: 50}}", "{age: {gte: 30, lt: 50}}"),
    ("{age: {notin: [30, 31]}}", "{age: {nin: [30, 31]}}"),
    ("{age: {_in: [30, 31], _neq: 31}}", "{age: {in: [30, 31], neq: 31}}"),
    ('{name: {nlike: "A%"}}', '{_not: {name: {like: "A%"}}}'),
    ('{name: {nilike: "a%"}}', '{_not: {name: {ilike: "a%"}}}'),
    ('{name: {nregex: "^[A-M]"}}', '{_not: {name: {regex: "^[A-M]"}}}'),
    ('{name: {not_matches: "e$"}}', '{_not: {name: {regex: "e$"}}}'),
    ('{name: {niregex: "^a"}}', '{_not: {name: {iregex: "^a"}}}'),
    ('{name: {imatches: "^a"}}', '{name: {iregex: "^a"}}'),
    ('{name: {startsWith: "A"}}', '{name: {startswith: "A"}}'),
    ("{email: {isNotNull: true}}", "{email: {isnull: false}}"),
    ("{email: {is_not_null: false}}", "{email: {isnull: true}}"),
    ("{email: {_is_null: false}}", "{email: {isnull: false}}"),
    ("{tags: {len_neq: 1}}", "{_not: {tags: {len_eq: 1}}}"),
    ('{tags: {contained_in: ["a", "b"]}}', '{tags: {array_contained_by: ["a", "b"]}}'),
]


@pytest.mark.parametrize(("spelled", "canonical"), ROWS)
def test_a_spelled_row_filter_answers_as_its_canonical_one(
    session: fq.Session, spelled: str, canonical: str
) -> None:
    def ids(where: str, backend: str) -> list[Any]:
        text = f"{{ users(where: {where}, orderBy: [{{id: ASC}}]) {{ id }} }}"
        result = session.execute(text, backend=backend)
        assert isinstance(result, fq.Result)
        return result.df["id"].to_list()

    want = ids(canonical, "postgres")
    assert ids(spelled, "wire") == ids(spelled, "postgres") == want
    assert len(want) > 0


#: (spelled, canonical) filters over the demo fact table's columns and aggregates.
FACTS = [
    ("where: {revenue: {_gt: 100}}", "where: {revenue: {gt: 100}}"),
    ('where: {region: {ne: "EU"}}', 'where: {region: {neq: "EU"}}'),
    ('where: {region: {nlike: "E%"}}', 'where: {_not: {region: {like: "E%"}}}'),
    ('where: {region: {notin: ["EU"]}}', 'where: {region: {nin: ["EU"]}}'),
    ("having: {count: {_gte: 10}}", "having: {count: {gte: 10}}"),
    ("having: {revenue_sum: {ne: 0}}", "having: {revenue_sum: {neq: 0}}"),
    # FraiseQL's flattened keys: <name>_<operator>
    (
        "having: {count_gte: 10, revenue_sum_gt: 100}",
        "having: {count: {gte: 10}, revenue_sum: {gt: 100}}",
    ),
    (
        'where: {region_neq: "EU", revenue_gt: 100}',
        'where: {region: {neq: "EU"}, revenue: {gt: 100}}',
    ),
    ('where: {region_nlike: "E%"}', 'where: {_not: {region: {like: "E%"}}}'),
    (
        'where: {_or: [{region_eq: "EU"}, {revenue_lt: 10}]}',
        'where: {_or: [{region: {eq: "EU"}}, {revenue: {lt: 10}}]}',
    ),
    ("where: {revenue_gte: 10, revenue: {lt: 500}}", "where: {revenue: {gte: 10, lt: 500}}"),
]


@pytest.mark.parametrize(("spelled", "canonical"), FACTS)
def test_a_spelled_fact_filter_answers_as_its_canonical_one_on_both_planes(
    session: fq.Session, spelled: str, canonical: str
) -> None:
    def rows(args: str, backend: str) -> list[dict[str, Any]]:
        text = (
            f"{{ sales_aggregate(groupBy: {{region: true}}, {args},"
            " orderBy: [{region: ASC}]) { region count revenue_sum } }"
        )
        result = session.execute(text, backend=backend)
        assert isinstance(result, fq.Result)
        return result.df.to_dicts()

    want = rows(canonical, "postgres")
    assert want
    assert rows(spelled, "postgres") == want
    got = rows(spelled, "arrow")
    assert [(r["region"], r["count"]) for r in got] == [(r["region"], r["count"]) for r in want]
    for a, b in zip(got, want, strict=True):
        assert a["revenue_sum"] == pytest.approx(b["revenue_sum"], rel=1e-9)


def test_two_spellings_of_one_condition_must_agree(session: fq.Session) -> None:
    same = session.execute("{ users(where: {age: {ne: 40, neq: 40}}, limit: 3) { id } }")
    assert isinstance(same, fq.Result) and same.df.height == 3
    with pytest.raises(fq.QueryError, match="neq and ne are two spellings of one condition"):
        session.execute("{ users(where: {age: {neq: 40, ne: 41}}) { id } }")
    with pytest.raises(fq.QueryError, match="two spellings of one condition"):
        session.execute('{ sales_aggregate(where: {region: {_eq: "EU", eq: "US"}}) { count } }')


#: (FraiseQL's or the single-object orderBy form, the list form): the same rows in order.
ORDERS = [
    (
        '{ users(orderBy: [{field: "age", direction: DESC}, {field: "id"}], limit: 20)'
        " { id age } }",
        "{ users(orderBy: [{age: DESC}, {id: ASC}], limit: 20) { id age } }",
    ),
    (
        "{ users(orderBy: {age: DESC_NULLS_LAST}, limit: 20) { id age } }",
        "{ users(orderBy: [{age: DESC_NULLS_LAST}], limit: 20) { id age } }",
    ),
    (
        '{ users(orderBy: [{field: "address.city", direction: ASC}, {id: ASC}], limit: 20)'
        " { id } }",
        "{ users(orderBy: [{address: {city: ASC}}, {id: ASC}], limit: 20) { id } }",
    ),
    (
        "{ sales_aggregate(groupBy: {region: true},"
        ' orderBy: [{field: "revenue_sum", direction: DESC}]) { region revenue_sum } }',
        "{ sales_aggregate(groupBy: {region: true}, orderBy: [{revenue_sum: DESC}])"
        " { region revenue_sum } }",
    ),
    (
        "{ sales_aggregate(groupBy: {region: true}, orderBy: {count: DESC}) { region count } }",
        "{ sales_aggregate(groupBy: {region: true}, orderBy: [{count: DESC}]) { region count } }",
    ),
    (
        '{ sales_window(orderBy: [{field: "revenue", direction: DESC}, {field: "id"}],'
        " limit: 10) { id revenue rn: row_number } }",
        "{ sales_window(orderBy: [{revenue: DESC}, {id: ASC}], limit: 10)"
        " { id revenue rn: row_number } }",
    ),
]


@pytest.mark.parametrize(("written", "listed"), ORDERS)
def test_every_orderby_form_sorts_as_the_list_form(
    session: fq.Session, written: str, listed: str
) -> None:
    rows_query = written.startswith("{ users")
    planes = ("wire", "postgres") if rows_query else ("arrow", "postgres")
    want = session.execute(listed, backend="postgres").df.to_dicts()  # type: ignore[union-attr]
    assert len(want) > 1
    for plane in planes:
        got = session.execute(written, backend=plane).df.to_dicts()  # type: ignore[union-attr]
        firsts = [next(iter(r.values())) for r in got]  # the id, or the group key
        assert firsts == [next(iter(r.values())) for r in want], plane


def test_a_named_orderby_item_needs_its_field_alone(session: fq.Session) -> None:
    with pytest.raises(fq.QueryError, match="give the field to sort by"):
        session.execute("{ users(orderBy: [{direction: DESC}]) { id } }")
    with pytest.raises(fq.QueryError, match="give each sort key its own item"):
        session.execute('{ users(orderBy: [{field: "age", name: ASC}]) { id } }')
    with pytest.raises(fq.QueryError, match="unknown orderBy field 'nope'"):
        session.execute('{ users(orderBy: [{field: "nope"}]) { id } }')
    # What the list form's types refuse, the named form refuses too.
    with pytest.raises(fq.QueryError, match="orderBy address: an object"):
        session.execute('{ users(orderBy: [{field: "address", direction: DESC}]) { id } }')
    with pytest.raises(fq.QueryError, match="orderBy tags: a list"):
        session.execute('{ users(orderBy: [{field: "tags"}]) { id } }')
    with pytest.raises(fq.QueryError, match="unknown orderBy field 'nope'"):
        session.execute('{ sales_window(orderBy: [{field: "nope"}], limit: 2) { id } }')
    with pytest.raises(fq.QueryError, match="nope"):
        session.execute(
            '{ sales_aggregate(groupBy: {region: true}, orderBy: [{field: "nope"}]) { region } }'
        )


def test_a_flattened_window_where_and_its_refusals(session: fq.Session) -> None:
    flat = "{ sales_window(where: {revenue_gt: 100}, orderBy: [{id: ASC}], limit: 5) { id } }"
    nested = "{ sales_window(where: {revenue: {gt: 100}}, orderBy: [{id: ASC}], limit: 5) { id } }"
    want = session.execute(nested, backend="postgres").df["id"].to_list()  # type: ignore[union-attr]
    for plane in ("arrow", "postgres"):
        assert session.execute(flat, backend=plane).df["id"].to_list() == want  # type: ignore[union-attr]
    with pytest.raises(fq.QueryError, match="region and region_eq are one condition"):
        session.execute(
            '{ sales_aggregate(where: {region_eq: "EU", region: {eq: "US"}}) { count } }'
        )
    with pytest.raises(fq.QueryError, match="revenue_sum_bogus"):  # names nothing: GraphQL says so
        session.execute("{ sales_aggregate(having: {revenue_sum_bogus: 1}) { count } }")
