"""Connection strings: find the password, mask it, and retarget a database.

Pure string work, no I/O. Every message fraiseql_nb shows that may contain a
DSN or a server error passes through :func:`redact`.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from psycopg.conninfo import conninfo_to_dict, make_conninfo

__all__ = [
    "MASK",
    "mask_dsn",
    "normalize_scheme",
    "password_of",
    "redact",
    "secrets_of",
    "with_database",
]

MASK = "***"
_SECRET_KEYS = ("password", "sslpassword")

# postgresql://user:password@host  ->  postgresql://user:***@host
# The password runs to the last "@" of the URI: people type "#", "/" or "?" in it unencoded.
_URI_USERINFO = re.compile(
    r"(?P<head>postgres(?:ql)?(?:\+\w+)?://[^:/?#@\s]*):(?P<pw>[^\s]*)@(?P<rest>[^@\s]*)",
    re.I,
)
# ?password=secret&…: in a URI's query, a value runs to the next & (or #, or a space).
_URI_QUERY = re.compile(r"(?P<head>[?&](?:ssl)?password=)(?P<pw>[^&#\s]*)", re.I)
# password=secret, sslpassword='se cret' (key/value form), read as libpq reads them: a
# quoted value runs to its closing quote (or the end), \ escaping; an unquoted one to
# the next ASCII white space, \ escaping (so "ab&cd", "ab'cd" and a no-break space are
# all inside it).
_KEY_VALUE = re.compile(
    r"(?P<head>(?<![?&\w])(?:ssl)?password\s*=\s*)"
    r"(?P<pw>'(?:[^'\\]|\\.)*(?:'|$)|(?:\\.|[^ \t\n\r\f\v\\])+)",
    re.I,
)
# postgresql+psycopg://  ->  postgresql://  (SQLAlchemy's driver suffix)
_DRIVER = re.compile(r"^(?P<scheme>postgres(?:ql)?)\+\w+://")


def normalize_scheme(dsn: str) -> str:
    """``postgresql+psycopg://…`` (SQLAlchemy's spelling) as libpq's ``postgresql://…``."""
    return _DRIVER.sub(lambda m: f"{m['scheme']}://", dsn.strip())


def password_of(dsn: str) -> str | None:
    """Return the password a connection string carries, or None."""
    found = _passwords(dsn)
    return found[0] if found else None


def _passwords(dsn: str) -> list[str]:
    """Every secret in ``dsn``: parsed by libpq's rules when it parses, else found by shape."""
    try:
        params = conninfo_to_dict(normalize_scheme(dsn))
    except Exception:  # noqa: BLE001 - an unparsable DSN: look for password-shaped text
        found = [m["pw"] for m in _URI_USERINFO.finditer(dsn)]
        found += [m["pw"] for m in _URI_QUERY.finditer(dsn)]
        found += [m["pw"].strip("'") for m in _KEY_VALUE.finditer(dsn)]
        return [f for f in found if f]
    return [str(params[k]) for k in _SECRET_KEYS if params.get(k)]


def secrets_of(dsn: str | None) -> tuple[str, ...]:
    """The strings that must never be shown for ``dsn``: its passwords, raw and URL-encoded."""
    if not dsn:
        return ()
    out: set[str] = set()
    for pw in _passwords(dsn):
        out |= {pw, quote(pw, safe=""), unquote(pw)}
    return tuple(out)


def mask_dsn(dsn: str) -> str:
    """Return ``dsn`` with any password replaced by ``***``, keeping its form (URI or key=value)."""

    def _uri(m: re.Match[str]) -> str:
        return f"{m['head']}:{MASK}@{m['rest']}" if m["pw"] else m.group(0)

    masked = _URI_USERINFO.sub(_uri, dsn)
    masked = _URI_QUERY.sub(lambda m: f"{m['head']}{MASK}", masked)
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
