"""Oracle test: generated where-trees give the same ids in PostgreSQL and in Python.

Hypothesis builds where arguments over the demo ``v_user`` documents (every
operator, nesting, NULLs, missing keys); each is parsed, compiled and run,
and the ids must equal those selected by evaluating the same predicate in
Python, with SQL's three-valued logic, over all documents.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import operator
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraiseql_nb.query import RowQuery, parse_query
from fraiseql_nb.schema import Schema
from fraiseql_nb.sql import Params, compile_row_query

MISSING = object()
QUERY = "query ($w: UserWhereInput) { users(where: $w) { id } }"
EXAMPLES = 300


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def docs(demo_dsn: str) -> list[dict[str, Any]]:
    with psycopg.connect(demo_dsn) as conn:
        rows = conn.execute("SELECT data::text FROM v_user ORDER BY id").fetchall()
    return [json.loads(r[0], parse_float=Decimal) for r in rows]


@pytest.fixture(scope="module")
def code_point_order(demo_dsn: str) -> bool:
    """Whether text sorts by code point here (as Python compares str)."""
    with psycopg.connect(demo_dsn) as conn:
        provider, collate = conn.execute(
            "SELECT datlocprovider, datcollate FROM pg_database WHERE datname = current_database()"
        ).fetchone()
    return provider == "b" or collate in ("C", "POSIX", "C.UTF-8", "C.utf8")


@pytest.fixture(scope="module")
def conn(demo_dsn: str) -> Any:
    with psycopg.connect(demo_dsn, autocommit=True) as c:
        c.execute("SET timezone = 'UTC'")
        # The same documents, stored: v_user builds each one per query, which
        # would make hundreds of examples slow. A temporary table writes nothing
        # others can see.
        c.execute("CREATE TEMP TABLE oracle_user AS SELECT id, data FROM public.v_user")
        c.execute("ANALYZE oracle_user")
        yield c


# --------------------------------------------------------------- Python side


def get(doc: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            return MISSING
        doc = doc[key]
    return doc


def text_of(v: Any) -> str | None:
    """What ``->>`` returns."""
    if v is MISSING or v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, Decimal)):
        return str(v)
    return json.dumps(v)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, Decimal)) and not isinstance(v, bool)


@functools.lru_cache(maxsize=65536)
def timestamp(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def typed(v: Any, scalar: str) -> Any:
    if scalar in ("Int", "Float", "ID"):
        return v if is_number(v) else None
    if scalar == "DateTime":
        text = text_of(v)
        return None if text is None else timestamp(text)
    return text_of(v)


def param(value: Any, scalar: str) -> Any:
    if scalar in ("Int", "Float", "ID"):
        return Decimal(repr(value)) if isinstance(value, float) else int(value)
    if scalar == "DateTime":
        return timestamp(value)
    return value


def scalar_eq(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if is_number(a) or is_number(b):
        return is_number(a) and is_number(b) and Decimal(a) == Decimal(b)
    return type(a) is type(b) and a == b


def contains(a: Any, b: Any, top: bool = True) -> bool:
    """jsonb's ``a @> b``."""
    if isinstance(b, dict):
        return isinstance(a, dict) and all(
            k in a and contains(a[k], v, False) for k, v in b.items()
        )
    if isinstance(b, list):
        return isinstance(a, list) and all(any(contains(x, y, False) for x in a) for y in b)
    if isinstance(a, list) and top:
        return any(scalar_eq(x, b) for x in a if not isinstance(x, (list, dict)))
    return not isinstance(a, (list, dict)) and scalar_eq(a, b)


def like_regex(pattern: str) -> str:
    out = []
    for ch in pattern:
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    return "".join(out)


COMPARE = {
    "eq": operator.eq,
    "neq": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
SCALARS = {
    "id": "ID",
    "name": "String",
    "email": "String",
    "status": "String",
    "age": "Int",
    "score": "Float",
    "created_at": "DateTime",
    "city": "String",
    "country": "String",
    "zip": "String",
}


Predicate = Callable[[int], "bool | None"]


class Columns:
    """Every document's value at a path (raw, as text, typed), computed once per path."""

    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = docs
        self._cache: dict[tuple[Any, ...], list[Any]] = {}

    def raw(self, path: tuple[str, ...]) -> list[Any]:
        key = ("raw", path)
        if key not in self._cache:
            self._cache[key] = [get(d, path) for d in self.docs]
        return self._cache[key]

    def typed(self, path: tuple[str, ...], scalar: str) -> list[Any]:
        key = ("typed", path, scalar)
        if key not in self._cache:
            self._cache[key] = [typed(v, scalar) for v in self.raw(path)]
        return self._cache[key]

    def null(self, path: tuple[str, ...]) -> list[bool]:
        key = ("null", path)
        if key not in self._cache:
            self._cache[key] = [text_of(v) is None for v in self.raw(path)]
        return self._cache[key]


def compile_op(cols: Columns, path: tuple[str, ...], scalar: str, op: str, value: Any) -> Predicate:
    """A predicate for one ``field op value``, with SQL's NULL semantics."""
    if op == "isnull":
        nulls = cols.null(path)
        return lambda i: nulls[i] == value
    raw = cols.raw(path)
    if op == "strictly_contains":
        return lambda i: None if raw[i] is MISSING else contains(raw[i], value)
    if scalar == "List":

        def on_list(i: int) -> bool | None:
            arr = raw[i] if isinstance(raw[i], list) else None
            if op == "array_overlaps":
                return arr is not None and any(contains(value, [e]) for e in arr)
            if arr is None:
                return None
            if op == "array_contains":
                return contains(arr, value)
            if op == "array_contained_by":
                return all(contains(value, [e]) for e in arr)
            lengths = {
                "len_eq": operator.eq,
                "len_gt": operator.gt,
                "len_gte": operator.ge,
                "len_lt": operator.lt,
                "len_lte": operator.le,
            }
            return lengths[op](len(arr), value)

        return on_list
    xs = cols.typed(path, scalar)
    if op in ("in", "nin"):
        wanted = [param(v, scalar) for v in value]
        if not wanted:
            return lambda i: op == "nin"
        return lambda i: None if xs[i] is None else (xs[i] in wanted) == (op == "in")
    if op in COMPARE:
        compare, p = COMPARE[op], param(value, scalar)
        return lambda i: None if xs[i] is None else compare(xs[i], p)
    test = _text_test(op, value)
    return lambda i: None if xs[i] is None else test(xs[i])


def _text_test(op: str, value: str) -> Callable[[str], bool]:
    low = value.lower()
    if op in ("like", "ilike", "regex", "iregex"):
        pattern = like_regex(value) if op in ("like", "ilike") else value
        flags = (re.S if op in ("like", "ilike") else 0) | (re.I if op.startswith("i") else 0)
        rx = re.compile(pattern, flags)
        if op in ("like", "ilike"):
            return lambda x: rx.fullmatch(x) is not None
        return lambda x: rx.search(x) is not None
    return {
        "contains": lambda x: value in x,
        "icontains": lambda x: low in x.lower(),
        "startswith": lambda x: x.startswith(value),
        "istartswith": lambda x: x.lower().startswith(low),
        "endswith": lambda x: x.endswith(value),
        "iendswith": lambda x: x.lower().endswith(low),
    }[op]


def compile_where(cols: Columns, where: dict[str, Any], prefix: tuple[str, ...] = ()) -> Predicate:
    """The predicate a where argument stands for (an implicit AND of its entries)."""
    parts: list[Predicate] = []
    for name, arg in where.items():
        if name == "_and":
            subs = [compile_where(cols, w, prefix) for w in arg]
            parts.append(lambda i, subs=subs: all3([p(i) for p in subs]))
        elif name == "_or":
            subs = [compile_where(cols, w, prefix) for w in arg]
            parts.append(lambda i, subs=subs: any3([p(i) for p in subs]))
        elif name == "_not":
            sub = compile_where(cols, arg, prefix)
            parts.append(lambda i, sub=sub: None if (r := sub(i)) is None else not r)
        elif name == "strictly_contains":
            parts.append(compile_op(cols, prefix, "JSON", "strictly_contains", arg))
        elif name == "address":
            parts.append(compile_where(cols, arg, ("address",)))
        else:
            scalar = "List" if name == "tags" else SCALARS[name]
            parts += [compile_op(cols, (*prefix, name), scalar, op, v) for op, v in arg.items()]
    if len(parts) == 1:
        return parts[0]
    return lambda i: all3([p(i) for p in parts])


def all3(values: list[bool | None]) -> bool | None:
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


def any3(values: list[bool | None]) -> bool | None:
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False


# ---------------------------------------------------------------- strategies

NAMES = ["Alice Smith", "Zoë Müller", "José O'Brien", "Łukasz 王", "Olu", "Chen Kim", "x"]
ASCII_TEXT = st.text(alphabet="abcdeilmnorstuzAEMOS ", min_size=0, max_size=4)
ANY_TEXT = st.one_of(
    st.sampled_from(
        [*NAMES, "O'Brien", "ü", "Müller", "%", "_", "50%", "user1", "@example", ".fr"]
    ),
    st.text(alphabet="aeiouÜüéЖ'%_ 王1@.", max_size=5),
)


def string_leaf(pool: list[str], order: bool) -> st.SearchStrategy[dict[str, Any]]:
    value = st.one_of(st.sampled_from(pool), ANY_TEXT)
    ops = [
        st.fixed_dictionaries({"eq": value}),
        st.fixed_dictionaries({"neq": value}),
        st.fixed_dictionaries({"in": st.lists(value, max_size=3)}),
        st.fixed_dictionaries({"nin": st.lists(value, max_size=3)}),
        st.fixed_dictionaries({"isnull": st.booleans()}),
        st.builds(
            lambda op, v: {op: v}, st.sampled_from(["contains", "startswith", "endswith"]), ANY_TEXT
        ),
        st.builds(
            lambda op, v: {op: v},
            st.sampled_from(["icontains", "istartswith", "iendswith"]),
            ASCII_TEXT,
        ),
        st.builds(
            lambda op, parts: {op: "".join(parts)},
            st.sampled_from(["like", "ilike"]),
            st.lists(st.one_of(st.sampled_from(["%", "_"]), ASCII_TEXT), max_size=4),
        ),
        st.builds(
            lambda op, parts: {op: "".join(parts)},
            st.sampled_from(["regex", "iregex"]),
            st.lists(
                st.one_of(st.sampled_from(["^", "$", ".", ".*", "[a-m]", "[0-9]"]), ASCII_TEXT),
                max_size=4,
            ),
        ),
    ]
    if order:
        ops.append(
            st.builds(lambda op, v: {op: v}, st.sampled_from(["gt", "gte", "lt", "lte"]), value)
        )
    return st.one_of(ops)


def ordered_leaf(values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(lambda op, v: {op: v}, st.sampled_from(list(COMPARE)), values),
        st.builds(
            lambda op, v: {op: v}, st.sampled_from(["in", "nin"]), st.lists(values, max_size=3)
        ),
        st.fixed_dictionaries({"isnull": st.booleans()}),
        st.builds(lambda a, b: {"gte": min(a, b), "lt": max(a, b)}, values, values),
    )


def where_strategy(docs: list[dict[str, Any]], order: bool) -> st.SearchStrategy[dict[str, Any]]:
    def pool(*path: str) -> list[Any]:
        values = {
            get(d, path) for d in docs[:2000] if isinstance(get(d, path), (str, int, Decimal))
        }
        return sorted(values, key=str)[:200]

    scores = st.one_of(
        st.sampled_from([float(s) for s in pool("score")]), st.floats(-1, 101, allow_nan=False)
    )
    times = st.one_of(
        st.sampled_from(pool("created_at")),
        st.builds(
            lambda d, fmt: d.strftime(fmt),
            st.datetimes(min_value=dt.datetime(2019, 6, 1), max_value=dt.datetime(2025, 6, 1)),
            st.sampled_from(
                ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S+02:00"]
            ),
        ),
    )
    tag = st.sampled_from(
        ["vip", "beta", "newsletter", "churn-risk", "early-adopter", "b2b", "none"]
    )
    address = st.one_of(
        st.fixed_dictionaries({"city": string_leaf(pool("address", "city"), order)}),
        st.fixed_dictionaries({"country": string_leaf(pool("address", "country"), order)}),
        st.fixed_dictionaries({"zip": string_leaf(pool("address", "zip"), order)}),
        st.fixed_dictionaries(
            {"_not": st.fixed_dictionaries({"city": string_leaf(pool("address", "city"), order)})}
        ),
        st.fixed_dictionaries(
            {"strictly_contains": st.sampled_from([{"city": "Paris"}, {"country": "DE"}, {}])}
        ),
    )
    leaves = st.one_of(
        st.fixed_dictionaries({"id": ordered_leaf(st.integers(-5, 10_050))}),
        st.fixed_dictionaries({"age": ordered_leaf(st.integers(10, 95))}),
        st.fixed_dictionaries({"score": ordered_leaf(scores)}),
        st.fixed_dictionaries({"created_at": ordered_leaf(times)}),
        st.fixed_dictionaries({"name": string_leaf(pool("name"), order)}),
        st.fixed_dictionaries({"email": string_leaf(pool("email"), order)}),
        st.fixed_dictionaries(
            {"status": string_leaf(["active", "inactive", "pending", "banned", "gone"], order)}
        ),
        st.fixed_dictionaries({"address": address}),
        st.fixed_dictionaries(
            {
                "tags": st.one_of(
                    st.builds(
                        lambda op, v: {op: v},
                        st.sampled_from(["array_contains", "array_contained_by", "array_overlaps"]),
                        st.lists(tag, max_size=3),
                    ),
                    st.builds(
                        lambda op, v: {op: v},
                        st.sampled_from(["len_eq", "len_gt", "len_gte", "len_lt", "len_lte"]),
                        st.integers(0, 4),
                    ),
                    st.fixed_dictionaries({"isnull": st.booleans()}),
                    st.fixed_dictionaries({"strictly_contains": st.lists(tag, max_size=2)}),
                )
            }
        ),
        st.fixed_dictionaries(
            {
                "strictly_contains": st.sampled_from(
                    [{"status": "active"}, {"tags": ["vip"]}, {"address": {"city": "Lyon"}}]
                )
            }
        ),
    )

    def extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        return st.one_of(
            st.fixed_dictionaries({"_and": st.lists(children, max_size=3)}),
            st.fixed_dictionaries({"_or": st.lists(children, max_size=3)}),
            st.fixed_dictionaries({"_not": children}),
            st.builds(lambda a, b: {**b, **a}, children, children),
        )

    return st.recursive(leaves, extend, max_leaves=6)


# --------------------------------------------------------------------- test


def test_sql_and_python_select_the_same_documents(
    conn: Any, docs: list[dict[str, Any]], demo_schema: Schema, code_point_order: bool
) -> None:
    entity = demo_schema.entity("users")
    assert entity is not None
    entity = dataclasses.replace(entity, schema="pg_temp", relation="oracle_user")
    matched_some = 0
    cols = Columns(docs)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(where=where_strategy(docs, code_point_order))
    def check(where: dict[str, Any]) -> None:
        nonlocal matched_some
        q = parse_query(QUERY, demo_schema, {"w": where}).queries[0]
        assert isinstance(q, RowQuery)
        params = Params()
        got = {
            r[0]["id"] for r in conn.execute(compile_row_query(q, entity, params), params.values)
        }
        predicate = compile_where(cols, where)
        expected = {docs[i]["id"] for i in range(len(docs)) if predicate(i) is True}
        assert got == expected, where
        matched_some += 0 < len(got) < len(docs)

    check()
    # The corpus must not be trivial: many trees select some but not all documents.
    assert matched_some > EXAMPLES // 4
