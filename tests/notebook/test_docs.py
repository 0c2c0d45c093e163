"""Every example in README.md and docs/ runs as written.

Python blocks run in order, one namespace per file (``fq.connect()`` reaches
the test database through ``$FRAISEQL_DSN``); blocks that start with a
``%`` magic (and untagged blocks that do: ``%%fraiseql`` cells) run whole in the
IPython shell, exactly as written, trailing comments included; GraphQL blocks must validate against
the demo schema. Shell (bash) blocks are the command line's, tested in
tests/test_cli.py; examples that call a running ``fraiseql-nb serve``
(``http://127.0.0.1:8000``) run against one in tests/web/test_graphql_over_http.py.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

import fraiseql_nb as fq
from fraiseql_nb.local.embedded import ENV_HOME
from fraiseql_nb.query import parse_query
from tests.conftest import ENV_TEST_DSN, REPO

from .conftest import run

DOCS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md")])
SERVED = "http://127.0.0.1:8000"  # examples calling a server: tests/web/test_graphql_over_http.py
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def blocks(path: Path, language: str) -> list[str]:
    return [body for lang, body in _BLOCK.findall(path.read_text("utf-8")) if lang == language]


@pytest.mark.parametrize("path", [p for p in DOCS if blocks(p, "python")], ids=lambda p: p.name)
def test_python_examples_run_as_written(
    path: Path,
    ip: InteractiveShell,
    demo_dsn: str,
    embedded_home: Path | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Untagged blocks that start with a magic are notebook cells (a %%fraiseql query).
    examples = [
        code
        for lang, code in _BLOCK.findall(path.read_text("utf-8"))
        if (lang == "python" and SERVED not in code) or (lang == "" and code.startswith("%"))
    ]
    monkeypatch.setenv("FRAISEQL_DSN", demo_dsn)
    if embedded_home is not None:  # --demo finds the test server, as it finds a user's own
        monkeypatch.setenv(ENV_HOME, str(embedded_home))
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    namespace: dict[str, object] = {"fq": fq}
    try:
        for code in examples:
            if code.lstrip().startswith("%"):
                run(ip, magic_cell(code))
                continue
            exec(compile(code, f"{path.name} example", "exec"), namespace)
    finally:
        for value in namespace.values():
            if isinstance(value, fq.Session):
                value.close()
        _stop_ray()


def _stop_ray() -> None:
    """A Ray an example started ("local") ends with its file, as a user's kernel would."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def magic_cell(code: str) -> str:
    """A notebook cell as written, run whole through IPython (comments and all): only
    ``connect --demo`` is pointed at the test database when the tests run against
    $FRAISEQL_TEST_DSN, which has no embedded server for --demo to find."""
    if os.environ.get(ENV_TEST_DSN):
        code = code.replace("%fraiseql connect --demo", "%fraiseql connect $demo_dsn")
    return code


@pytest.mark.parametrize("path", [p for p in DOCS if blocks(p, "graphql")], ids=lambda p: p.name)
def test_graphql_examples_validate(path: Path, schema: fq.Schema) -> None:
    for text in blocks(path, "graphql"):
        assert parse_query(text, schema, operation_name=None).queries
