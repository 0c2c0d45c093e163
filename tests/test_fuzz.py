"""Fuzzing the public API: every input gets a result or a FraiseQLError, never another
exception or a hang, on every plane; where arrow and postgres both answer, they agree.

Two generators, both driven by Hypothesis:

- grammar-based: queries built from the generated GraphQL schema itself (every root
  field, argument and input type), with hostile values (quotes, backslashes, regex and
  LIKE metacharacters, NUL, huge and tiny numbers, wrong types), written inline or
  passed as variables;
- mutation-based: the hand-written agreement corpus, cut, spliced and salted with
  hostile tokens.

``FRAISEQL_FUZZ_SCALE`` multiplies the number of examples (1 in the suite);
``FRAISEQL_FUZZ_REPORT`` names a JSON file to write the outcome counts to.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    get_named_type,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fraiseql_nb as fq
from fraiseql_nb.local import demo
from fraiseql_nb.query.groups import POST_FUNCTIONS
from fraiseql_nb.schema import graphql_schema
from tests.conftest import TINY
from tests.planes.corpus import AGGREGATES, WINDOWS, assert_same

SCALE = float(os.environ.get("FRAISEQL_FUZZ_SCALE", "1"))
REPORT = os.environ.get("FRAISEQL_FUZZ_REPORT")
OUTCOMES: Counter[str] = Counter()
AGREEMENTS: Counter[str] = Counter()
GRAMMAR: Counter[str] = Counter()
MESSAGES: Counter[str] = Counter()
FUZZ = settings(
    deadline=None,
    database=None,
    derandomize=SCALE == 1,  # the suite runs the same inputs every time; a scaled run explores
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def fuzzed(server_dsn: str) -> Iterator[fq.Session]:
    """A session on a tiny demo database of the fuzz tests' own, with a short timeout."""
    dsn = demo.ensure_database(server_dsn, "fq_fuzz")
    demo.load(dsn, TINY, if_missing=True)
    config = {"connections": {"statement_timeout_ms": 5000}}
    with fq.connect(dsn, config=config) as session:
        yield session
    if REPORT:
        Path(REPORT).write_text(
            json.dumps(
                {
                    "outcomes": OUTCOMES,
                    "agreements": AGREEMENTS,
                    "generated roots": GRAMMAR,
                    "most frequent errors": MESSAGES.most_common(20),
                },
                indent=2,
            ),
            encoding="utf-8",
        )
    print(f"\nfuzz outcomes: {dict(OUTCOMES)}; agreement checks: {dict(AGREEMENTS)}")


def attempt(session: fq.Session, text: str, variables: Any, backend: str) -> Any:
    """Run one input; the result, or None after a FraiseQLError. Anything else fails."""
    started = time.perf_counter()
    try:
        result = session.execute(text, variables, backend=backend)
    except fq.FraiseQLError as exc:
        OUTCOMES[type(exc).__name__] += 1
        MESSAGES[str(exc)[:70]] += 1
        return None
    except Exception as exc:  # noqa: BLE001 - the property under test
        pytest.fail(
            f"{type(exc).__name__} escaped on {backend}: {exc}\nquery: {text[:2000]}\n"
            f"variables: {str(variables)[:500]}"
        )
    finally:
        elapsed = time.perf_counter() - started
        assert elapsed < 30, f"{elapsed:.0f} s on {backend}: {text[:500]}"
    OUTCOMES["result"] += 1
    return result


# ------------------------------------------------------------------ hostile values

HOSTILE_TEXT = st.one_of(
    st.text(max_size=8),
    st.sampled_from(
        [
            "",
            "\\",
            "\\\\",
            "%",
            "_",
            "%\\",
            "'",
            '"',
            "'; DROP TABLE tf_sales; --",
            "(a)\\1",
            "[a-",
            "a{1000}",
            "\\yBooks\\y",
            "(?=B)Books",
            "(?i)books",
            "*",
            "^$",
            "\x00",
            "é",
            "😀",
            "a" * 1500,
            "books",
            "EU",
            "web",
            "2024-01-01",
            "2024-13-45T25:00:00",
            "NaN",
            "Infinity",
            "00000000-0000-0000-0000-000000000000",
            "9223372036854775808",
            "-1",
        ]
    ),
)
NUMBERS = st.one_of(
    st.integers(-5, 100),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
)
ANY_VALUE = st.one_of(st.none(), st.booleans(), NUMBERS, HOSTILE_TEXT)


def _mostly(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any]) -> Any:
    """``common`` nine times in ten."""
    return st.integers(0, 9).flatmap(lambda i: rare if i == 0 else common)


def scalar_values(name: str) -> st.SearchStrategy[Any]:
    """Mostly values of the scalar, sometimes anything (a wrong type must be refused)."""
    typed: dict[str, st.SearchStrategy[Any]] = {
        "Int": _mostly(st.integers(0, 50), st.integers(-(2**33), 2**33)),
        "BigInt": _mostly(
            st.integers(0, 300),
            st.one_of(st.integers(-(2**65), 2**65), st.from_regex(r"-?\d{1,21}", fullmatch=True)),
        ),
        "Float": NUMBERS,
        "Boolean": st.booleans(),
        "ID": _mostly(st.integers(1, 300), st.one_of(st.integers(-(2**65), 2**65), HOSTILE_TEXT)),
        "String": HOSTILE_TEXT,
        "DateTime": st.one_of(
            st.sampled_from(["2024-01-01", "2024-06-01T12:00:00+02:00", "2023-03-01T00:00:00Z"]),
            HOSTILE_TEXT,
        ),
        "Date": st.one_of(st.sampled_from(["2024-01-01", "2023-12-31"]), HOSTILE_TEXT),
        "JSON": st.recursive(ANY_VALUE, lambda inner: st.lists(inner, max_size=3), max_leaves=5),
        # A time column's groupBy: true, or a bucket (FraiseQL's form).
        "TimeGroup": st.one_of(st.booleans(), st.sampled_from(["day", "month", "hour", "year"])),
        "OutputName": st.sampled_from(["count", "revenue_sum", "amount_sum", "nope"]),
    }
    own = typed.get(name, ANY_VALUE)
    return st.integers(0, 9).flatmap(lambda i: ANY_VALUE if i == 0 else own)


def input_values(draw: st.DrawFn, gtype: Any, depth: int) -> Any:
    """A value for a GraphQL input type, hostile at the leaves."""
    if isinstance(gtype, GraphQLNonNull):
        return input_values(draw, gtype.of_type, depth)
    if isinstance(gtype, GraphQLList):
        size = draw(st.integers(0, 3))
        return [input_values(draw, gtype.of_type, depth + 1) for _ in range(size)]
    if isinstance(gtype, GraphQLEnumType):
        wrong = draw(st.integers(0, 19)) == 0
        return Enum("NO_SUCH_VALUE" if wrong else draw(st.sampled_from(list(gtype.values))))
    if isinstance(gtype, GraphQLInputObjectType):
        # Other spellings (deprecated fields: ne, _eq, count_gte…) one draw in ten, so the
        # hundreds of them do not crowd out the canonical forms.
        spelled = sorted(n for n, f in gtype.fields.items() if f.deprecation_reason)
        names = sorted(n for n, f in gtype.fields.items() if not f.deprecation_reason)
        if spelled and draw(st.integers(0, 9)) == 0:
            names = spelled
        if depth > 3:
            names = [n for n in names if not n.startswith("_")]
        chosen = draw(st.lists(st.sampled_from(names), max_size=2, unique=True)) if names else []
        return {n: input_values(draw, gtype.fields[n].type, depth + 1) for n in chosen}
    assert isinstance(gtype, GraphQLScalarType)
    return draw(scalar_values(gtype.name))


class Enum(str):
    """An enum value: written bare in GraphQL text, as its name in variables."""


def literal(value: Any) -> str:
    """``value`` as GraphQL literal text."""
    if value is None:
        return "null"
    if isinstance(value, Enum):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "null"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    return "{" + ", ".join(f"{k}: {literal(v)}" for k, v in value.items()) + "}"


#: Aliases: plain ones, and names the planes use for their own columns, keys and
#: subqueries (now or before), and one past PostgreSQL's 63-byte names.
ALIASES = ["f", "f", "__fq_id", "__fq_kinds", "__fq_q", "__fq_row", "__row", "c0", "k", "data"]
ALIASES.append("x" * 70)


def selection(
    draw: st.DrawFn, otype: GraphQLObjectType, depth: int = 0, allowed: set[str] | None = None
) -> str:
    """Some fields of an output type (with arguments when they take some)."""
    names = sorted(n for n in otype.fields if allowed is None or n in allowed) or ["__typename"]
    # What an aggregate computes after its groups (calc, windows, share) one draw in ten:
    # most of them need an orderBy or an output to name, and would crowd out the rest.
    if otype.name.endswith("Aggregate"):
        post = [n for n in names if n in POST_FUNCTIONS]
        plain = [n for n in names if n not in POST_FUNCTIONS]
        if plain and not (post and draw(st.integers(0, 9)) == 0):
            names = plain
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=5, unique=True))
    parts = []
    for i, name in enumerate(chosen):
        if name == "__typename":
            parts.append(name)
            continue
        field = otype.fields[name]
        if draw(st.booleans()):  # an alias: plain, or one of the planes' own names
            alias = draw(st.sampled_from(ALIASES))
            text = f"{alias if i == 0 else alias + str(i)}: {name}"
        else:
            text = name
        args = {
            a: input_values(draw, field.args[a].type, 1)
            for a in field.args
            if isinstance(field.args[a].type, GraphQLNonNull)
            # an aggregate's filter: one draw in four (a FILTER on every aggregate otherwise)
            or (draw(st.integers(0, 3)) == 0 if a == "filter" else draw(st.booleans()))
        }
        if args:
            text += "(" + ", ".join(f"{a}: {literal(v)}" for a, v in args.items()) + ")"
        inner = get_named_type(field.type)
        if isinstance(inner, GraphQLObjectType):
            if depth > 2:
                continue
            text += " { " + selection(draw, inner, depth + 1) + " }"
        parts.append(text)
    return " ".join(parts) or "__typename"


@st.composite
def grammar_queries(draw: st.DrawFn, session: fq.Session) -> tuple[str, dict[str, Any], str]:
    """(query text, variables, root field) from the session's GraphQL schema."""
    gql = graphql_schema(session.schema)
    roots = sorted(gql.query_type.fields)
    facts = [r for r in roots if r.endswith("_aggregate")]
    # Aggregates half the time: they are what the two fact planes must agree on.
    root_name = draw(st.sampled_from(facts if facts and draw(st.booleans()) else roots))
    root = gql.query_type.fields[root_name]
    args: list[str] = []
    declared: list[str] = []
    variables: dict[str, Any] = {}
    grouped: set[str] = set()
    for name, arg in sorted(root.args.items()):
        if not isinstance(arg.type, GraphQLNonNull) and not draw(st.booleans()):
            continue
        if name in ("limit", "offset") and root_name in facts and draw(st.booleans()):
            continue
        if name == "limitPerGroup" and draw(st.integers(0, 9)) > 0:
            continue  # valid only with grouped keys and an order: one draw in ten
        if name == "collation":
            value = draw(_mostly(st.sampled_from(["C", "und-x-icu", "default"]), HOSTILE_TEXT))
        else:
            value = input_values(draw, arg.type, 0)
        if name == "groupBy" and isinstance(value, dict):
            grouped = {k for k, v in value.items() if v is True}
        if draw(st.booleans()):  # as a variable of the argument's own type
            variables[name] = _jsonable(value)
            declared.append(f"${name}: {arg.type}")
            args.append(f"{name}: ${name}")
        else:
            args.append(f"{name}: {literal(value)}")
    head = f"query ({', '.join(declared)}) " if declared else ""
    call = f"{root_name}({', '.join(args)})" if args else root_name
    output = get_named_type(root.type)
    allowed = None
    if root_name.endswith("_aggregate") and draw(_mostly(st.just(True), st.just(False))):
        # Mostly valid: aggregates and the keys grouped by (others are refused, rightly).
        keys = set(gql.get_type(f"{output.name[: -len('Aggregate')]}GroupByInput").fields)
        allowed = {n for n in output.fields if n not in keys} | grouped
    body = selection(draw, output, allowed=allowed)  # type: ignore[arg-type]
    return f"{head}{{ {call} {{ {body} }} }}", variables, root_name


def _jsonable(value: Any) -> Any:
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, Enum):
        return str(value)
    return value


# ------------------------------------------------------------------ properties


#: Agreement checks the generated queries must reach: a generator that drifted into
#: producing only refused or incomparable queries would otherwise pass with none.
MIN_AGREEMENTS = int(25 * SCALE)  # 25–44 in derandomized runs of 400, 800 drawn now


def test_generated_queries_get_a_result_or_a_fraiseql_error_on_every_plane(
    fuzzed: fq.Session,
) -> None:
    before = AGREEMENTS["aggregates agreed"]
    explore_generated_queries(fuzzed)
    agreed = AGREEMENTS["aggregates agreed"] - before
    assert agreed >= MIN_AGREEMENTS, f"only {agreed} arrow/postgres comparisons: {dict(OUTCOMES)}"


@settings(FUZZ, max_examples=int(800 * SCALE))  # 800: the draws spread over more fields now
@given(data=st.data())
def explore_generated_queries(fuzzed: fq.Session, data: st.DataObject) -> None:
    text, variables, root = data.draw(grammar_queries(fuzzed))
    GRAMMAR[root.rsplit("_", 1)[-1] if "_" in root else "rows"] += 1
    fact = root.endswith(("_aggregate", "_window"))
    answers = {}
    for backend in ("auto", "arrow", "postgres") if fact else ("auto", "wire", "postgres"):
        answers[backend] = attempt(fuzzed, text, variables, backend)
    arrow, postgres = answers.get("arrow"), answers.get("postgres")
    comparable = root.endswith("_aggregate") and "limit" not in text and "offset" not in text
    if arrow is not None and postgres is not None and comparable:
        assert_same(_sorted(arrow.df), _sorted(postgres.df), f"arrow vs postgres: {text}")
        AGREEMENTS["aggregates agreed"] += 1


SALT = [
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ":",
    "$x",
    "...",
    '"',
    "\\",
    "@skip(if: true)",
    "@include(if: $x)",
    "__typename",
    "__schema { types { name } }",
    '__type(name: "User") { name }',
    "99999999999999999999999",
    "-1",
    "null",
    "1e400",
    '"\\u0000"',
    "fragment F on Query { __typename }",
    "...F",
    "# comment\n",
    "query",
    "mutation",
    "subscription",
    "limit: -5",
    "offset: 99999999999",
    "where: {}",
    "orderBy: []",
]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from([*AGGREGATES, *WINDOWS]))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["insert", "delete", "splice", "salt", "repeat"]))
        if kind == "insert":
            text = text[:at] + draw(st.text(max_size=3)) + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 20)) :]
        elif kind == "splice":
            other = draw(st.sampled_from(AGGREGATES))
            cut = draw(st.integers(0, len(other)))
            text = text[:at] + other[cut:]
        elif kind == "salt":
            text = text[:at] + " " + draw(st.sampled_from(SALT)) + " " + text[at:]
        else:
            end = min(len(text), at + draw(st.integers(1, 30)))
            text = text[:end] + text[at:end] * draw(st.integers(1, 50)) + text[end:]
    return text


@settings(FUZZ, max_examples=int(2500 * SCALE))
@given(
    text=mutated(),
    variables=st.one_of(
        st.none(), st.dictionaries(st.sampled_from(["x", "n"]), ANY_VALUE, max_size=2)
    ),
)
def test_mutated_documents_get_a_result_or_a_fraiseql_error(
    fuzzed: fq.Session, text: str, variables: dict[str, Any] | None
) -> None:
    attempt(fuzzed, text, variables, "auto")


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows in one order for both planes: floats compared to 9 digits (the planes may
    differ in the last ones), so that such a difference cannot reorder the rows."""
    if not frame.columns:
        return frame
    keys = [
        pl.col(c).round_sig_figs(9) if frame.schema[c] == pl.Float64 else pl.col(c)
        for c in frame.columns
    ]
    return frame.sort(keys, nulls_last=True)
