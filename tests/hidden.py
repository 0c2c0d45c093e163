"""Shared by the tests that a password is never shown: the password they use, and the
check that a text shows none of its forms (as typed, URL-quoted, its stem)."""

from __future__ import annotations

import urllib.parse
from typing import Any

SECRET = "Sekr3t!pw#42"
FORMS = (SECRET, urllib.parse.quote(SECRET, safe=""), "Sekr3t")


def assert_hidden(text: Any, where: str) -> None:
    shown = text if isinstance(text, str) else repr(text)
    for form in FORMS:
        assert form not in shown, f"{where} shows the password: {shown[:300]}"
