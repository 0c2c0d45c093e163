"""A real IPython shell with the extension loaded and connected to the small demo database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
from IPython.testing.globalipapp import get_ipython, start_ipython


def run(shell: InteractiveShell, code: str) -> Any:
    """Run a cell that must succeed; return its value."""
    result: ExecutionResult = shell.run_cell(code, store_history=True)  # as a notebook cell is run
    assert result.success, f"cell failed: {result.error_before_exec or result.error_in_exec!r}"
    return result.result


def fail(shell: InteractiveShell, code: str) -> BaseException:
    """Run a cell that must fail; return what it raised."""
    result: ExecutionResult = shell.run_cell(code, store_history=True)  # as a notebook cell is run
    assert not result.success, f"cell succeeded: {result.result!r}"
    error = result.error_before_exec or result.error_in_exec
    assert error is not None
    return error


@pytest.fixture(scope="session")
def ip(demo_dsn: str) -> Iterator[InteractiveShell]:
    shell = start_ipython() or get_ipython()
    assert shell is not None
    run(shell, "%load_ext fraiseql_nb")
    shell.user_ns["demo_dsn"] = demo_dsn
    run(shell, "%fraiseql connect $demo_dsn")
    yield shell
    run(shell, "%unload_ext fraiseql_nb")
