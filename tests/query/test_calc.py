"""Calcs, windows over groups and limitPerGroup as IR, and what bad input gets (pure: the
demo schema of tests/data, no database)."""

from __future__ import annotations

import pytest

from fraiseql_nb import QueryError
from fraiseql_nb.query import AggregateQuery, parse_query
from fraiseql_nb.query.ir import Binary, Calc, Call, GroupWindow, Num, Ref, Unary
from fraiseql_nb.schema import Schema


def aggregate(
    selection: str, schema: Schema, args: str = "groupBy: {category: true}", **kw: int
) -> AggregateQuery:
    q = parse_query(f"{{ sales_aggregate({args}) {{ {selection} }} }}", schema, **kw).queries[0]
    assert isinstance(q, AggregateQuery)
    return q


def test_an_expression_is_a_tree_of_the_selections_columns(schema: Schema) -> None:
    q = aggregate(
        "category revenue_sum count n: count(filter: {quantity: {gt: 1}})"
        ' a: calc(expr: "-(revenue_sum - 2) / round(n, -1) + coalesce(count, 0)")',
        schema,
    )
    ((calc,),) = q.post
    assert isinstance(calc, Calc) and calc.name == "a:post"
    assert calc.expr == Binary(
        op="+",
        left=Binary(
            op="/",
            left=Unary(
                op="-", operand=Binary(op="-", left=Ref(name="revenue_sum"), right=Num(value=2))
            ),
            right=Call(function="round", args=(Ref(name="n:filtered"), Num(value=-1))),
        ),
        right=Call(function="coalesce", args=(Ref(name="count"), Num(value=0))),
    )


def test_outputs_are_computed_in_the_order_they_read_each_other(schema: Schema) -> None:
    q = aggregate(
        "category revenue_sum"
        ' g: calc(expr: "p * 2")'
        " p: lag(field: revenue_sum, orderBy: {category: ASC})"
        ' r: rank(orderBy: [{field: "g", direction: DESC}])',
        schema,
    )
    assert [[p.name for p in level] for level in q.post] == [["p:post"], ["g:post"], ["r:post"]]
    window = q.post[2][0]
    assert isinstance(window, GroupWindow) and window.order[0].path == ("g:post",)


def test_having_on_groups_is_having_and_on_windows_is_qualify(schema: Schema) -> None:
    q = aggregate(
        "category count rk: rank(orderBy: {count: DESC})",
        schema,
        args='groupBy: {category: true}, having: {count: {gt: 5}, field: "rk", lte: 2}',
    )
    assert q.having is not None and q.having.path == ("count",)  # type: ignore[union-attr]
    assert q.qualify is not None and q.qualify.path == ("rk:post",)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("selection", "said"),
    [
        (
            'category x: calc(expr: "revenue_sum * 2")',
            "'revenue_sum' is not a column of this selection (it has: category, x)",
        ),
        ('category count x: calc(expr: "count *")', "syntax error at column 8"),
        ('category count x: calc(expr: "  count ** 2")', "column 3: ** is not taken"),
        ('category count x: calc(expr: "count.real")', "Attribute is not taken"),
        ('category count x: calc(expr: "count > 2")', "Compare is not taken"),
        ("category count x: calc(expr: \"'a'\")", "only numbers are values"),
        ('category count x: calc(expr: "__import__(1)")', "only these functions are taken"),
        (
            'category count x: calc(expr: "round(count, count)")',
            "round's digits are a whole number",
        ),
        ('category count x: calc(expr: "abs(count, 1)")', "abs takes 1 arguments"),
        ('category count x: calc(expr: "category * 2")', "category is not a number"),
        ('category count x: calc(expr: "")', "empty"),
        (
            'category count x: calc(expr: "y + 1") y: calc(expr: "x + 1")',
            "read each other in a loop: x -> y -> x",
        ),
        ('category count x: calc(expr: "x + 1")', "loop: x -> x"),
        (
            "category count r: rank(partitionBy: [region], orderBy: {count: DESC})",
            "partitionBy region, which is not grouped",
        ),
        ("category count r: rank", "needs an orderBy"),
        (
            "category count r: lag(field: nothing, orderBy: {count: ASC})",
            "field 'nothing' is not an output",
        ),
        ("category count r: ntile(buckets: 0, orderBy: {count: ASC})", "buckets must be 1 or more"),
        (
            'category count r: lag(field: count, orderBy: {count: ASC}, default: "x")',
            "default 'x' is not",
        ),
        # found by review: each checked against what it reads, whatever the order written
        (
            'category count c: calc(expr: "p + 1") p: lag(field: category, orderBy: {count: ASC})',
            "p is not a number",
        ),
        ("category count s: share(field: category)", "field 'category' is not a number"),
        (
            "category count r: running_sum(field: category, orderBy: {count: ASC})",
            "is not a number",
        ),
        ("category count r: lag(field: count, orderBy: {count: ASC}, default: 1.5)", "default"),
        (
            "category count r: running_sum(field: count, preceding: 1)",
            "needs an orderBy (at",
        ),
        ('category count x: calc(expr: "count * 1e309")', "beyond float8's range"),
        ('category count x: calc(expr: "count\\u0000")', "NUL"),
        (
            'category count x: calc(expr: "' + "-" * 70 + 'count")',
            "nests deeper than 64 levels",
        ),
        (
            'category count x: calc(expr: "' + "+".join(["count"] * 100) + '")',
            "nests deeper than 64 levels",
        ),
        ('category count x: calc(expr: "éé + count")', "column 1: 'éé'"),
        ('category count x: calc(expr: "count + é")', "column 9: 'é'"),
        (
            'category count x: calc(expr: "count") r: rank(orderBy: [{field: "x:post"}])',
            "not an output",
        ),
    ],
)
def test_bad_expressions_and_windows_are_query_errors(
    schema: Schema, selection: str, said: str
) -> None:
    with pytest.raises(
        QueryError, match=said.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")
    ) as info:
        aggregate(selection, schema)
    assert info.value.line == 1  # located at the argument in the GraphQL text


def test_an_expression_longer_than_the_limit_is_refused(schema: Schema) -> None:
    expr = " + ".join(["count"] * 30)
    with pytest.raises(QueryError, match="more than the 50 \\[limits\\] max_expression_chars"):
        aggregate(f'category count x: calc(expr: "{expr}")', schema, max_expression=50)
    assert aggregate(f'category count x: calc(expr: "{expr}")', schema).post


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            "groupBy: {category: true}, limitPerGroup: {partitionBy: [region], orderBy: [{count: DESC}], limit: 1}",
            "not grouped",
        ),
        (
            "groupBy: {category: true}, limitPerGroup: {partitionBy: [category], orderBy: [], limit: 1}",
            "needs an orderBy",
        ),
        (
            "groupBy: {category: true}, limitPerGroup: {partitionBy: [category], orderBy: [{count: DESC}], limit: -1}",
            "0 or more",
        ),
        (
            'groupBy: {category: true}, limitPerGroup: {partitionBy: [category], orderBy: [{field: "nope"}], limit: 1}',
            "nope, which is not an output",
        ),
    ],
)
def test_bad_limit_per_group_is_a_query_error(schema: Schema, args: str, said: str) -> None:
    with pytest.raises(QueryError, match=said):
        aggregate("category count", schema, args=args)
