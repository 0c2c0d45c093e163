"""SQL expressions that read one field: a path in a JSONB document, or a plain column.

Every comparison, sort and projection goes through a :class:`FieldSQL`, so
the rules for reading a value live in one place: numbers and booleans are
read only from JSON values of that kind (anything else reads as NULL, so a
stray string never makes a query fail), timestamps and dates are cast from
text, and text is read with ``->>``.

The type check costs a ``jsonb_typeof`` per row and value (measured: 0.5 µs,
~60% of a numeric filter over 5K documents). Where the sampled documents held
only that kind, the row plane first sends the direct cast,
``(NULLIF(data -> 'f', 'null'))::numeric`` — JSON null still reads as NULL,
and a string makes PostgreSQL raise an error rather than answer differently —
and on that error runs the checked form instead (``guard=False``).

Integers read that way still cost a numeric per row (PostgreSQL builds a jsonb
value for ``->`` and compares and sorts numerics): ``fixed=True`` reads an
``Int``/``BigInt`` field as ``(data ->> 'f')::int8`` instead, as an expert
writes it — measured 1.6 ms against 2.9 ms for a filter and sort over 5K
documents. PostgreSQL refuses that cast for a fraction, a value beyond int8,
a boolean or a non-numeric string, so those reach the same fallback; a string
holding an integer (``"2001"``) would pass, which is why the row plane uses it
only where a check on the returned rows can tell (:data:`KINDS_KEY` in
sql/rows.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

__all__ = ["FieldSQL", "column_field", "document_field", "fixed_width", "json_path"]

# SQL type of the typed value of each scalar read from JSON.
_JSON_CASTS = {
    "Int": "numeric",
    "BigInt": "numeric",
    "Float": "numeric",
    "DateTime": "timestamptz",
    "Date": "date",
    "Boolean": "boolean",
    "String": "text",
}


@dataclass(frozen=True)
class FieldSQL:
    """How to read one field.

    Attributes:
        value: the typed value (NULL when missing or of another JSON kind).
        text: the value as text.
        jsonb: the value as jsonb (plain columns: ``to_jsonb(col)``).
        pg_type: the SQL type of ``value``; parameters compared to it are cast to it.
    """

    value: sql.Composable
    text: sql.Composable
    jsonb: sql.Composable
    pg_type: str


def json_path(
    base: sql.Composable, path: tuple[str, ...], *, as_text: bool = False
) -> sql.Composable:
    """``base -> 'a' -> 'b'`` (``->>`` for the last step when ``as_text``)."""
    if not path:
        return base
    parts: list[sql.Composable] = [base]
    for i, key in enumerate(path):
        arrow = "->>" if as_text and i == len(path) - 1 else "->"
        parts += [sql.SQL(f" {arrow} "), sql.Literal(key)]
    return sql.Composed([sql.SQL("("), *parts, sql.SQL(")")])


def document_field(
    base: sql.Composable,
    path: tuple[str, ...],
    scalar: str,
    json: str | None = None,
    *,
    guard: bool = True,
    fixed: bool = False,
) -> FieldSQL:
    """Read the field at ``path`` of the JSONB document ``base`` (``guard``, ``fixed``:
    see above)."""
    jsonb = json_path(base, path)
    text = json_path(base, path, as_text=True)
    kind = scalar
    if scalar == "ID":
        kind = "Int" if json == "number" else "String"
    if kind == "JSON":
        return FieldSQL(value=jsonb, text=text, jsonb=jsonb, pg_type="jsonb")
    if fixed and fixed_width(kind, json) and not guard:
        value = sql.SQL("({})::bigint").format(text)
        return FieldSQL(value=value, text=text, jsonb=jsonb, pg_type="bigint")
    pg_type = _JSON_CASTS.get(kind, "text")
    if kind in ("Int", "BigInt", "Float", "Boolean"):
        json_kind = "boolean" if kind == "Boolean" else "number"
        if not guard and json == json_kind:
            value: sql.Composable = sql.SQL("(NULLIF({j}, 'null'))::{c}").format(
                j=jsonb, c=sql.SQL(pg_type)
            )
        else:
            value = sql.SQL("(CASE WHEN jsonb_typeof({j}) = {k} THEN ({j})::{c} END)").format(
                j=jsonb, k=sql.Literal(json_kind), c=sql.SQL(pg_type)
            )
    elif pg_type == "text":
        value = text
    else:
        value = sql.SQL("({t})::{c}").format(t=text, c=sql.SQL(pg_type))
    return FieldSQL(value=value, text=text, jsonb=jsonb, pg_type=pg_type)


def fixed_width(scalar: str, json: str | None) -> bool:
    """Whether a field can be read as int8 (``fixed=True``): an integer the samples held
    as JSON numbers."""
    kind = ("Int" if json == "number" else "String") if scalar == "ID" else scalar
    return kind in ("Int", "BigInt") and json == "number"


def column_field(column: str, pg_type: str, *, table: str | None = None) -> FieldSQL:
    """Read a plain column of type ``pg_type`` (of the relation aliased ``table``)."""
    ident = sql.Identifier(table, column) if table else sql.Identifier(column)
    # A pgvector value's text is a JSON array of its numbers; to_jsonb() would make it a string.
    jsonb = "({}::text)::jsonb" if pg_type.startswith("vector") else "to_jsonb({})"
    return FieldSQL(
        value=ident,
        text=sql.SQL("{}::text").format(ident),
        jsonb=sql.SQL(jsonb).format(ident),
        pg_type=pg_type,
    )
