"""FraiseQL's aggregate forms as IR, and what bad input gets: a QueryError naming it (pure:
the schema of tests/data/demo_schema.json, no database)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraiseql_nb import QueryError
from fraiseql_nb.query import AggregateQuery, Compare, WindowQuery, parse_query
from fraiseql_nb.query.ir import filtered_name
from fraiseql_nb.schema import Schema


def aggregate(text: str, schema: Schema, variables: dict | None = None) -> AggregateQuery:
    q = parse_query(text, schema, variables).queries[0]
    assert isinstance(q, AggregateQuery)
    return q


def test_a_conditional_aggregate_is_its_own_column_beside_the_plain_one(schema: Schema) -> None:
    q = aggregate(
        '{ sales_aggregate(groupBy: {region: true}, having: {field: "web", gt: 10},'
        ' orderBy: [{field: "web", direction: DESC}]) {'
        ' region revenue_sum web: revenue_sum(filter: {channel: {eq: "web"}}) } }',
        schema,
    )
    assert q.columns == (
        ("region", "region"),
        ("revenue_sum", "revenue_sum"),
        ("web", "web:filtered"),
    )
    web = next(a for a in q.aggregates if a.name == filtered_name("web"))
    assert (web.function, web.field) == ("sum", "revenue")
    assert web.filter == Compare(path=("channel",), op="eq", value="web", scalar="String")
    assert next(a for a in q.aggregates if a.name == "revenue_sum").filter is None
    assert q.having == Compare(path=("web:filtered",), op="gt", value=10, scalar="Float")
    assert [(o.path, o.descending) for o in q.order] == [(("web:filtered",), True)]


def test_an_alias_named_like_an_aggregate_means_the_output(schema: Schema) -> None:
    q = aggregate(
        "{ sales_aggregate(having: {revenue_sum: {gt: 1}}) {"
        " total: revenue_sum revenue_sum: revenue_sum(filter: {quantity: {gt: 2}}) } }",
        schema,
    )
    assert isinstance(q.having, Compare) and q.having.path == ("revenue_sum:filtered",)


@pytest.mark.parametrize(
    ("query", "said"),
    [
        # a filter on a field the fact table does not have: GraphQL's error, located
        ("{ sales_aggregate { n: count(filter: {nope: {eq: 1}}) } }", "nope"),
        (
            '{ sales_aggregate { n: count(filter: {region: {eq: "EU", _eq: "NA"}}) } }',
            "two spellings",
        ),
        (
            '{ sales_aggregate(having: {field: "web"}) { web: count(filter: {quantity: {gt: 1}}) } }',
            "tests nothing",
        ),
        ("{ sales_aggregate(having: {gt: 1}) { count } }", "give the field"),
        (
            '{ sales_aggregate(having: {field: "web", gt: "many"}) { web: count(filter: {quantity: {gt: 1}}) } }',
            "not an integer",
        ),
        ('{ sales_aggregate(having: {field: "nothing", gt: 1}) { count } }', "not selected"),
        ('{ sales_aggregate(orderBy: [{field: "nothing"}]) { count } }', "not selected"),
        ('{ sales_aggregate(groupBy: {occurred_at: "fortnight"}) { count } }', "fortnight"),
        ("{ sales_aggregate { region_bool_and } }", "region_bool_and"),
        (
            "{ sales_aggregate(orderBy: {region_array_agg: ASC}) { region_array_agg } }",
            "region_array_agg",
        ),
    ],
)
def test_bad_forms_are_query_errors_naming_what_is_wrong(
    schema: Schema, query: str, said: str
) -> None:
    with pytest.raises(QueryError, match=said) as info:
        parse_query(query, schema)
    assert info.value.line == 1 or "(at 1:" in str(info.value) or info.value.line is None


def test_a_time_groups_by_its_bucket_in_fraiseqls_string_form(schema: Schema) -> None:
    q = aggregate(
        '{ sales_aggregate(groupBy: {occurred_at: "hour"}) { occurred_at_hour count } }', schema
    )
    assert [(k.name, k.column, k.unit) for k in q.group_keys] == [
        ("occurred_at_hour", "occurred_at", "hour")
    ]


def test_count_distinct_without_a_field_counts_the_first_dimension(schema: Schema) -> None:
    fact = schema.fact("sales")
    assert fact is not None
    q = aggregate("{ sales_aggregate { count_distinct } }", schema)
    assert [(a.function, a.field) for a in q.aggregates] == [
        ("count_distinct", fact.dimensions[0].name)
    ]


def test_lists_follow_the_fact_id(schema: Schema) -> None:
    q = aggregate("{ sales_aggregate { category_string_agg revenue_array_agg } }", schema)
    assert [(a.function, a.order) for a in q.aggregates] == [
        ("string_agg", "id"),
        ("array_agg", "id"),
    ]


# ------------------------------------------------- the variables-only request


REQUEST = {
    "table": "tf_sales",
    "groupBy": {"category": True, "occurred_at": "month"},
    "aggregates": [{"count": {}}, {"revenue_sum": {}}],
    "having": {"revenue_sum_gt": 1000},
    "orderBy": {"revenue_sum": "desc"},
    "limit": 10,
    "offset": 2,
    "where": {"region_eq": "EU"},
}


def test_a_request_in_the_variables_is_the_query_it_means(schema: Schema) -> None:
    q = aggregate("{ sales_aggregate }", schema, REQUEST)
    same = aggregate(
        '{ sales_aggregate(where: {region: {eq: "EU"}}, groupBy: {category: true,'
        " occurred_at_month: true}, having: {revenue_sum: {gt: 1000}},"
        " orderBy: {revenue_sum: DESC}, limit: 10, offset: 2)"
        " { category occurred_at_month count revenue_sum } }",
        schema,
    )
    assert q == same


def test_a_window_request_is_the_query_it_means(schema: Schema) -> None:
    request = {
        "select": [{"type": "dimension", "path": "category", "alias": "cat"}],
        "windows": [
            {
                "function": {"type": "running_sum", "measure": "revenue"},
                "alias": "total",
                "partitionBy": [{"type": "dimension", "path": "category"}],
                "orderBy": [{"field": "id", "direction": "asc"}],
                "frame": {"frame_type": "ROWS", "start": {"type": "n_preceding", "n": 2}},
            }
        ],
    }
    q = parse_query("{ sales_window }", schema, request).queries[0]
    assert isinstance(q, WindowQuery)
    fn = q.outputs[1]
    assert (fn.name, fn.function, fn.field, fn.partition_by, fn.preceding) == (  # type: ignore[union-attr]
        "total",
        "running_sum",
        "revenue",
        ("category",),
        2,
    )


@pytest.mark.parametrize(
    ("variables", "said"),
    [
        ({**REQUEST, "groupby": {}}, "unknown key 'groupby'"),
        ({**REQUEST, "table": "tf_orders"}, "table 'tf_orders' is not the table"),
        ({"aggregates": [{"count) { __typename": {}}]}, "not a field name"),
        ({"aggregates": [{"revenue_sum": {"filter": {}}}]}, "takes {}"),
        ({"aggregates": "count"}, "aggregates is a list"),
        ({}, "selects nothing"),
        ({"aggregates": ["count"], "where": {"nope_eq": 1}}, "nope_eq"),
    ],
)
def test_a_bad_request_is_a_query_error_naming_it(
    schema: Schema, variables: dict, said: str
) -> None:
    with pytest.raises(QueryError, match=said):
        parse_query("{ sales_aggregate }", schema, variables)


@pytest.mark.parametrize(
    ("window", "said"),
    [
        ({"function": {"type": "nth_value", "field": "revenue", "n": 2}}, "nth_value"),
        ({"function": {"type": "row_number"}, "frame": {"frame_type": "RANGE"}}, "ROWS"),
        ({"function": {"type": "lag", "field": "revenue"}, "exclusion": "ties"}, "exclusion"),
    ],
)
def test_a_window_request_fraiseql_would_take_differently_is_refused(
    schema: Schema, window: dict, said: str
) -> None:
    with pytest.raises(QueryError, match=said):
        parse_query("{ sales_window }", schema, {"select": ["id"], "windows": [window]})


# ------------------------------------------------------------------- fuzz

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
_KEYS = st.sampled_from(
    [
        "table",
        "where",
        "groupBy",
        "aggregates",
        "having",
        "orderBy",
        "limit",
        "offset",
        "select",
        "windows",
        "frame",
        "x",
    ]
)
_NAMES = st.sampled_from(
    [
        "count",
        "revenue_sum",
        "region",
        "occurred_at",
        "category_string_agg",
        "day",
        "DESC",
        "region_eq",
        "count_gte",
        "revenue_sum_gt",
        "__typename",
        "id",
        "a b",
        "",
        "é",
    ]
)
_VALUES = st.recursive(
    _NAMES | _JSON,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_NAMES, inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    root=st.sampled_from(["{ sales_aggregate }", "{ sales_window }", "query Q { sales_window }"]),
    request=st.dictionaries(_KEYS, _VALUES, max_size=5),
)
def test_any_request_is_a_query_or_a_query_error(schema: Schema, root: str, request: dict) -> None:
    """Whatever a client puts in a FraiseQL request's variables, the answer is a query or a
    QueryError: never another exception."""
    with contextlib.suppress(QueryError):
        parse_query(root, schema, request)
