"""SQL laid out to read, never changed: pure."""

from __future__ import annotations

import re

import pytest

from fraiseql_nb.notebook.sqltext import format_sql

STATEMENTS = [
    'SELECT row_to_json(__fq_row)::text FROM (SELECT "region" AS "region", count(*)'
    ' AS "count" FROM "public"."tf_sales" WHERE (dimensions->>\'note\') = \'from x where y\''
    ' GROUP BY 1 ORDER BY "region" ASC NULLS LAST LIMIT 5) AS __fq_row',
    'SELECT jsonb_build_object(\'id\', v.id)::text, v.id AS __fq_id FROM "public"."v_user"'
    " AS v WHERE v.data->>'x' = 'a  b  FROM  c' AND v.data ? $$it's ORDER BY$$ ORDER BY v.id"
    " LIMIT 5",
    'SELECT "select from" FROM "weird ""group by"" name"',
]


@pytest.mark.parametrize("text", STATEMENTS)
def test_only_whitespace_between_tokens_changes(text: str) -> None:
    shown = format_sql(text)
    assert re.sub(r"\s+", "", shown) == re.sub(r"\s+", "", text)
    for literal in re.findall(r"'(?:[^']|'')*'|\$\$.*?\$\$", text):
        assert literal in shown  # strings keep their spaces and their words
    lines = shown.splitlines()
    assert lines[0].startswith("SELECT")
    assert any(line.lstrip().startswith("FROM") for line in lines[1:])


def test_the_outer_clauses_and_the_first_subquery_get_lines() -> None:
    shown = format_sql(STATEMENTS[0]).splitlines()
    assert [line.split()[0] for line in shown] == [
        "SELECT",
        "FROM",
        "SELECT",
        "FROM",
        "WHERE",
        "GROUP",
        "ORDER",
        "LIMIT",
    ]
    assert format_sql(STATEMENTS[2]) == 'SELECT "select from"\nFROM "weird ""group by"" name"'
