"""Hostile and careless input: each case found adversarially, reproduced.

Every outcome is a result or a FraiseQLError of the right class (the
caller's mistake is a QueryError, the database's a BackendError), never a
foreign exception; under ``auto`` the two fact planes agree or arrow
declines; a password never appears in what is shown.
"""

from __future__ import annotations

import polars as pl
import psycopg
import pytest
from psycopg import sql

import fraiseql_nb as fq
from fraiseql_nb.pg.conninfo import mask_dsn, redact

PASSWORD = "Sekr3t!"


# ------------------------------------------------------------------ secrets in bad DSNs


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://u:Sekr3t%zz@/db?host=/tmp",  # bad percent-encoding
        "postgresql+psycopg://u:Sekr3t!@/db?host=/tmp",  # SQLAlchemy's driver suffix
        "host=/tmp password='Sekr3t! dbname=x",  # unclosed quote
        "host=/tmp user=u password=Sekr3t! port=notaport",
    ],
)
def test_a_bad_dsn_is_a_config_error_without_its_password(dsn: str) -> None:
    with pytest.raises(fq.FraiseQLError) as info:
        fq.connect(dsn)
    assert isinstance(info.value, fq.ConfigError | fq.BackendError)
    assert "Sekr3t" not in str(info.value)
    assert "Sekr3t" not in repr(info.value)


def test_mask_dsn_hides_sslpassword_and_unclosed_quotes() -> None:
    assert "Sekr3t" not in mask_dsn("host=/tmp sslpassword=Sekr3t! dbname=x")
    assert "Sekr3t" not in mask_dsn("host=/tmp password='Sekr3t!")
    assert "Sekr3t" not in mask_dsn("postgresql+psycopg://u:Sekr3t!@h/db")
    masked = mask_dsn("postgresql://u:Sekr3t%21@h:5433/db?sslpassword=Other1")
    assert "Sekr3t" not in masked and "Other1" not in masked
    assert "h:5433/db" in masked  # the rest stays readable


def test_redact_hides_each_form_of_a_password_in_free_text() -> None:
    text = "failed for u:Sekr3t%21 (Sekr3t!) sslpassword=Other1"
    out = redact(text, ("Sekr3t!", "Sekr3t%21"))
    assert "Sekr3t" not in out and "Other1" not in out


def test_a_driver_suffixed_uri_connects(demo_dsn: str) -> None:
    """``postgresql+psycopg://`` (as SQLAlchemy users write it) is read as libpq's URI."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(demo_dsn)
    uri = "postgresql+psycopg://{user}@/{dbname}?host={host}&port={port}".format(
        user=params.get("user", ""),
        dbname=params["dbname"],
        host=params.get("host", ""),
        port=params.get("port", 5432),
    )
    with fq.connect(uri) as s:
        assert s.execute("{ users(limit: 2) { id } }").df.height == 2


# ------------------------------------------------------------------ the caller's mistakes


COUNT = "{ sales_aggregate(where: {%s}) { count } }"


@pytest.mark.parametrize(
    ("where", "says"),
    [
        ('region: {like: "\\\\"}', "ends with the escape character"),
        ('region: {ilike: "ab\\\\"}', "ends with the escape character"),
        ('customer_id: {eq: "9223372036854775808"}', "out of range for bigint"),
        ('category: {regex: "[a-"}', "regular expression"),
        ('category: {regex: "a{1000}"}', "regular expression"),
    ],
)
@pytest.mark.parametrize("backend", ["auto", "postgres", "arrow"])
def test_bad_values_are_query_errors_on_every_plane(
    session: fq.Session, where: str, says: str, backend: str
) -> None:
    with pytest.raises(fq.QueryError) as info:
        session.execute(COUNT % where, backend=backend)
    assert says in str(info.value)


def test_a_trailing_escaped_backslash_is_a_literal_one(session: fq.Session) -> None:
    counts = {
        b: session.execute(COUNT % 'region: {like: "%\\\\\\\\"}', backend=b).df["count"][0]
        for b in ("postgres", "arrow")
    }
    assert counts == {"postgres": 0, "arrow": 0}


@pytest.mark.parametrize(
    ("field", "default", "says"),
    [
        ("revenue", '"x"', "is not a number"),
        ("occurred_at", "true", "is not an ISO 8601 time"),
    ],
)
def test_window_defaults_of_the_wrong_type_are_query_errors(
    session: fq.Session, field: str, default: str, says: str
) -> None:
    text = (
        "{ sales_window(orderBy: [{id: ASC}], limit: 2)"
        f" {{ id lag(field: {field}, default: {default}) }} }}"
    )
    for backend in ("auto", "arrow", "postgres"):
        with pytest.raises(fq.QueryError) as info:
            session.execute(text, backend=backend)
        assert says in str(info.value)


def _nested(depth: int) -> list[object]:
    value: list[object] = [1]
    for _ in range(depth):
        value = [value]
    return value


LAG = (
    "query ($d: JSON) { sales_window(orderBy: [{id: ASC}], limit: 1)"
    " { id lag(field: revenue, default: $d) } }"
)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (b"bytes", "bytes is not a JSON value"),
        ({1, 2}, "set is not a JSON value"),
        (object(), "object is not a JSON value"),
        (float("inf"), "finite"),
        (float("nan"), "finite"),
        ({1: "a"}, "keys are text"),
        (_nested(5000), "nest"),
    ],
)
def test_variables_that_are_not_json_are_query_errors(
    session: fq.Session, value: object, says: str
) -> None:
    with pytest.raises(fq.QueryError) as info:
        session.execute(LAG, variables={"d": value})
    assert says in str(info.value)


def test_deeply_nested_list_variables_are_query_errors(session: fq.Session) -> None:
    with pytest.raises(fq.QueryError) as info:
        session.execute(
            "query ($n: [String!]) { users(where: {name: {in: $n}}) { id } }",
            variables={"n": _nested(5000)},
        )
    assert "nested too deeply" in str(info.value)


def test_a_keyset_cursor_out_of_range_is_a_query_error(session: fq.Session) -> None:
    with pytest.raises(fq.QueryError) as info:
        session.execute('{ users(after: "99999999999999999999", limit: 2) { id } }')
    assert "out of range" in str(info.value)


# ------------------------------------------------------------------ the planes agree or arrow declines


@pytest.mark.parametrize(
    "pattern",
    ["(a)\\\\1", "\\\\yBooks\\\\y", "\\\\mBooks", "(?=B)Books", "^B.*s$", "o{2}"],
)
def test_regexes_arrow_cannot_run_go_to_postgres_under_auto(
    session: fq.Session, pattern: str
) -> None:
    text = COUNT % f'category: {{regex: "{pattern}"}}'
    expected = session.execute(text, backend="postgres").df["count"][0]
    auto = session.execute(text)
    assert auto.df["count"][0] == expected
    forced: object
    try:
        forced = session.execute(text, backend="arrow").df["count"][0]
    except fq.QueryError as exc:
        forced = "declined" if "does not compute" in str(exc) else str(exc)
    assert forced in (expected, "declined")


def test_a_huge_pattern_is_answered_by_postgres(session: fq.Session) -> None:
    result = session.execute(
        "query ($p: String) { sales_aggregate(where: {category: {contains: $p}}) { count } }",
        variables={"p": "a" * 1_000_000},
    )
    assert result.df["count"][0] == 0
    assert result.backend == "postgres"


def test_a_long_in_list_agrees_on_both_planes(session: fq.Session) -> None:
    text = (
        "query ($ids: [BigInt!]) { sales_aggregate(where: {customer_id: {in: $ids}},"
        " groupBy: {region: true}, orderBy: [{region: ASC}]) { region count } }"
    )
    ids = list(range(0, 20_000, 2))
    frames = [
        session.execute(text, variables={"ids": ids}, backend=b).df for b in ("postgres", "arrow")
    ]
    assert frames[0].height > 0
    assert frames[0].equals(frames[1])


# ------------------------------------------------------------------ introspection


def test_introspection_is_answered_from_the_schema(session: fq.Session) -> None:
    from graphql import build_client_schema, get_introspection_query

    result = session.execute(get_introspection_query(descriptions=True))
    assert result.backend == "schema" and result.kind == "introspection"
    client = build_client_schema(result.to_graphql()["data"])
    assert "users" in client.query_type.fields
    assert "sales_aggregate" in client.query_type.fields


def test_typename_and_type_sit_beside_data_queries(session: fq.Session) -> None:
    rs = session.execute(
        '{ __typename t: __type(name: "User") { name } users(limit: 1) { id __typename } }'
    )
    answer = rs.to_graphql()["data"]
    assert answer["__typename"] == "Query"
    assert answer["t"] == {"name": "User"}
    assert answer["users"][0]["__typename"] == "User"
    assert isinstance(rs["users"].df, pl.DataFrame)


def test_introspection_of_an_unknown_type_is_null(session: fq.Session) -> None:
    result = session.execute('{ __type(name: "Nope") { name } }')
    assert result.to_graphql() == {"data": {"__type": None}}


# ------------------------------------------------------------------ slow and vanishing relations


def test_connect_samples_fewer_rows_of_a_view_slower_than_the_timeout(scratch_dsn: str) -> None:
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        # 10 ms a row: the default sample would take seconds, the timeout is 500 ms.
        conn.execute(
            "CREATE VIEW v_slow AS SELECT g AS id, jsonb_build_object('id', g, 'x',"
            " (SELECT 1 FROM pg_sleep(0.01 + 0 * g))) AS data FROM generate_series(1, 2000) g"
        )
        conn.execute(
            "CREATE VIEW v_stuck AS SELECT g AS id, jsonb_build_object('id', g, 'y',"
            " (SELECT 1 FROM pg_sleep(1 + 0 * g))) AS data FROM generate_series(1, 5) g"
        )
    with fq.connect(scratch_dsn, config={"connections": {"statement_timeout_ms": 500}}) as s:
        slow = s.schema.entity("slows")
        assert slow is not None and slow.field("x") is not None
        stuck = s.schema.entity("stucks")
        assert stuck is not None and stuck.field("y") is None
        messages = [p.message for p in s.schema.problems]
        assert any(
            "v_stuck returned no documents within the statement timeout" in m for m in messages
        )
        assert s.execute("{ slow(id: 3) { id x } }").to_graphql() == {
            "data": {"slow": {"id": 3, "x": 1}}
        }


def test_an_entity_and_a_fact_table_of_one_name_both_serve(scratch_dsn: str) -> None:
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE VIEW v_slow AS SELECT g AS id, jsonb_build_object('id', g) AS data"
            " FROM generate_series(1, 3) g"
        )
        conn.execute(
            "CREATE TABLE tf_slow AS SELECT g::bigint AS id, g::float8 AS amount"
            " FROM generate_series(1, 4) g"
        )
    with fq.connect(scratch_dsn) as s:
        assert s.execute("{ slows { id } }").df.height == 3
        assert s.execute("{ slow_aggregate { count } }").df["count"][0] == 4
        assert "SlowFactWhereInput" in fq.to_sdl(s.schema)


def test_relations_dropped_after_connect_are_backend_errors(scratch_dsn: str) -> None:
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE tv_item (id bigint PRIMARY KEY, data jsonb);"
            " INSERT INTO tv_item SELECT g, jsonb_build_object('id', g, 'n', g)"
            " FROM generate_series(1, 5) g;"
            " CREATE TABLE tf_gone AS SELECT g::bigint AS id, g::float8 AS amount"
            " FROM generate_series(1, 50) g"
        )
    with fq.connect(scratch_dsn) as s:
        assert s.execute("{ gone_aggregate { count } }", backend="arrow").df["count"][0] == 50
        with psycopg.connect(scratch_dsn, autocommit=True) as conn:
            conn.execute("DROP TABLE tf_gone; DROP TABLE tv_item")
        for backend in ("arrow", "auto", "postgres"):
            with pytest.raises(fq.BackendError) as info:
                s.execute("{ gone_aggregate { count } }", backend=backend)
            assert "does not exist any more" in str(info.value)
        for backend in ("wire", "postgres"):
            with pytest.raises(fq.BackendError) as info:
                s.execute("{ items { id n } }", backend=backend)
            assert "tv_item" in str(info.value)


def test_an_arrow_load_past_the_timeout_is_a_backend_error(slow_fact: str) -> None:
    config = {"connections": {"statement_timeout_ms": 500}}
    with fq.connect(slow_fact, config=config) as s:
        with pytest.raises(fq.BackendError) as info:
            s.execute("{ slow_aggregate { count } }", backend="arrow")
        assert "statement timeout (500 ms)" in str(info.value)


def test_relations_whose_names_graphql_cannot_hold_are_skipped_with_a_reason(
    scratch_dsn: str,
) -> None:
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        for name in ("v_order-item", "v_1st", "v_Ünï"):
            conn.execute(
                sql.SQL("CREATE VIEW {} AS SELECT 1 AS id, {}::jsonb AS data").format(
                    sql.Identifier(name), '{"id": 1}'
                )
            )
        conn.execute(
            'CREATE VIEW v_ok AS SELECT 1 AS id, \'{"id": 1, "a-b": 3, "1a": 2}\'::jsonb AS data'
        )
        conn.execute('CREATE VIEW "tf_bad-name" AS SELECT 1::bigint AS id, 1.0::float8 AS x')
    with fq.connect(scratch_dsn) as s:
        assert s.schema.root_fields() == ["oks", "ok"]
        messages = " | ".join(p.message for p in s.schema.problems)
        for name in ("v_order-item", "v_1st", "v_Ünï", "tf_bad-name"):
            assert f"public.{name}" in messages
        assert "'order-item' cannot be a GraphQL name" in messages
        answer = s.execute("{ oks { id a_b _1a } }").to_graphql()
        assert answer == {"data": {"oks": [{"id": 1, "a_b": 3, "_1a": 2}]}}


# ------------------------------------------------------------------ exact sums


def test_numeric_sums_on_arrow_are_postgres_digits_in_any_load_order(tiny: str) -> None:
    text = (
        "{ sales_aggregate(groupBy: {region: true}, orderBy: [{region: ASC}])"
        " { region revenue_sum revenue_min revenue_max revenue_avg } }"
    )
    with fq.connect(tiny) as s:
        expected = s.execute(text, backend="postgres").df
        first = s.execute(text, backend="arrow").df
        # Other columns loaded beside revenue: the sums must not change by a digit.
        s.execute("{ sales_aggregate { cost_sum discount_sum quantity_sum } }", backend="arrow")
        again = s.execute(text, backend="arrow").df
    for frame in (first, again):
        for column in ("region", "revenue_sum", "revenue_min", "revenue_max"):
            assert frame[column].to_list() == expected[column].to_list(), column
        for got, want in zip(frame["revenue_avg"], expected["revenue_avg"], strict=True):
            assert abs(got - want) <= abs(want) * 1e-15
    assert first.equals(again)


# ------------------------------------------------------------------ read-only, injection


def test_plane_connections_are_read_only_with_a_timeout(demo_dsn: str) -> None:
    """Both planes connect with these settings (the arrow plane's ADBC ones too)."""
    from fraiseql_nb.config import load_config
    from fraiseql_nb.pg.pool import connection_kwargs

    settings = connection_kwargs(demo_dsn, load_config({}, environ={}))
    with psycopg.connect(demo_dsn, **settings) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("5min",)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE fq_should_not_exist (x int)")


@pytest.mark.parametrize(
    "value",
    [
        "x'; DROP TABLE tf_sales; --",
        "x\\'; DELETE FROM tf_sales; --",
        "$$; DROP TABLE tf_sales; $$",
        "' OR '1'='1",
    ],
)
def test_injection_shaped_values_are_matched_as_text(session: fq.Session, value: str) -> None:
    text = "query ($v: String) { sales_aggregate(where: {region: {eq: $v}}) { count } }"
    for backend in ("postgres", "arrow"):
        assert session.execute(text, {"v": value}, backend=backend).df["count"][0] == 0
    rows = session.execute(
        "query ($v: String) { users(where: {name: {eq: $v}}) { id } }", {"v": value}
    )
    assert rows.df.height == 0
    assert session.execute("{ sales_aggregate { count } }", backend="postgres").df["count"][0] > 0


# ------------------------------------------------------------------ aliases


# Names the planes use for their own columns, keys and subqueries (before and now), and
# one past PostgreSQL's 63-byte names: as aliases, each must read like any other.
INTERNAL_NAMES = [
    "__fq_id",
    "__fq_kinds",
    "__fq_q",
    "__fq_row",
    "__fq_e0",
    "__row",
    "__i",
    "__value",
    "c0",
    "c1",
    "k0",
    "data",
    "v",
    "d",
    "o",
    "anchor",
    "x" * 70,
]


@pytest.mark.parametrize("backend", ["wire", "postgres"])
def test_row_aliases_never_meet_internal_names(session: fq.Session, backend: str) -> None:
    # Unsorted (the document built in place) and sorted (the rows picked first, the
    # documents built outside): two statement shapes, two sets of internal names.
    shapes = ["(limit: 3)", "(orderBy: {age: ASC}, limit: 3)"]
    plain = [session.execute(f"{{ users{h} {{ id name }} }}").df for h in shapes]
    for alias in INTERNAL_NAMES:
        for head, expected in zip(shapes, plain, strict=True):
            r = session.execute(f"{{ users{head} {{ id {alias}: name }} }}", backend=backend)
            assert isinstance(r, fq.Result)
            assert r.df.columns == ["id", alias], alias
            assert r.df[alias].to_list() == expected["name"].to_list(), alias
        paged = session.execute(f"{{ users(limit: 2) {{ {alias}: name }} }}", backend=backend)
        assert paged.df.columns == [alias]  # the page cursor stays hidden
        following = paged.next_page()  # type: ignore[union-attr]
        assert following is not None and following.df.columns == [alias]
    # Once a RecursionError after ~850 statements (HTTP 500).
    r = session.execute(
        "{ products(where: {in_stock: {eq: false}}, limit: 1) { __fq_kinds: in_stock } }",
        backend=backend,
    )
    assert r.df["__fq_kinds"].to_list() == [False]  # type: ignore[union-attr]


def test_sixty_fields_with_long_aliases_keep_their_values(session: fq.Session) -> None:
    """More fields than one json_build_object takes, aliases past 63 bytes: every value."""
    fields = " ".join(f"{'n' * 64}{i}: name" for i in range(60))
    q = f"{{ users(orderBy: {{age: ASC}}, limit: 3) {{ id {fields} city: address {{ city }} }} }}"
    plain = session.execute("{ users(orderBy: {age: ASC}, limit: 3) { name } }")
    for backend in ("wire", "postgres"):
        r = session.execute(q, backend=backend)
        assert isinstance(r, fq.Result) and r.df.width == 62
        for i in (0, 59):
            assert r.df[f"{'n' * 64}{i}"].to_list() == plain.df["name"].to_list()  # type: ignore[union-attr]
        assert None not in r.df["city"].struct.field("city").to_list()


@pytest.mark.parametrize("backend", ["postgres", "arrow"])
def test_fact_aliases_never_meet_internal_names(session: fq.Session, backend: str) -> None:
    plain = session.execute(
        "{ sales_aggregate(groupBy: {channel: true}) { channel count revenue_sum } }"
    )
    window = session.execute(
        "{ sales_window(partitionBy: [region], orderBy: [{id: ASC}], limit: 5)"
        " { id region revenue row_number lag(field: revenue, default: 0) } }"
    )
    for alias in INTERNAL_NAMES:
        other = "__fq_row" if alias != "__fq_row" else "__fq_q"
        r = session.execute(
            f"{{ sales_aggregate(groupBy: {{channel: true}}) {{ {alias}: channel"
            f" {other}: count revenue_sum }} }}",
            backend=backend,
        )
        assert isinstance(r, fq.Result) and r.backend == backend
        assert r.df.columns == [alias, other, "revenue_sum"], alias
        assert r.df.rows() == plain.df.rows(), alias
        w = session.execute(
            f"{{ sales_window(partitionBy: [region], orderBy: [{{id: ASC}}], limit: 5)"
            f" {{ {alias}: id {other}: region revenue row_number"
            f" region: lag(field: revenue, default: 0) }} }}",
            backend=backend,
        )
        assert isinstance(w, fq.Result)
        assert w.df.columns == [alias, other, "revenue", "row_number", "region"], alias
        assert w.df.rows() == window.df.rows(), alias


def test_an_alias_outside_graphql_s_names_is_a_query_error(session: fq.Session) -> None:
    for q in ("{ users(limit: 1) { ñame: name } }", "{ users(limit: 1) { fq:id: name } }"):
        with pytest.raises(fq.QueryError):
            session.execute(q)


# ------------------------------------------------------------------ values PostgreSQL refuses


@pytest.mark.parametrize(
    ("query", "says"),
    [
        (
            "{ products(where: {embedding: {cosine_distance: {vector: [1e39, 0, 0, 0],"
            " threshold: 1}}}, limit: 1) { id } }",
            r"embedding\.cosine_distance: 1e\+39 is beyond what a vector holds",
        ),
        (
            "{ products(orderBy: {embedding: {cosine_distance: [0, -4e38, 0, 0]}}, limit: 1)"
            " { id } }",
            r"orderBy embedding\.cosine_distance: -4e\+38 is beyond",
        ),
        (
            '{ users(where: {name: {websearch_query: "' + "-" * 33 + '"}}, limit: 1) { id } }',
            r"name\.websearch_query: the search has a run of more than 32 '-'",
        ),
        (
            '{ users(where: {name: {phrase_query: "' + "word " * 15_000 + '"}}, limit: 1) { id } }',
            r"name\.phrase_query: the search has 15,000 words; at most 1,000",
        ),
        (
            '{ users(where: {last_ip: {in_subnet: "10.0.0.0/255.0.0.0"}}, limit: 1) { id } }',
            r"last_ip\.in_subnet: '10\.0\.0\.0/255\.0\.0\.0': write the prefix length",
        ),
        (
            '{ users(where: {last_ip: {in_subnet: "fe80::1%eth0"}}, limit: 1) { id } }',
            r"last_ip\.in_subnet: 'fe80::1%eth0' has a zone index",
        ),
    ],
)
def test_values_postgresql_refuses_are_named_before_any_sql(
    session: fq.Session, query: str, says: str
) -> None:
    for backend in ("auto", "postgres"):
        with pytest.raises(fq.QueryError, match=says) as info:
            session.execute(query, backend=backend)
        assert "LINE" not in str(info.value) and "SELECT" not in str(info.value)


HOSTILE = [
    '{ users(where: {name: {regex: "[a-"}}, limit: 1) { id } }',
    '{ users(where: {name: {like: "ab\\\\"}}, limit: 1) { id } }',
    '{ sales_aggregate(where: {category: {regex: "(a"}}) { count } }',
    '{ sales_aggregate(where: {customer_id: {eq: "9223372036854775808"}}) { count } }',
    '{ sales_window(where: {occurred_at: {gte: "2024-13-45"}}, limit: 1) { id } }',
    '{ users(where: {created_at: {gte: "yesterday-ish"}}, limit: 1) { id } }',
    '{ users(where: {name: {websearch_query: {query: "a", language: "klingon"}}}) { id } }',
    '{ users(where: {tags: {jaccard_distance: {values: ["a"], threshold: 1e400}}}) { id } }',
]


def test_no_error_message_quotes_the_statement(session: fq.Session) -> None:
    """PostgreSQL's ``LINE 1: SELECT …`` excerpt (the statement, with bound values) is
    for Result.sql, not for every reader of an error."""
    seen = 0
    for query in HOSTILE:
        for backend in ("auto", "postgres", "arrow", "wire"):
            try:
                session.execute(query, backend=backend)
            except fq.FraiseQLError as exc:
                seen += 1
                text = f"{exc} {exc!r}"
                assert "LINE" not in text and "SELECT" not in text and "Query was" not in text
    assert seen >= len(HOSTILE) * 2  # each is refused, on the planes that take it
