"""Network-address and full-text operators, against PostgreSQL's own SQL on the real
database: address strings in documents (IPv4, IPv6, networks, text that is no address,
NULL, missing) and inet / tsvector columns of a fact table; languages other than english;
bad input refused with the field and the value named."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

import fraiseql_nb as fq
from tests.conftest import own_database

HOSTS = [
    ("10.1.2.3", "The quick brown fox jumps over the lazy dog"),
    ("192.168.1.1", "Les chats dorment sur le canapé"),
    ("172.16.5.4", "Foxes are QUICK animals"),
    ("172.32.0.1", "a dog and a cat"),
    ("8.8.8.8", "public resolver"),
    ("127.0.0.1", "loopback host"),
    ("::1", "the IPv6 loopback"),
    ("fd12:3456::1", "unique local address"),
    ("fe80::1", "link local, not private"),
    ("2001:db8::1", "documentation range"),
    ("10.0.0.0/8", "a whole network"),
    ("::ffff:10.0.0.1", "an IPv4-mapped address"),
    ("not an ip", "nothing to see"),
    ("", "empty"),
    (None, "null address"),
]
SETUP = """
CREATE TABLE tb_host (id int PRIMARY KEY, data jsonb NOT NULL);
CREATE VIEW v_host AS SELECT id, data FROM tb_host;
CREATE TABLE tf_conn (
    id int PRIMARY KEY, addr inet, host text, words tsvector, bytes numeric(12,2)
);
"""


@pytest.fixture(scope="module")
def hosts(server_dsn: str) -> Iterator[str]:
    with own_database(server_dsn, "fq_operator_families") as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(SETUP)
            for i, (ip, note) in enumerate(HOSTS, start=1):
                doc: dict[str, Any] = {"id": i, "note": note, "port": 8000 + i}
                if ip is not None:
                    doc["ip"] = ip
                elif i % 2:
                    doc["ip"] = None
                conn.execute(
                    "INSERT INTO tb_host VALUES (%s, %s)", (i, psycopg.types.json.Jsonb(doc))
                )
                valid = conn.execute(
                    "SELECT pg_input_is_valid(%s, 'inet')", (ip or "x",)
                ).fetchone()[0]
                conn.execute(
                    "INSERT INTO tf_conn VALUES (%s, %s::inet, %s, to_tsvector('english', %s), %s)",
                    (i, ip if valid else None, ip, note, i * 1.5),
                )
            conn.execute("ANALYZE")
        yield dsn


@pytest.fixture(scope="module")
def s(hosts: str) -> Iterator[fq.Session]:
    with fq.connect(hosts) as session:
        yield session


def ids(s: fq.Session, where: str, backend: str = "wire") -> list[int]:
    r = s.execute(f"{{ hosts(where: {where}, orderBy: {{id: ASC}}) {{ id }} }}", backend=backend)
    assert isinstance(r, fq.Result)
    return [int(x) for x in r.df["id"].to_list()]


def oracle(dsn: str, condition: str, params: tuple[Any, ...] = ()) -> list[int]:
    """PostgreSQL's own SQL over the addresses that are addresses."""
    ip = "(CASE WHEN pg_input_is_valid(data->>'ip', 'inet') THEN (data->>'ip')::inet END)"
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            f"SELECT id FROM tb_host WHERE {condition.format(ip=ip)} ORDER BY id", params
        ).fetchall()
    return [r[0] for r in rows]


PRIVATE = "({ip} <<= ANY('{{10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7}}'::inet[]))"
LOOPBACK = "({ip} <<= ANY('{{127.0.0.0/8,::1/128}}'::inet[]))"


@pytest.mark.parametrize(
    ("where", "condition"),
    [
        ("{ip: {is_ipv4: true}}", "family({ip}) = 4"),
        ("{ip: {is_ipv4: false}}", "NOT family({ip}) = 4"),
        ("{ip: {is_ipv6: true}}", "family({ip}) = 6"),
        ("{ip: {is_private: true}}", PRIVATE),
        ("{ip: {is_private: false}}", f"NOT {PRIVATE}"),
        ("{ip: {is_loopback: true}}", LOOPBACK),
        ("{ip: {is_loopback: false}}", f"NOT {LOOPBACK}"),
        ('{ip: {in_subnet: "10.0.0.0/8"}}', "{ip} <<= '10.0.0.0/8'"),
        ('{ip: {in_subnet: "2001:db8::/32"}}', "{ip} <<= '2001:db8::/32'"),
        ('{ip: {contains_subnet: "10.1.0.0/16"}}', "{ip} >>= '10.1.0.0/16'"),
        ('{ip: {contains_ip: "10.9.9.9"}}', "{ip} >>= '10.9.9.9'"),
        ('{ip: {ip_range_overlap: "10.1.0.0/16"}}', "{ip} && '10.1.0.0/16'"),
        ("{_not: {ip: {is_ipv6: true}}}", "NOT family({ip}) = 6"),
    ],
)
def test_address_operators_agree_with_postgresql(
    s: fq.Session, hosts: str, where: str, condition: str
) -> None:
    expected = oracle(hosts, condition)
    assert ids(s, where) == expected
    assert ids(s, where, backend="postgres") == expected


def test_address_facts_hold() -> None:
    """What the ranges mean, spelled out once (the oracle above shares the SQL)."""
    # The private ranges: 10/8, 172.16/12 (not 172.32), 192.168/16, fc00::/7 (not fe80::).
    assert [ip for ip, _ in HOSTS[:4]] == ["10.1.2.3", "192.168.1.1", "172.16.5.4", "172.32.0.1"]


def test_address_operators_pin_the_hosts(s: fq.Session) -> None:
    assert ids(s, "{ip: {is_private: true}}") == [1, 2, 3, 8, 11]
    assert ids(s, "{ip: {is_loopback: true}}") == [6, 7]
    assert ids(s, "{ip: {is_ipv6: true}}") == [7, 8, 9, 10, 12]
    # Text that is no address, an empty string, null and a missing key match neither way.
    everything = set(ids(s, "{ip: {is_ipv4: true}}")) | set(ids(s, "{ip: {is_ipv4: false}}"))
    assert everything == set(range(1, 13))


@pytest.mark.parametrize(
    ("where", "condition", "params"),
    [
        ('{note: {matches: "quick fox"}}',
         "to_tsvector('english', data->>'note') @@ plainto_tsquery('english', %s)",
         ("quick fox",)),
        ('{note: {plain_query: "FOXES"}}',
         "to_tsvector('english', data->>'note') @@ plainto_tsquery('english', %s)", ("FOXES",)),
        ('{note: {phrase_query: "lazy dog"}}',
         "to_tsvector('english', data->>'note') @@ phraseto_tsquery('english', %s)",
         ("lazy dog",)),
        ('{note: {websearch_query: "dog -cat"}}',
         "to_tsvector('english', data->>'note') @@ websearch_to_tsquery('english', %s)",
         ("dog -cat",)),
        ('{note: {matches: {query: "chat", language: "french"}}}',
         "to_tsvector('french', data->>'note') @@ plainto_tsquery('french', %s)", ("chat",)),
        ('{note: {matches: {query: "le", language: "english"}}}',
         "to_tsvector('english', data->>'note') @@ plainto_tsquery('english', %s)", ("le",)),
    ],
)  # fmt: skip
def test_text_search_agrees_with_postgresql(
    s: fq.Session, hosts: str, where: str, condition: str, params: tuple[Any, ...]
) -> None:
    expected = oracle(hosts, condition, params)
    assert ids(s, where) == expected
    assert expected  # every case finds something


def test_text_search_pins(s: fq.Session) -> None:
    assert ids(s, '{note: {matches: "quick fox"}}') == [1, 3]  # stems: foxes, QUICK
    assert ids(s, '{note: {phrase_query: "dog lazy"}}') == []
    assert ids(s, '{note: {matches: {query: "chat", language: "french"}}}') == [2]
    # "le" is a french stop word, an english word like any other.
    assert ids(s, '{note: {matches: "le"}}') == [2]
    assert ids(s, '{note: {matches: {query: "le", language: "french"}}}') == []


def test_columns_of_a_fact_table(s: fq.Session, hosts: str) -> None:
    with psycopg.connect(hosts) as conn:
        private = conn.execute(
            "SELECT count(*), sum(bytes)::float8 FROM tf_conn WHERE addr <<= ANY("
            "'{10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7}'::inet[])"
        ).fetchone()
        foxes = conn.execute(
            "SELECT count(*) FROM tf_conn WHERE words @@ plainto_tsquery('english', 'fox')"
        ).fetchone()[0]
    query = "{ conn_aggregate(where: {addr: {is_private: true}}) { count bytes_sum } }"
    auto = s.execute(query)
    assert isinstance(auto, fq.Result)
    assert (auto.df["count"][0], auto.df["bytes_sum"][0]) == (private[0], private[1])
    assert auto.backend == "postgres"
    assert auto.reason == "arrow declines column addr (type inet)"
    words = s.execute('{ conn_aggregate(where: {words: {matches: "fox"}}) { count } }')
    assert isinstance(words, fq.Result)
    assert words.df["count"][0] == foxes == 2
    with pytest.raises(fq.QueryError, match=r"addr \(type inet\)"):
        s.execute(query, backend="arrow")
    # On a text column the arrow plane could load, the operator is what it declines.
    text = s.execute("{ conn_aggregate(where: {host: {is_private: true}}) { count } }")
    assert isinstance(text, fq.Result)
    assert text.df["count"][0] == private[0]
    assert text.reason == "arrow declines the operator is_private (network)"


def test_bad_input_is_a_query_error_naming_field_and_value(s: fq.Session) -> None:
    with pytest.raises(fq.QueryError, match=r"ip\.in_subnet: '10\.0\.0\.300/8' is not an IP"):
        ids(s, '{ip: {in_subnet: "10.0.0.300/8"}}')
    with pytest.raises(fq.QueryError, match=r"ip\.contains_ip: 'fe80:::1' is not an IP"):
        ids(s, '{ip: {contains_ip: "fe80:::1"}}')
    with pytest.raises(fq.QueryError, match="'en glish' is not a text search language"):
        ids(s, '{note: {matches: {query: "x", language: "en glish"}}}')
    with pytest.raises(fq.QueryError, match='text search configuration "klingon" does not exist'):
        ids(s, '{note: {matches: {query: "x", language: "klingon"}}}')
    with pytest.raises(fq.QueryError, match="TextSearch"):
        ids(s, "{note: {matches: {q: 1}}}")
    # An operator on a field of a type it does not apply to: the schema refuses it.
    with pytest.raises(fq.QueryError, match="is_private"):
        ids(s, "{port: {is_private: true}}")


# ------------------------------------------------------------------ property-based

SUBNETS = ["10.0.0.0/8", "10.1.0.0/16", "172.16.0.0/12", "::/0", "fd00::/8", "127.0.0.1", "::1"]
WORDS = ["quick", "fox", "dog", "lazy", "chats", "canapé", "loopback", "address", "le", "foxes"]
FLAG_SQL = {
    "is_ipv4": "family({ip}) = 4",
    "is_ipv6": "family({ip}) = 6",
    "is_private": PRIVATE,
    "is_loopback": LOOPBACK,
}
RANGE_SQL = {
    "in_subnet": "<<=",
    "contains_subnet": ">>=",
    "contains_ip": ">>=",
    "ip_range_overlap": "&&",
}
SEARCH_SQL = {
    "matches": "plainto_tsquery",
    "plain_query": "plainto_tsquery",
    "phrase_query": "phraseto_tsquery",
    "websearch_query": "websearch_to_tsquery",
}


def _leaf() -> Any:
    from hypothesis import strategies as st

    flag = st.builds(
        lambda op, v: ({"ip": {op: v}}, f"({FLAG_SQL[op]})" if v else f"(NOT ({FLAG_SQL[op]}))"),
        st.sampled_from(sorted(FLAG_SQL)),
        st.booleans(),
    )
    ranged = st.builds(
        lambda op, v: ({"ip": {op: v}}, f"({{ip}} {RANGE_SQL[op]} '{v}'::inet)"),
        st.sampled_from(sorted(RANGE_SQL)),
        st.sampled_from(SUBNETS),
    )
    search = st.builds(
        lambda op, words, lang: (
            {"note": {op: {"query": " ".join(words), "language": lang}}},
            f"(to_tsvector('{lang}', data->>'note') @@ {SEARCH_SQL[op]}('{lang}',"
            f" '{' '.join(words)}'))",
        ),
        st.sampled_from(sorted(SEARCH_SQL)),
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=3),
        st.sampled_from(["english", "french", "simple"]),
    )
    return st.one_of(flag, ranged, search)


def _tree() -> Any:
    from hypothesis import strategies as st

    return st.recursive(
        _leaf(),
        lambda inner: st.one_of(
            st.builds(
                lambda items: ({"_and": [w for w, _ in items]},
                               "(" + " AND ".join(c for _, c in items) + ")"),
                st.lists(inner, min_size=1, max_size=3),
            ),
            st.builds(
                lambda items: ({"_or": [w for w, _ in items]},
                               "(" + " OR ".join(c for _, c in items) + ")"),
                st.lists(inner, min_size=1, max_size=3),
            ),
            st.builds(lambda item: ({"_not": item[0]}, f"(NOT {item[1]})"), inner),
        ),
        max_leaves=5,
    )  # fmt: skip


def test_generated_address_and_search_trees_agree_with_postgresql(
    s: fq.Session, hosts: str
) -> None:
    from hypothesis import HealthCheck, given, settings

    query = "query ($w: HostWhereInput) { hosts(where: $w, orderBy: {id: ASC}) { id } }"

    @settings(
        max_examples=60,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(_tree())
    def check(case: tuple[dict[str, Any], str]) -> None:
        where, condition = case
        r = s.execute(query, {"w": where})
        assert isinstance(r, fq.Result)
        assert [int(x) for x in r.df["id"].to_list()] == oracle(hosts, condition)

    check()


def test_the_documented_demo_query_runs_on_every_row_plane(session: fq.Session) -> None:
    """docs/query-language.md's query with every new operator, on the demo data: each root
    field answers, the same on the wire and postgres planes, and most find rows."""
    from tests.notebook.test_docs import DOCS, blocks

    text = next(b for p in DOCS for b in blocks(p, "graphql") if "near: products(orderBy" in b)
    wire = session.execute(text)
    pg = session.execute(text, backend="postgres")
    assert isinstance(wire, fq.Results) and isinstance(pg, fq.Results)
    found = {}
    assert list(wire) == list(pg)
    for key in wire:
        assert wire[key].df.to_dicts() == pg[key].df.to_dicts()
        found[key] = wire[key].df.height
    empty = {key for key, n in found.items() if n == 0}
    assert empty <= {"loopback", "within", "holds"}, found  # the demo has no such address
    assert found["near"] == 3 and found["lamps"] == 3 and found["french"] > 0
