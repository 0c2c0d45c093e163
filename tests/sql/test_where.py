"""Where IR -> SQL: the text and parameters of every operator (pure)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from psycopg import sql as pgsql
from psycopg.types.json import Jsonb

from fraiseql_nb.query.ir import And, Compare, Not, Or
from fraiseql_nb.schema.graphql import LIST_OPERATORS, SCALAR_OPERATORS
from fraiseql_nb.sql.exprs import column_field, document_field
from fraiseql_nb.sql.params import Params, cast
from fraiseql_nb.sql.where import OPERATORS, compile_where, escape_like

DATA = pgsql.Identifier("data")

TEXT = "(\"data\" -> 'a' ->> 'b')"
NUM = "(CASE WHEN jsonb_typeof((\"data\" -> 'a' -> 'b')) = 'number' THEN ((\"data\" -> 'a' -> 'b'))::numeric END)"
ARRAY = "(CASE WHEN jsonb_typeof((\"data\" -> 'tags')) = 'array' THEN (\"data\" -> 'tags') END)"


def render(c: Compare, *, literal: bool = False) -> tuple[str, dict[str, Any]]:
    params = Params(literal=literal)
    text = compile_where(c, lambda x: document_field(DATA, x.path, x.scalar, x.json), params)
    return text.as_string(None), params.values


@pytest.mark.parametrize(
    ("op", "scalar", "json", "value", "sql", "params"),
    [
        ("eq", "String", "string", "x", f"({TEXT} = (%(p1)s::text))", ["x"]),
        ("neq", "Int", "number", 3, f"({NUM} <> (%(p1)s::numeric))", [Decimal(3)]),
        (
            "gt",
            "Float",
            "number",
            0.1 + 0.2,
            f"({NUM} > (%(p1)s::numeric))",
            [Decimal("0.30000000000000004")],
        ),
        (
            "gte",
            "DateTime",
            "string",
            "2024-01-01",
            f"(({TEXT})::timestamptz >= (%(p1)s::timestamptz))",
            ["2024-01-01"],
        ),
        (
            "lt",
            "Date",
            "string",
            "2024-01-01",
            f"(({TEXT})::date < (%(p1)s::date))",
            ["2024-01-01"],
        ),
        (
            "lte",
            "Boolean",
            "boolean",
            True,
            "((CASE WHEN jsonb_typeof((\"data\" -> 'a' -> 'b')) = 'boolean' THEN ((\"data\" -> 'a' -> 'b'))::boolean END)"
            " <= (%(p1)s::boolean))",
            [True],
        ),
        (
            "in",
            "Int",
            "number",
            [1, 2],
            f"({NUM} = ANY((%(p1)s::numeric[])))",
            [[Decimal(1), Decimal(2)]],
        ),
        ("in", "String", "string", [], "FALSE", []),
        ("nin", "String", "string", ["a"], f"({TEXT} <> ALL((%(p1)s::text[])))", [["a"]]),
        ("nin", "Int", "number", [], "TRUE", []),
        ("isnull", "String", "string", True, f"({TEXT} IS NULL)", []),
        ("isnull", "Int", "number", False, f"({TEXT} IS NOT NULL)", []),
        (
            "contains",
            "String",
            "string",
            "50%_off\\",
            f"({TEXT} LIKE (%(p1)s::text))",
            ["%50\\%\\_off\\\\%"],
        ),
        ("icontains", "String", "string", "a", f"({TEXT} ILIKE (%(p1)s::text))", ["%a%"]),
        ("startswith", "String", "string", "a_", f"({TEXT} LIKE (%(p1)s::text))", ["a\\_%"]),
        ("istartswith", "String", "string", "a", f"({TEXT} ILIKE (%(p1)s::text))", ["a%"]),
        ("endswith", "String", "string", "%", f"({TEXT} LIKE (%(p1)s::text))", ["%\\%"]),
        ("iendswith", "String", "string", "z", f"({TEXT} ILIKE (%(p1)s::text))", ["%z"]),
        ("like", "String", "string", "a%b_", f"({TEXT} LIKE (%(p1)s::text))", ["a%b_"]),
        ("ilike", "String", "string", "A%", f"({TEXT} ILIKE (%(p1)s::text))", ["A%"]),
        ("regex", "String", "string", "^a.*z$", f"({TEXT} ~ (%(p1)s::text))", ["^a.*z$"]),
        ("iregex", "String", "string", "x", f"({TEXT} ~* (%(p1)s::text))", ["x"]),
        (
            "strictly_contains",
            "JSON",
            None,
            {"a": 1},
            "((\"data\" -> 'a' -> 'b') @> (%(p1)s::jsonb))",
            [Jsonb({"a": 1})],
        ),
        ("eq", "ID", "number", 5, f"({NUM} = (%(p1)s::numeric))", [Decimal(5)]),
        ("eq", "ID", "string", "u1", f"({TEXT} = (%(p1)s::text))", ["u1"]),
        (
            "eq",
            "JSON",
            None,
            {"k": [1]},
            "((\"data\" -> 'a' -> 'b') = (%(p1)s::jsonb))",
            [Jsonb({"k": [1]})],
        ),
    ],
)
def test_scalar_operators(
    op: str, scalar: str, json: str | None, value: Any, sql: str, params: list[Any]
) -> None:
    text, values = render(Compare(path=("a", "b"), op=op, value=value, scalar=scalar, json=json))
    assert text == sql
    assert [v.obj if isinstance(v, Jsonb) else v for v in values.values()] == [
        p.obj if isinstance(p, Jsonb) else p for p in params
    ]


@pytest.mark.parametrize(
    ("op", "value", "sql"),
    [
        ("array_contains", ["vip"], f"({ARRAY} @> (%(p1)s::jsonb))"),
        (
            "array_overlaps",
            ["a", 1],
            f"EXISTS (SELECT 1 FROM jsonb_array_elements({ARRAY}) AS e(v) WHERE (%(p1)s::jsonb) @> jsonb_build_array(e.v))",
        ),
        ("array_overlaps", [], "FALSE"),
        ("len_eq", 2, f"(jsonb_array_length({ARRAY}) = (%(p1)s::integer))"),
        ("len_gt", 0, f"(jsonb_array_length({ARRAY}) > (%(p1)s::integer))"),
        ("len_lt", 3, f"(jsonb_array_length({ARRAY}) < (%(p1)s::integer))"),
        ("len_gte", 2, f"(jsonb_array_length({ARRAY}) >= (%(p1)s::integer))"),
        ("len_lte", 0, f"(jsonb_array_length({ARRAY}) <= (%(p1)s::integer))"),
        ("array_contained_by", ["vip", "new"], f"({ARRAY} <@ (%(p1)s::jsonb))"),
    ],
)
def test_list_operators(op: str, value: Any, sql: str) -> None:
    text, _ = render(Compare(path=("tags",), op=op, value=value, scalar="String", is_list=True))
    assert text == sql


def test_every_operator_of_the_language_has_a_renderer() -> None:
    language = {op for ops in SCALAR_OPERATORS.values() for op in ops} | set(LIST_OPERATORS)
    assert language == set(OPERATORS)
    assert language >= {
        "eq",
        "neq",
        "gt",
        "gte",
        "lt",
        "lte",
        "in",
        "nin",
        "isnull",
        "contains",
        "icontains",
        "startswith",
        "istartswith",
        "endswith",
        "iendswith",
        "like",
        "ilike",
        "regex",
        "iregex",
        "array_contains",
        "array_overlaps",
        "len_eq",
        "len_gt",
        "len_lt",
        "len_gte",
        "len_lte",
        "array_contained_by",
        "strictly_contains",
    }


def test_boolean_trees_nest_with_parentheses() -> None:
    a = Compare(path=("a",), op="eq", value=1, scalar="Int", json="number")
    b = Compare(path=("b",), op="isnull", value=True, scalar="String")
    tree = Not(item=Or(items=(And(items=(a, b)), Not(item=b))))
    text = compile_where(tree, lambda x: document_field(DATA, x.path, x.scalar, x.json), Params())
    assert text.as_string(None).count("(NOT ") == 2
    assert " OR " in text.as_string(None)
    assert " AND " in text.as_string(None)
    assert compile_where(And(items=()), lambda x: None, Params()).as_string(None) == "TRUE"  # type: ignore[arg-type,return-value]
    assert compile_where(Or(items=()), lambda x: None, Params()).as_string(None) == "FALSE"  # type: ignore[arg-type,return-value]


def test_columns_cast_parameters_to_their_own_type() -> None:
    c = Compare(path=("occurred_at",), op="gte", value="2024-01-01", scalar="DateTime")
    params = Params()
    text = compile_where(
        c, lambda _: column_field("occurred_at", "timestamp with time zone"), params
    )
    assert text.as_string(None) == '("occurred_at" >= (%(p1)s::timestamp with time zone))'
    # numeric(12,2) must not round the value the user compares with
    c = Compare(path=("revenue",), op="gt", value=100.005, scalar="Float")
    text = compile_where(c, lambda _: column_field("revenue", "numeric(12,2)"), Params())
    assert text.as_string(None) == '("revenue" > (%(p1)s::numeric))'


def test_literal_mode_renders_values_safely() -> None:
    text, values = render(
        Compare(
            path=("a", "b"),
            op="in",
            value=["it's", "; DROP TABLE x; --"],
            scalar="String",
            json="string",
        ),
        literal=True,
    )
    assert values == {}
    assert text == f"({TEXT} = ANY(('{{it''s,\"; DROP TABLE x; --\"}}'::text[])))"


def test_escape_like() -> None:
    assert escape_like("100%_\\x") == "100\\%\\_\\\\x"


def test_casts_accept_only_plain_type_names() -> None:
    assert cast("numeric(12,2)").as_string(None) == "::numeric"
    assert cast("timestamp with time zone").as_string(None) == "::timestamp with time zone"
    with pytest.raises(ValueError, match="not a plain PostgreSQL type name"):
        cast("int); DROP TABLE x; --")
