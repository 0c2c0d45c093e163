"""Schema files: exact round trip, hand edits, clear errors for bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import fraiseql_nb as fq
from fraiseql_nb.query import parse_query
from fraiseql_nb.schema import Schema


def test_save_and_load_round_trip_exactly(demo_schema: Schema, tmp_path: Path) -> None:
    path = tmp_path / "schema.json"
    demo_schema.save(path)
    loaded = Schema.load(path)
    assert loaded == demo_schema
    assert fq.to_sdl(loaded) == fq.to_sdl(demo_schema)


def test_hand_edits_change_types_and_query_names(
    demo_schema: Schema, tmp_path: Path, demo_dsn: str
) -> None:
    data = demo_schema.to_dict()
    user = next(e for e in data["entities"] if e["relation"] == "v_user")
    user["list_query"] = "people"
    user["single_query"] = "person"
    age = next(f for f in user["fields"] if f["name"] == "age")
    age["type"]["scalar"] = "Float"
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))

    s = fq.connect(demo_dsn, schema=path)
    assert "people" in s.schema.root_fields()
    assert "users" not in s.schema.root_fields()
    doc = parse_query("{ people(where: {age: {gt: 30.5}}) { age } }", s.schema)
    assert doc["people"].where.value == 30.5  # type: ignore[union-attr]
    with pytest.raises(fq.QueryError, match="Cannot query field 'users'"):
        parse_query("{ users { id } }", s.schema)


def test_renaming_queries_in_python(demo_schema: Schema) -> None:
    renamed = demo_schema.with_query_names({"users": "members", "sales": "turnover"})
    assert renamed.root_fields()[4:] == ["members", "user", "turnover_aggregate", "turnover_window"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "expected a JSON object"),
        ('{"version": 99}', "schema format version 99 is not supported"),
        ('{"entities": [{"name": "X"}]}', "not a valid schema file"),
        ('{"tables": []}', "unknown key"),
    ],
)
def test_bad_schema_files_are_schema_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(fq.SchemaError, match=message) as info:
        Schema.load(path)
    assert str(path) in str(info.value)


def test_an_unknown_scalar_in_a_file_is_named(demo_schema: Schema, tmp_path: Path) -> None:
    data = demo_schema.to_dict()
    data["entities"][0]["fields"][0]["type"]["scalar"] = "Money"
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    with pytest.raises(fq.SchemaError, match="unknown scalar 'Money'"):
        Schema.load(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(fq.SchemaError, match="cannot read schema file"):
        Schema.load(tmp_path / "nope.json")
