"""CPU cost of turning query text into SQL: parse + validate + IR + compile.

Measured on the schema of the demo database, for a typical row, aggregate
and window query: "cold" (a text never seen: graphql-core parses and
validates it) and "warm" (the same text again: its validated document is
cached, as when a notebook cell is re-run). The baseline, measured in the
same run, is graphql-core's own parse + validate of the same text, the part
no GraphQL tool can skip. Prints a markdown table, writes
benchmarks/results/parse.json.

    python benchmarks/parse.py [--dsn DSN] [--repeat 2000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from graphql import parse, validate

import fraiseql_nb as fq
from fraiseql_nb.query import RowQuery, parse_query
from fraiseql_nb.query.parse import _validated
from fraiseql_nb.sql import Params, compile_row_query

RESULTS = Path(__file__).resolve().parent / "results" / "parse.json"

QUERIES = {
    "row": """query ($city: String) {
      users(where: {status: {eq: "active"}, address: {city: {eq: $city}},
                    _or: [{age: {gte: 65}}, {tags: {array_contains: ["vip"]}}]},
            orderBy: [{age: DESC}, {name: ASC}], limit: 50, offset: 100) {
        id name email address { city } } }""",
    "aggregate": """{ sales_aggregate(where: {occurred_at: {gte: "2024-01-01"}, category: {in: ["books"]}},
                  groupBy: {category: true, occurred_at_month: true},
                  having: {revenue_sum: {gt: 1000}}, orderBy: {revenue_sum: DESC}, limit: 10) {
        category occurred_at_month count revenue_sum revenue_avg quantity_max revenue_p90 } }""",
    "window": """{ sales_window(where: {region: {eq: "EU"}}, partitionBy: [category],
               orderBy: {occurred_at: ASC}, limit: 1000) {
        id category occurred_at revenue rn: row_number
        running_revenue: running_sum(field: revenue) prev: lag(field: revenue, offset: 1) } }""",
}


def per_call_us(fn: Any, repeat: int) -> float:
    """Median of 5 batches, in microseconds per call."""
    batches = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat // 5):
            fn()
        batches.append((time.perf_counter() - start) / (repeat // 5) * 1e6)
    return statistics.median(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="database to introspect (default: the embedded demo)")
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    session = fq.connect(args.dsn)
    schema = session.schema
    from fraiseql_nb.schema import graphql_schema

    gql = graphql_schema(schema)
    variables = {"city": "Paris"}
    rows = []
    for kind, text in QUERIES.items():

        def full(text: str = text, kind: str = kind) -> None:
            doc = parse_query(text, schema, variables if kind == "row" else None)
            q = doc.queries[0]
            if isinstance(q, RowQuery):
                entity = schema.entity(q.entity)
                assert entity is not None
                compile_row_query(q, entity, Params())

        def cold(full: Any = full) -> None:
            _validated.pop(gql, None)
            full()

        def baseline(text: str = text) -> None:
            assert not validate(gql, parse(text))

        rows.append(
            {
                "query": kind,
                "baseline_us": round(per_call_us(baseline, args.repeat), 1),
                "cold_us": round(per_call_us(cold, args.repeat), 1),
                "warm_us": round(per_call_us(full, args.repeat), 1),
            }
        )
    session.close()
    print(
        "| query | graphql-core parse+validate (µs) | ours, cold (µs) | ours, warm (µs) | cold / baseline | warm / baseline |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['query']} | {r['baseline_us']} | {r['cold_us']} | {r['warm_us']} "
            f"| {r['cold_us'] / r['baseline_us']:.2f} | {r['warm_us'] / r['baseline_us']:.2f} |"
        )
    print("\n(row: parse + validate + IR + SQL compile; aggregate/window: parse + validate + IR)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": rows},
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
