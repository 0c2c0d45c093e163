"""A pytest plugin for ``fraiseql-nb notebooks test``: each failing notebook cell as one
JSON line (notebook, cell, source, what differs) in ``$FRAISEQL_NBVAL_REPORT``, for a
report people can read instead of nbval's raw dump."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

REPORT_ENV = "FRAISEQL_NBVAL_REPORT"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    path = os.environ.get(REPORT_ENV)
    if not path or not report.failed or report.when != "call":
        return
    from nbval.plugin import IPyNbCell, NbCellError

    if not isinstance(item, IPyNbCell):
        return
    exc = call.excinfo.value if call.excinfo is not None else None
    entry: dict[str, Any] = {
        "notebook": str(item.path),
        "cell": item.cell_num + 1,
        "source": item.cell.source,
        "message": str(exc) if exc is not None else "failed",
    }
    if isinstance(exc, NbCellError) and str(exc) == "Cell outputs differ":
        entry["expected"] = _texts(item, item.cell.outputs)
        entry["got"] = _texts(item, item.test_outputs or [])
    elif isinstance(exc, NbCellError):
        entry["error"] = str(exc.inner_traceback or exc)
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(entry) + "\n")


def _texts(item: Any, outputs: list[Any]) -> dict[str, str]:
    """Each output's text by media type (sanitized as nbval compared them)."""
    texts: dict[str, list[str]] = {}
    for output in outputs:
        if output.get("output_type") == "stream":
            texts.setdefault("stream", []).append(item.sanitize(output.get("text", "")))
        elif output.get("output_type") == "error":
            texts.setdefault("error", []).append(
                item.sanitize(f"{output.get('ename')}: {output.get('evalue')}")
            )
        for mime, value in (output.get("data") or {}).items():
            if mime.startswith(("text/", "image/svg")) or mime.endswith("json"):
                text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
                texts.setdefault(mime, []).append(item.sanitize(text))
    return {mime: "\n".join(parts) for mime, parts in texts.items()}
