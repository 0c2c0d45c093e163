"""Password masking and DSN rewriting (pure, no database)."""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict

from fraiseql_nb.errors import BackendError, QueryError
from fraiseql_nb.pg.conninfo import mask_dsn, password_of, redact, secrets_of, with_database


@pytest.mark.parametrize(
    ("dsn", "masked"),
    [
        (
            "postgresql://alice:s3cret@db.example:5432/app",
            "postgresql://alice:***@db.example:5432/app",
        ),
        (
            "postgres://alice:s3cret@db/app?sslmode=require",
            "postgres://alice:***@db/app?sslmode=require",
        ),
        ("postgresql://alice@db/app", "postgresql://alice@db/app"),
        (
            "postgresql://db/app?user=a&password=s3cret&x=1",
            "postgresql://db/app?user=a&password=***&x=1",
        ),
        (
            "host=db user=alice password=s3cret dbname=app",
            "host=db user=alice password=*** dbname=app",
        ),
        ("host=db password='s3 cret' dbname=app", "host=db password=*** dbname=app"),
        ("host=db PASSWORD = s3cret", "host=db PASSWORD = ***"),
        ("host=/tmp/sock dbname=app", "host=/tmp/sock dbname=app"),
    ],
)
def test_mask_dsn_hides_the_password_and_keeps_the_rest(dsn: str, masked: str) -> None:
    assert mask_dsn(dsn) == masked
    assert "s3" not in mask_dsn(dsn)


def test_password_of_reads_both_forms() -> None:
    assert password_of("postgresql://u:p%40ss@h/db") == "p@ss"
    assert password_of("host=h password=pw") == "pw"
    assert password_of("host=h") is None
    assert password_of("not a dsn at all") is None


def test_redact_masks_raw_and_encoded_secrets_in_free_text() -> None:
    secrets = secrets_of("postgresql://u:p%40ssw0rd@h/db")
    text = 'FATAL: password "p@ssw0rd" rejected for postgresql://u:p%40ssw0rd@h/db'
    out = redact(text, secrets)
    assert "p@ssw0rd" not in out
    assert "p%40ssw0rd" not in out
    assert out.count("***") == 2


def test_errors_never_keep_a_password() -> None:
    err = BackendError("cannot connect to postgresql://u:hunter22@h/db", secrets=("hunter22",))
    assert "hunter22" not in str(err)
    assert "hunter22" not in repr(err)
    assert err.message == "cannot connect to postgresql://u:***@h/db"


def test_query_error_carries_its_location() -> None:
    err = QueryError("unknown field 'nme'", line=2, column=7)
    assert (err.line, err.column) == (2, 7)
    assert str(err) == "unknown field 'nme' (at 2:7)"


def test_with_database_keeps_server_and_credentials() -> None:
    out = conninfo_to_dict(with_database("postgresql://u:pw@h:5433/a?sslmode=disable", "b"))
    assert out == {
        "user": "u",
        "password": "pw",
        "host": "h",
        "port": "5433",
        "dbname": "b",
        "sslmode": "disable",
    }
