"""Field type inference from sampled documents (pure)."""

from __future__ import annotations

from fraiseql_nb.schema.infer import infer_fields
from fraiseql_nb.schema.model import Field
from fraiseql_nb.schema.naming import graphql_name, pascal, plural, singular


def by_name(fields: tuple[Field, ...]) -> dict[str, Field]:
    return {f.name: f for f in fields}


def test_scalars_nullability_and_nesting() -> None:
    docs = [
        {
            "id": 1,
            "age": 30,
            "score": 1.5,
            "ok": True,
            "name": "a",
            "at": "2024-01-02T03:04:05Z",
            "day": "2024-01-02",
            "address": {"city": "Paris", "zip": None},
            "tags": ["x"],
        },
        {
            "id": 2,
            "age": 40,
            "score": 2,
            "ok": False,
            "name": None,
            "at": "2024-01-02 03:04",
            "day": "2024-01-03",
            "address": {"city": "Lyon"},
            "tags": [],
        },
    ]
    fields, used = infer_fields(docs, "User")
    f = by_name(fields)
    assert used == 2
    assert [
        (n, f[n].type.scalar, f[n].nullable)
        for n in ("id", "age", "score", "ok", "name", "at", "day")
    ] == [
        ("id", "ID", False),
        ("age", "Int", False),
        ("score", "Float", False),  # 1.5 and 2: numbers that are not all integers
        ("ok", "Boolean", False),
        ("name", "String", True),  # null in one document
        ("at", "DateTime", False),
        ("day", "Date", False),
    ]
    address = f["address"].type
    assert address.kind == "object"
    assert address.type_name == "UserAddress"
    sub = by_name(address.fields)
    assert sub["city"].nullable is False
    assert sub["zip"].nullable is True  # null in one, missing in the other
    assert f["tags"].type.kind == "list"
    assert f["tags"].type.item is not None
    assert f["tags"].type.item.scalar == "String"


def test_missing_keys_mixed_types_and_big_integers() -> None:
    docs = [{"a": 1, "b": "x", "big": 2**40, "ref_id": "u-1"}, {"b": 2, "big": 1, "ref_id": "u-2"}]
    f = by_name(infer_fields(docs, "T")[0])
    assert f["a"].nullable is True  # absent from the second document
    assert f["b"].type.scalar == "JSON"  # a string and a number
    assert f["big"].type.scalar == "BigInt"  # beyond GraphQL's 32-bit Int
    assert (f["ref_id"].type.scalar, f["ref_id"].type.json) == ("ID", "string")


def test_lists_of_objects_get_item_types_and_unusable_keys_are_left_out() -> None:
    docs = [{"items": [{"sku": "a", "qty": 1}], "first-name": "x", "2fa": True, "__x": 1}]
    f = by_name(infer_fields(docs, "Order")[0])
    item = f["items"].type.item
    assert item is not None
    assert item.kind == "object"
    assert item.type_name == "OrderItem"
    assert set(by_name(item.fields)) == {"sku", "qty"}
    assert f["first_name"].key == "first-name"  # renamed, still read from its key
    assert f["_2fa"].key == "2fa"
    assert "__x" not in f
    assert "x" in f
    assert f["x"].key == "__x"


def test_nothing_but_nulls_is_json_and_non_objects_are_ignored() -> None:
    fields, used = infer_fields([{"a": None}, [1, 2], "text", {"a": None}], "T")  # type: ignore[list-item]
    assert used == 2
    assert by_name(fields)["a"].type.scalar == "JSON"


def test_names() -> None:
    assert [plural(w) for w in ("user", "category", "box", "order", "day", "match")] == [
        "users",
        "categories",
        "boxes",
        "orders",
        "days",
        "matches",
    ]
    assert [singular(w) for w in ("items", "categories", "boxes", "address", "status")] == [
        "item",
        "category",
        "box",
        "address",
        "status",
    ]
    assert pascal("order_item") == "OrderItem"
    assert graphql_name("ok_name") == "ok_name"
    assert graphql_name("with space") == "with_space"
    assert graphql_name("%%%") is None
