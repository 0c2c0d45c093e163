"""A few rows are parsed without Arrow's JSON reader (its set-up costs more than the
parse): the frame must be exactly what the reader makes of the same documents,
whatever shapes their values take."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from polars.testing import assert_frame_equal

import fraiseql_nb as fq

# Five shapes of document, repeated: the first five rows alone are a small result,
# all 3,000 a big one (hundreds of KB, read by Arrow).
DOCS = """
CREATE TABLE tv_doc (id bigint PRIMARY KEY, data jsonb NOT NULL);
INSERT INTO tv_doc SELECT g, jsonb_build_object('id', g, 'title', 'doc ' || g) || (ARRAY[
  '{"at": "2024-02-21T06:15:22Z", "n": 3, "f": 2, "ok": true, "tags": ["a"],
    "box": {"c": "x", "w": 1.5}, "day": "2024-02-21"}',
  '{"at": "2024-02-21T06:15:22.123+02:00", "n": null, "f": 2.5, "ok": false, "tags": [],
    "box": null, "day": null}',
  '{"at": "2024-02-21", "n": 4, "f": -1e300, "tags": ["b", null], "box": {"c": null},
    "day": "1999-12-31"}',
  '{"at": "2024-02-21T06:15:22", "n": 9223372036854775807, "f": 0.1, "ok": true,
    "tags": null, "box": {"c": "ü 王", "w": 3}, "day": "2000-01-01"}',
  '{"at": null, "n": 5, "f": 1, "ok": null, "tags": ["c"], "box": {"c": "y", "w": null},
    "day": "2024-02-29"}'
  ])[1 + (g - 1) % 5]::jsonb AS data
FROM generate_series(1, 3000) g;
"""
QUERY = "{ docs(limit: %d) { id title at n f ok tags box { c w } day } }"


@pytest.fixture
def docs(scratch_dsn: str) -> str:
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute(DOCS)
    return scratch_dsn


def test_a_small_result_reads_as_a_big_one_does(docs: str) -> None:
    with fq.connect(docs) as s:
        small = s.execute(QUERY % 5)
        big = s.execute(QUERY % 3000)
        assert isinstance(small, fq.Result) and isinstance(big, fq.Result)
        assert big.df.height == 3000
        assert_frame_equal(small.df, big.df.head(5))
        df = small.df
        utc = dt.timezone.utc
        assert df["at"].to_list() == [
            dt.datetime(2024, 2, 21, 6, 15, 22, tzinfo=utc),
            dt.datetime(2024, 2, 21, 4, 15, 22, 123000, tzinfo=utc),
            dt.datetime(2024, 2, 21, tzinfo=utc),
            dt.datetime(2024, 2, 21, 6, 15, 22, tzinfo=utc),
            None,
        ]
        assert df["n"].to_list() == [3, None, 4, 9223372036854775807, 5]
        assert df["f"].to_list() == [2.0, 2.5, -1e300, 0.1, 1.0]
        assert df["tags"].to_list() == [["a"], [], ["b", None], None, ["c"]]
        assert df["box"].to_list()[3] == {"c": "ü 王", "w": 3.0}


def test_a_value_of_another_kind_reads_as_null_in_small_and_big_results(docs: str) -> None:
    with psycopg.connect(docs, autocommit=True) as conn:
        conn.execute("""UPDATE tv_doc SET data = data || '{"n": "3"}' WHERE id % 1000 = 1""")
    with fq.connect(docs) as s:
        small = s.execute(QUERY % 5)
        big = s.execute(QUERY % 3000)
        assert isinstance(small, fq.Result) and isinstance(big, fq.Result)
        assert_frame_equal(small.df, big.df.head(5))
        assert small.df["n"].to_list() == [None, None, 4, 9223372036854775807, 5]
