"""The HTTP front end's pure decisions, without a server or a database: content
negotiation and the limits on a request's shape."""

from __future__ import annotations

import pytest

from fraiseql_nb.config import ServerConfig
from fraiseql_nb.web.http import ARROW_STREAM, GRAPHQL_RESPONSE, negotiate
from fraiseql_nb.web.limits import LimitError, check_request


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (None, "application/json"),
        ("", "application/json"),
        ("*/*", "application/json"),
        ("application/*", "application/json"),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"application/json, {GRAPHQL_RESPONSE}", "application/json"),  # the first of equals
        (f"application/json;q=0.5, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),  # the highest q
        (f"{ARROW_STREAM};q=0.9, application/json;q=0.1", ARROW_STREAM),
        ("text/html", None),  # nothing acceptable: 406
        ("application/json;q=0", None),  # refused outright
        ("application/json;q=nonsense", None),  # an unreadable q is 0
        ("APPLICATION/JSON", "application/json"),  # media types are case-insensitive
    ],
)
def test_negotiation(accept: str | None, media: str | None) -> None:
    assert negotiate(accept) == media


def test_limits_name_the_setting_that_refused() -> None:
    limits = ServerConfig(max_depth=3, max_fields=5, max_list_length=2)
    check_request("{ a { b { c } } }", None, limits)  # depth 3: allowed
    with pytest.raises(LimitError, match="max_depth"):
        check_request("{ a { b { c { d } } } }", None, limits)
    with pytest.raises(LimitError, match="max_fields"):
        check_request("{ a b c d e f }", None, limits)
    with pytest.raises(LimitError, match="max_list_length"):
        check_request("{ a }", {"ids": [1, 2, 3]}, limits)
    check_request("{ a }", {"ids": [1, 2]}, limits)
