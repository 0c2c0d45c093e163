"""GraphQL text -> IR: the whole language, and a located error for everything else."""

from __future__ import annotations

import pytest

from fraiseql_nb import QueryError
from fraiseql_nb.query import (
    AggregateQuery,
    And,
    Compare,
    Not,
    Or,
    RowQuery,
    WindowColumn,
    WindowFunction,
    WindowQuery,
    parse_query,
)
from fraiseql_nb.schema import Schema


def rows(text: str, schema: Schema, variables: dict | None = None, key: str = "users") -> RowQuery:
    q = parse_query(text, schema, variables)[key]
    assert isinstance(q, RowQuery)
    return q


# ---------------------------------------------------------------- row queries


def test_design_example_row_query(schema: Schema) -> None:
    q = rows(
        """{ users(where: {status: {eq: "active"}, address: {city: {in: ["Paris", "Lyon"]}},
                    _or: [{age: {gte: 65}}, {tags: {array_contains: ["vip"]}}]},
                orderBy: [{age: DESC}, {name: ASC}], limit: 50, offset: 100) {
            id name email address { city } } }""",
        schema,
    )
    assert [s.name for s in q.selection] == ["id", "name", "email", "address"]
    assert [c.name for c in q.selection[3].children] == ["city"]
    assert q.where == And(
        items=(
            Compare(path=("status",), op="eq", value="active", scalar="String", json="string"),
            Compare(
                path=("address", "city"),
                op="in",
                value=["Paris", "Lyon"],
                scalar="String",
                json="string",
            ),
            Or(
                items=(
                    Compare(path=("age",), op="gte", value=65, scalar="Int", json="number"),
                    Compare(
                        path=("tags",),
                        op="array_contains",
                        value=["vip"],
                        scalar="String",
                        json="string",
                        is_list=True,
                    ),
                )
            ),
        )
    )
    assert [(o.path, o.descending, o.nulls_first) for o in q.order] == [
        (("age",), True, False),
        (("name",), False, False),
    ]
    assert (q.limit, q.offset) == (50, 100)


def test_aliases_fragments_directives_and_variables(schema: Schema) -> None:
    doc = parse_query(
        """
        query People($min: Int = 30, $full: Boolean!, $city: String) {
          adults: users(where: {age: {gte: $min}, address: {city: {eq: $city}}}) {
            ...basics
            where: address @include(if: $full) { city }
            ... on User { tags @skip(if: $full) }
          }
          user(id: 7) { key: id }
        }
        fragment basics on User { id who: name }
        """,
        schema,
        {"full": True, "city": "Lyon"},
    )
    assert doc.keys() == ["adults", "user"]
    adults = doc["adults"]
    assert isinstance(adults, RowQuery)
    assert [(s.name, s.key) for s in adults.selection] == [
        ("id", "id"),
        ("who", "name"),
        ("where", "address"),
    ]
    assert adults.where == And(
        items=(
            Compare(path=("age",), op="gte", value=30, scalar="Int", json="number"),
            Compare(
                path=("address", "city"), op="eq", value="Lyon", scalar="String", json="string"
            ),
        )
    )
    one = doc["user"]
    assert isinstance(one, RowQuery)
    assert (one.by_id, one.limit, [s.name for s in one.selection]) == (7, 1, ["key"])


def test_not_and_nested_boolean_trees(schema: Schema) -> None:
    q = rows(
        "{ users(where: {_not: {_or: [{_and: [{age: {lt: 20}}, {name: {isnull: true}}]},"
        ' {address: {_not: {zip: {startswith: "7"}}}}]}}) { id } }',
        schema,
    )
    assert isinstance(q.where, Not)
    inner = q.where.item
    assert isinstance(inner, Or)
    assert isinstance(inner.items[0], And)
    assert isinstance(inner.items[1], Not)
    assert inner.items[1].item == Compare(
        path=("address", "zip"), op="startswith", value="7", scalar="String", json="string"
    )


def test_empty_where_matches_everything(schema: Schema) -> None:
    assert rows("{ users(where: {}) { id } }", schema).where is None
    assert rows("{ users(where: {_and: []}) { id } }", schema).where is None


def test_ids_are_numbers_when_the_documents_say_so(schema: Schema) -> None:
    q = rows('{ users(where: {id: {in: ["3", 4]}}) { id } }', schema)
    assert q.where == Compare(
        path=("id",), op="in", value=[3, 4], scalar="ID", json="number", column="id"
    )  # the id column is the id here: the condition reads it (indexed)
    with pytest.raises(QueryError, match="'abc' is not an id") as info:
        rows('{ users(where: {id: {eq: "abc"}}) { id } }', schema)
    assert (info.value.line, info.value.column) == (1, 9)  # the where argument


def test_several_root_fields_keep_their_order(schema: Schema) -> None:
    doc = parse_query(
        "{ sales_aggregate { count } users(limit: 1) { id } w: sales_window(orderBy: {id: ASC}) { id } }",
        schema,
    )
    assert doc.keys() == ["sales_aggregate", "users", "w"]
    assert [type(q).__name__ for q in doc.queries] == ["AggregateQuery", "RowQuery", "WindowQuery"]


def test_operation_name_picks_one_of_several(schema: Schema) -> None:
    text = "query A { users { id } } query B { products { id } }"
    assert parse_query(text, schema, operation_name="B").keys() == ["products"]
    with pytest.raises(QueryError, match="has 2 operations; pass operation_name"):
        parse_query(text, schema)
    with pytest.raises(QueryError, match=r"no operation named 'C'.*it has A, B"):
        parse_query(text, schema, operation_name="C")


# ---------------------------------------------------------------- aggregates


def test_design_example_aggregate_query(schema: Schema) -> None:
    q = parse_query(
        """{ sales_aggregate(where: {occurred_at: {gte: "2024-01-01"}, category: {in: ["books"]}},
                  groupBy: {category: true, occurred_at_month: true},
                  having: {revenue_sum: {gt: 1000}},
                  orderBy: {revenue_sum: DESC}, limit: 10) {
            category occurred_at_month count revenue_sum revenue_avg quantity_max
            customer_id_count_distinct revenue_median revenue_p90 } }""",
        schema,
    )["sales_aggregate"]
    assert isinstance(q, AggregateQuery)
    assert [(k.name, k.source, k.unit) for k in q.group_keys] == [
        ("category", "dimension", None),
        ("occurred_at_month", "bucket", "month"),
    ]
    assert [(a.name, a.function, a.field, a.percentile) for a in q.aggregates] == [
        ("count", "count", None, None),
        ("revenue_sum", "sum", "revenue", None),
        ("revenue_avg", "avg", "revenue", None),
        ("quantity_max", "max", "quantity", None),
        ("customer_id_count_distinct", "count_distinct", "customer_id", None),
        ("revenue_median", "median", "revenue", 0.5),
        ("revenue_p90", "p90", "revenue", 0.9),
    ]
    assert q.having == Compare(path=("revenue_sum",), op="gt", value=1000.0, scalar="Float")
    assert [(o.path, o.descending) for o in q.order] == [(("revenue_sum",), True)]
    assert q.limit == 10


def test_aggregate_aliases_and_ordering_by_group_keys(schema: Schema) -> None:
    q = parse_query(
        "{ s: sales_aggregate(groupBy: {region: true}, orderBy: [{region: ASC_NULLS_FIRST}]) "
        "{ r: region total: revenue_sum revenue_sum n: count } }",
        schema,
    )["s"]
    assert isinstance(q, AggregateQuery)
    assert q.columns == (
        ("r", "region"),
        ("total", "revenue_sum"),
        ("revenue_sum", "revenue_sum"),
        ("n", "count"),
    )
    assert [a.name for a in q.aggregates] == ["revenue_sum", "count"]
    assert (q.order[0].descending, q.order[0].nulls_first) == (False, True)


# ------------------------------------------------------------------ windows


def test_design_example_window_query(schema: Schema) -> None:
    q = parse_query(
        """{ sales_window(where: {region: {eq: "EU"}}, partitionBy: [category],
               orderBy: {occurred_at: ASC}, limit: 1000) {
            id category occurred_at revenue
            rn: row_number
            revenue_rank: rank(orderBy: {revenue: DESC})
            running_revenue: running_sum(field: revenue)
            revenue_ma7: running_avg(field: revenue, preceding: 6)
            prev_revenue: lag(field: revenue, offset: 1) } }""",
        schema,
    )["sales_window"]
    assert isinstance(q, WindowQuery)
    columns = [o for o in q.outputs if isinstance(o, WindowColumn)]
    functions = {o.name: o for o in q.outputs if isinstance(o, WindowFunction)}
    assert [c.column for c in columns] == ["id", "category", "occurred_at", "revenue"]
    assert functions["rn"].partition_by == ("category",)
    assert functions["rn"].order[0].path == ("occurred_at",)
    assert [o.path for o in functions["revenue_rank"].order] == [("revenue",)]
    assert functions["revenue_rank"].order[0].descending
    assert (functions["revenue_ma7"].function, functions["revenue_ma7"].preceding) == (
        "running_avg",
        6,
    )
    assert (functions["prev_revenue"].field, functions["prev_revenue"].offset) == ("revenue", 1)


# ------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "message", "where"),
    [
        ("{ users { id ", "Syntax Error: Expected Name, found <EOF>", (1, 14)),
        (
            "{ userz { id } }",
            "Cannot query field 'userz' on type 'Query'. Did you mean 'user' or 'users'?",
            (1, 3),
        ),
        (
            "{ users {\n  nme } }",
            "Cannot query field 'nme' on type 'User'. Did you mean 'name'",
            (2, 3),
        ),
        (
            "{ users(where: {age: {gtt: 3}}) { id } }",
            "unknown field 'gtt'. Did you mean 'gt'",
            (1, 23),
        ),
        (
            "{ users(where: {agee: {gt: 3}}) { id } }",
            "unknown field 'agee'. Did you mean 'age'",
            (1, 17),
        ),
        (
            '{ users(where: {age: {gt: "x"}}) { id } }',
            'Int cannot represent non-integer value: "x"',
            (1, 27),
        ),
        (
            '{ users(where: {created_at: {gt: "yesterday"}}) { id } }',
            "DateTime cannot represent 'yesterday'",
            (1, 34),
        ),
        ("{ users(limit: -1) { id } }", "limit must be 0 or more, got -1", (1, 9)),
        ("{ users(offset: -5) { id } }", "offset must be 0 or more, got -5", (1, 9)),
        ("mutation { users { id } }", "not supported", (1, 1)),
        ("subscription { users { id } }", "not supported", (1, 1)),
        (
            "{ users(where: {age: {eq: null}}) { id } }",
            "age.eq needs a value, got null; to match missing values use isnull: true",
            (1, 9),
        ),
        ('{ users(collation: "Cc") { id } }', "unknown collation 'Cc'. Did you mean 'C'", (1, 9)),
        (
            "{ sales_aggregate { category } }",
            "category is selected but not grouped: add groupBy: {category: true}",
            (1, 21),
        ),
        (
            "{ sales_aggregate(groupBy: {region: true}, having: {revenue_sum: {gt: 1}}) { region } }",
            "having on revenue_sum, which is not selected",
            (1, 44),
        ),
        (
            "{ sales_aggregate(orderBy: {cost_max: DESC}) { count } }",
            "orderBy on cost_max, which is not selected",
            (1, 19),
        ),
        (
            "{ sales_aggregate { category_median } }",
            "Cannot query field 'category_median' on type 'SalesAggregate'",
            (1, 21),
        ),
        (
            "{ sales_aggregate { chanel_count_distinct } }",
            "Did you mean 'channel_count_distinct'",
            (1, 21),
        ),
        (
            "{ sales_window(orderBy: {id: ASC}) { lag } }",
            "Argument 'SalesWindowRow.lag(field:)' of type 'SalesColumn!' is required",
            (1, 38),
        ),
        ("{ sales_window { id rn: row_number } }", "row_number needs an order", (1, 21)),
        (
            "{ sales_window(orderBy: {id: ASC}) { running_sum(field: category) } }",
            "Value 'category' does not exist in 'SalesMeasure' enum",
            (1, 57),
        ),
        (
            "{ sales_window(orderBy: {id: ASC}) { ntile(buckets: 0) } }",
            "buckets must be 1 or more",
            (1, 44),
        ),
        (
            "{ sales_window(orderBy: {id: ASC}) { running_avg(field: cost, preceding: -1) } }",
            "preceding must be 0 or more",
            (1, 63),
        ),
    ],
)
def test_bad_queries_get_located_errors(
    schema: Schema, text: str, message: str, where: tuple[int, int]
) -> None:
    with pytest.raises(QueryError) as info:
        parse_query(text, schema)
    assert message in str(info.value)
    assert (info.value.line, info.value.column) == where
    assert f"(at {where[0]}:{where[1]})" in str(info.value)


def test_variable_problems(schema: Schema) -> None:
    text = "query ($n: Int!, $w: UserWhereInput) { users(limit: $n, where: $w) { id } }"
    with pytest.raises(
        QueryError, match=r"Variable '\$n' has invalid value: Expected a value of non-null"
    ) as info:
        parse_query(text, schema, {})
    assert (info.value.line, info.value.column) == (1, 8)
    with pytest.raises(QueryError, match=r"Variable '\$n' has invalid value: Int cannot represent"):
        parse_query(text, schema, {"n": "ten"})
    with pytest.raises(QueryError, match="Did you mean 'age'"):
        parse_query(text, schema, {"n": 1, "w": {"agee": {"eq": 1}}})
    with pytest.raises(QueryError, match=r"Variable '\$x' is not defined"):
        parse_query("{ users(limit: $x) { id } }", schema, {"x": 1})
    with pytest.raises(QueryError, match="variables must be a dict"):
        parse_query("{ users { id } }", schema, [1])  # type: ignore[arg-type]


def test_every_validation_error_is_reported(schema: Schema) -> None:
    with pytest.raises(QueryError) as info:
        parse_query("{ users { nme emal } }", schema)
    assert [e[1:] for e in info.value.errors] == [(1, 11), (1, 15)]
    assert "'nme'" in str(info.value)
    assert "'emal'" in str(info.value)


def test_hostile_values_are_refused_or_kept_as_data(schema: Schema) -> None:
    with pytest.raises(QueryError, match="cannot contain NUL"):
        parse_query('{ users(where: {name: {eq: "a\\u0000b"}}) { id } }', schema)
    with pytest.raises(QueryError, match="at most 1000"):
        parse_query(
            "query ($r: String) { users(where: {name: {regex: $r}}) { id } }",
            schema,
            {"r": "a" * 1001},
        )
    evil = "x'); DROP TABLE tb_user; --"
    q = rows("query ($v: String) { users(where: {name: {eq: $v}}) { id } }", schema, {"v": evil})
    assert q.where == Compare(path=("name",), op="eq", value=evil, scalar="String", json="string")


def test_text_must_be_text(schema: Schema) -> None:
    with pytest.raises(QueryError, match="GraphQL text, not bytes"):
        parse_query(b"{ users { id } }", schema)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "{ sales_aggregate(groupBy: {regoin: true}) { count } }",
            "sales has no group key 'regoin'; did you mean 'region'?",
        ),
        ("{ sales_aggregate(groupBy: {zzz: true}) { count } }", "sales has no group key 'zzz'"),
        (
            "{ sales_aggregate(groupBy: {region: true}, orderBy: {regoin: ASC}) { region count } }",
            "sales_aggregate has no orderBy field 'regoin'; did you mean 'region'?",
        ),
    ],
)
def test_an_unknown_group_key_is_said_in_the_query_s_words(
    schema: Schema, text: str, message: str
) -> None:
    with pytest.raises(QueryError) as info:
        parse_query(text, schema)
    assert str(info.value).startswith(f"{message} (at 1:")
