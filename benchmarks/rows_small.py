"""Small and filtered row queries: ``s.execute`` vs its own SQL run raw vs hand-written SQL.

For each query, in one run and one process (medians of ``--repeat`` runs, after
warm-up), three ways to the same answer:

  (s) ``Session.execute(query).df``                       — the toolkit, end to end
  (g) the SQL it generated, run raw with psycopg (fetchall) — the server's share
  (h) hand-written SQL an expert would type + ``pl.DataFrame`` — the baseline

Also the raw round trip of (g) plus building its DataFrame, to show the fixed
cost the toolkit adds per query, and (p) the same query through the buffered
``postgres`` path (``use_wire_backend = false``).

Data: a 300K-document stored entity view (``v_event`` over ``tb_event``) and a
5K-document one (``v_movie``), created in a database of the embedded server (or
in ``--dsn``'s) the first time.

    python benchmarks/rows_small.py [--repeat 40] [--dsn DSN]

Prints a markdown table, writes benchmarks/results/rows_small.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DATABASE = "fraiseql_bench_rows"

SETUP = """
CREATE TABLE tb_event AS
SELECT g AS id, jsonb_build_object(
    'id', g,
    'kind', (ARRAY['view','click','buy','share','leave'])[1 + g % 5],
    'value', (g * 7919) % 100,
    'at', to_char(timestamptz '2024-01-01' + make_interval(secs => (g * 104729) % 31536000),
                  'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    'user', jsonb_build_object('name', 'user ' || (g % 5000), 'country',
                               (ARRAY['FR','DE','US','JP','BR','IN'])[1 + g % 6]),
    'tags', to_jsonb(ARRAY['t' || (g % 7), 't' || (g % 11)]),
    'title', 'event number ' || g) AS data
FROM generate_series(1::bigint, 300000) g;
ALTER TABLE tb_event ADD PRIMARY KEY (id);
CREATE VIEW v_event AS SELECT id, data FROM tb_event;
CREATE TABLE tb_movie AS
SELECT g AS id, jsonb_build_object(
    'id', g, 'title', 'Movie ' || g, 'year', 1950 + (g * 31) % 75,
    'rating', round(((g * 37) % 100) / 10.0, 1),
    'genres', to_jsonb(ARRAY[(ARRAY['drama','comedy','action','horror'])[1 + g % 4]])) AS data
FROM generate_series(1::bigint, 5000) g;
ALTER TABLE tb_movie ADD PRIMARY KEY (id);
CREATE VIEW v_movie AS SELECT id, data FROM tb_movie;
ANALYZE tb_event; ANALYZE tb_movie;
"""

# name, GraphQL, hand-written SQL for the same rows.
CASES: list[tuple[str, str, str]] = [
    (
        "5 rows, no filter (300K docs)",
        "{ events(limit: 5) { id kind value } }",
        "SELECT id, data->>'kind' AS kind, (data->'value')::float8 AS value"
        " FROM v_event ORDER BY id LIMIT 5",
    ),
    (
        "year >= 2000, order by year desc, limit 5 (5K docs)",
        "{ movies(where: {year: {gte: 2000}}, orderBy: [{year: DESC}], limit: 5)"
        " { id title year } }",
        "SELECT id, data->>'title' AS title, (data->>'year')::int AS year FROM v_movie"
        " WHERE (data->>'year')::int >= 2000 ORDER BY (data->>'year')::int DESC, id LIMIT 5",
    ),
    (
        "kind = view and value > 50, order by at desc, limit 20 (300K docs)",
        '{ events(where: {kind: {eq: "view"}, value: {gt: 50}}, orderBy: [{at: DESC}],'
        " limit: 20) { id kind value at } }",
        "SELECT id, data->>'kind' AS kind, (data->'value')::float8 AS value,"
        " (data->>'at')::timestamptz AS at FROM v_event"
        " WHERE data->>'kind' = 'view' AND (data->'value')::numeric > 50"
        " ORDER BY (data->>'at')::timestamptz DESC, id LIMIT 20",
    ),
    (
        "nested field: user.country = JP, limit 20 (300K docs)",
        '{ events(where: {user: {country: {eq: "JP"}}}, limit: 20) { id user { name } } }',
        "SELECT id, data->'user'->>'name' AS name FROM v_event"
        " WHERE data->'user'->>'country' = 'JP' ORDER BY id LIMIT 20",
    ),
    (
        "in list of 3 kinds, value < 5, limit 50 (300K docs)",
        '{ events(where: {kind: {in: ["buy", "share", "leave"]}, value: {lt: 5}}, limit: 50)'
        " { id kind value } }",
        "SELECT id, data->>'kind' AS kind, (data->'value')::float8 AS value FROM v_event"
        " WHERE data->>'kind' = ANY('{buy,share,leave}') AND (data->'value')::numeric < 5"
        " ORDER BY id LIMIT 50",
    ),
    (
        "title contains '99999', limit 20 (300K docs)",
        '{ events(where: {title: {contains: "99999"}}, limit: 20) { id title } }',
        "SELECT id, data->>'title' AS title FROM v_event"
        " WHERE data->>'title' LIKE '%99999%' ORDER BY id LIMIT 20",
    ),
    (
        "keyset page of 100 after id 150000, order by value (300K docs)",
        "{ events(orderBy: [{value: ASC}], after: 150000, limit: 100) { id value } }",
        "SELECT e.id, (e.data->'value')::float8 AS value FROM v_event e,"
        " (SELECT (data->'value')::numeric AS v FROM v_event WHERE id = 150000) a"
        " WHERE ((e.data->'value')::numeric, e.id) > (a.v, 150000)"
        " ORDER BY (e.data->'value')::numeric, e.id LIMIT 100",
    ),
]


def ensure_data(dsn: str | None) -> str:
    """The DSN of a database holding v_event and v_movie (created there if missing)."""
    import psycopg

    from fraiseql_nb.local import demo, embedded

    target = dsn or demo.ensure_database(embedded.start().dsn(), DATABASE)
    with psycopg.connect(target, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('v_event')").fetchone() == (None,):
            print("creating the 300K-document event view…", file=sys.stderr)
            conn.execute(SETUP)
    return target


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def measure(dsn: str, graphql: str, hand: str, repeat: int) -> dict[str, Any]:
    import polars as pl
    import psycopg

    import fraiseql_nb as fq

    with (
        fq.connect(dsn) as s,
        fq.connect(dsn, config={"backends": {"use_wire_backend": False}}) as buffered,
        psycopg.connect(dsn, autocommit=True) as conn,
    ):
        result = s.execute(graphql)
        assert isinstance(result, fq.Result)
        assert result.backend == "wire", result.backend
        generated = result.sql

        def ours() -> None:
            s.execute(graphql).df  # noqa: B018

        def plain() -> None:
            buffered.execute(graphql).df  # noqa: B018

        def raw() -> None:
            conn.execute(generated).fetchall()

        def raw_frame() -> None:
            from fraiseql_nb.pg.documents import loads

            rows = [loads(r[0]) for r in conn.execute(generated).fetchall()]
            pl.DataFrame(rows)

        def expert() -> None:
            cur = conn.execute(hand)
            names = [d.name for d in cur.description or ()]
            pl.DataFrame(cur.fetchall(), schema=names, orient="row")

        expected = s.execute(graphql).df
        cur = conn.execute(hand)
        got = pl.DataFrame(
            cur.fetchall(), schema=[d.name for d in cur.description or ()], orient="row"
        )
        same = expected.height == got.height and expected["id"].to_list() == got["id"].to_list()
        return {
            "execute_ms": round(median_ms(ours, repeat), 3),
            "postgres_path_ms": round(median_ms(plain, repeat), 3),
            "generated_raw_ms": round(median_ms(raw, repeat), 3),
            "generated_raw_frame_ms": round(median_ms(raw_frame, repeat), 3),
            "hand_ms": round(median_ms(expert, repeat), 3),
            "same_ids": same,
            "sql": generated,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--dsn", default=os.environ.get("FRAISEQL_DSN"))
    parser.add_argument("--only", help="run the cases whose name contains this")
    args = parser.parse_args()
    dsn = ensure_data(args.dsn)
    rows = []
    for name, graphql, hand in CASES:
        if args.only and args.only not in name:
            continue
        r = measure(dsn, graphql, hand, args.repeat)
        r["query"] = name
        rows.append(r)
        print(f"  {name}: {r['execute_ms']} ms", file=sys.stderr)
    print(
        "| query | `s.execute` | generated SQL raw | hand-written + DataFrame | generated / hand"
        " | `s.execute` / hand | `s.execute` − (raw + frame) | wire / postgres path |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['query']} | {r['execute_ms']:.2f} ms | {r['generated_raw_ms']:.2f} ms"
            f" | {r['hand_ms']:.2f} ms | {r['generated_raw_ms'] / r['hand_ms']:.2f}×"
            f" | {r['execute_ms'] / r['hand_ms']:.2f}×"
            f" | {r['execute_ms'] - r['generated_raw_frame_ms']:+.2f} ms"
            f" | {r['execute_ms'] / r['postgres_path_ms']:.2f}× |"
            + ("" if r["same_ids"] else " (answers differ!)")
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "rows_small.json").write_text(
        json.dumps(
            {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": rows},
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
