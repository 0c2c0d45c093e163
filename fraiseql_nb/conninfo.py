"""Connection strings: find the password, mask it, and retarget a database.

Pure string work, no I/O. Every message fraiseql_nb shows that may contain a
DSN or a server error passes through :func:`redact`.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from psycopg.conninfo import conninfo_to_dict, make_conninfo

__all__ = ["MASK", "mask_dsn", "password_of", "redact", "secrets_of", "with_database"]

MASK = "***"

# postgresql://user:password@host  ->  postgresql://user:***@host
_URI_USERINFO = re.compile(r"(?P<head>postgres(?:ql)?(?:\+\w+)?://[^:/?#@\s]*):(?P<pw>[^@/?#\s]*)@")
# password=secret, password='se cret', ?password=secret&  (key/value and URI query forms)
_KEY_VALUE = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|[^\s&'\"]+)", re.I)


def password_of(dsn: str) -> str | None:
    """Return the password a connection string carries, or None (also when it does not parse)."""
    try:
        return conninfo_to_dict(dsn).get("password") or None
    except Exception:  # noqa: BLE001 - an unparsable DSN has no password we can find
        return None


def secrets_of(dsn: str | None) -> tuple[str, ...]:
    """The strings that must never be shown for ``dsn``: its password, raw and URL-encoded."""
    if not dsn:
        return ()
    pw = password_of(dsn)
    if not pw:
        return ()
    return tuple({pw, quote(pw, safe="")})


def mask_dsn(dsn: str) -> str:
    """Return ``dsn`` with any password replaced by ``***``, keeping its form (URI or key=value)."""

    def _uri(m: re.Match[str]) -> str:
        return f"{m['head']}:{MASK}@" if m["pw"] else m.group(0)

    masked = _URI_USERINFO.sub(_uri, dsn)
    return _KEY_VALUE.sub(lambda m: f"{m['head']}{MASK}", masked)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Mask passwords in free text: the given secrets verbatim, and anything shaped like one."""
    for secret in sorted(secrets, key=len, reverse=True):
        # Very short secrets would mangle ordinary words; the patterns below
        # still mask them wherever they appear in DSN form.
        if len(secret) >= 4:
            text = text.replace(secret, MASK)
    return mask_dsn(text)


def with_database(dsn: str, dbname: str) -> str:
    """Return ``dsn`` pointing at database ``dbname`` on the same server."""
    return make_conninfo(dsn, dbname=dbname)
