"""Regression notebooks: ``fraiseql-nb notebooks test|refresh PATH...``.

A notebook written with the toolkit doubles as a regression test: its saved
outputs are what the next run must show. ``refresh`` runs each notebook top
to bottom in a fresh kernel in regression mode (``$FRAISEQL_REGRESSION=1``:
no durations, byte counts, cache hits or progress; loads waited for, so the
plane that answers does not depend on timing) and saves the outputs — never
those of a notebook whose run failed. ``test`` runs pytest with nbval, the
shipped sanitize profile and regression mode, and reports each cell whose
outputs changed with a short diff instead of nbval's dump.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fraiseql_nb.config import ENV_REGRESSION
from fraiseql_nb.errors import ConfigError

__all__ = ["PROFILE", "check", "find_notebooks", "refresh"]

PROFILE = Path(__file__).parent / "nbval_sanitize.cfg"
_MAX_DIFF_LINES = 40

Out = Callable[[str], None]


def find_notebooks(paths: Sequence[str | Path]) -> list[Path]:
    """The notebooks named, and those under the folders named (checkpoints left out).

    Raises:
        ConfigError: a path does not exist or is not a notebook, or there are none.
    """
    found: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        elif path.is_file() and path.suffix == ".ipynb":
            found.append(path)
        elif path.exists():
            raise ConfigError(f"{given}: not a notebook (.ipynb) or a folder", key="path")
        else:
            raise ConfigError(f"{given}: no such file or folder", key="path")
    if not found:
        raise ConfigError(f"no notebooks in {', '.join(map(str, paths))}", key="path")
    return list(dict.fromkeys(p.resolve() for p in found))


def refresh(paths: Sequence[str | Path], out: Out = print) -> int:
    """Run each notebook in regression mode and save its outputs; 1 if any failed."""
    _require("nbclient", "nbformat")
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    notebooks = find_notebooks(paths)
    failed = 0
    for path in notebooks:
        started = time.perf_counter()
        nb = nbformat.read(path, as_version=4)
        # Widget state is kept (the explorer's controls render on reopening); results
        # themselves are HTML and need none.
        client = NotebookClient(
            nb,
            timeout=600,
            resources={"metadata": {"path": str(path.parent)}},
            store_widget_state=True,
        )
        try:
            client.execute(env=_regression_env())  # the kernel's environment
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
            failed += 1
            out(f"{_name(path)}: {_failed_cell(nb)}: {_first_line(exc)} (not saved)")
            continue
        nbformat.write(nb, path)
        out(f"{_name(path)}: refreshed ({time.perf_counter() - started:.1f} s)")
    return 1 if failed else 0


def check(paths: Sequence[str | Path], out: Out = print) -> int:
    """Run the notebooks under nbval in regression mode; 0 when every output is as saved."""
    _require("pytest", "nbval")
    notebooks = find_notebooks(paths)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fqnbtest-") as tmp:
        report = Path(tmp) / "failures.jsonl"
        config = Path(tmp) / "pytest.ini"
        config.write_text("[pytest]\n")  # the user's own pytest settings stay out of it
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-c",
            str(config),
            "--rootdir",
            str(Path(os.path.commonpath([str(p.parent) for p in notebooks]))),
            "-p",
            "no:cacheprovider",
            "-p",
            "fraiseql_nb.notebook.nbval_report",
            "--nbval",
            "--nbval-current-env",
            "--nbval-sanitize-with",
            str(PROFILE),
            *map(str, notebooks),
        ]
        env = _regression_env(report)
        done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
        failures = [
            json.loads(line)
            for line in (report.read_text("utf-8").splitlines() if report.exists() else [])
        ]
    elapsed = time.perf_counter() - started
    if done.returncode == 0:
        out(f"{len(notebooks)} notebook(s): every output as saved ({elapsed:.1f} s)")
        return 0
    if not failures:  # pytest itself failed: collection, a plugin, a notebook unreadable
        tail = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        out("notebooks test failed: " + (tail[-1] if tail else f"pytest exit {done.returncode}"))
        return 1
    for failure in failures:
        out(_describe(failure))
    broken = len({f["notebook"] for f in failures})
    out(f"{broken} of {len(notebooks)} notebook(s) differ from their saved outputs")
    return 1


def _require(*modules: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(
            f"regression notebooks need {' and '.join(missing)}:"
            " pip install 'fraiseql-nb[notebook]'",
            key="notebook",
        )


# ------------------------------------------------------------------ reporting


def _describe(failure: dict[str, Any]) -> str:
    where = f"{_name(Path(failure['notebook']))}, code cell {failure['cell']}"
    source = _first_source_line(failure["source"])
    if "expected" not in failure:
        error = failure.get("error") or failure["message"]
        return f"{where} ({source}): failed to run: {_last_error_line(error)}"
    lines = [f"{where} ({source}): outputs differ"]
    expected, got = failure["expected"], failure["got"]
    for mime in _order(set(expected) | set(got)):
        before, after = expected.get(mime, ""), got.get(mime, "")
        if before == after:
            continue
        diff = list(
            difflib.unified_diff(
                _lines(before, mime), _lines(after, mime), "saved", "now", lineterm="", n=1
            )
        )
        lines.append(f"  {mime}:")
        lines += [f"    {d}" for d in diff[2:][:_MAX_DIFF_LINES]]
        if len(diff) - 2 > _MAX_DIFF_LINES:
            lines.append(f"    … {len(diff) - 2 - _MAX_DIFF_LINES} more lines")
        break  # the most readable representation that differs says it
    return "\n".join(lines)


def _order(mimes: set[str]) -> list[str]:
    first = ["text/plain", "stream", "error", "text/html"]
    return [m for m in first if m in mimes] + sorted(mimes - set(first))


def _lines(text: str, mime: str) -> list[str]:
    if mime == "text/html" or "svg" in mime:
        text = re.sub(r">\s*<", ">\n<", text)  # one tag a line: a diff that can be read
    return text.splitlines()


def _first_source_line(source: str) -> str:
    line = next((s.strip() for s in source.splitlines() if s.strip()), "")
    return line if len(line) <= 60 else line[:57] + "..."


def _last_error_line(text: str) -> str:
    clean = re.sub(r"\x1b\[[0-9;]*m", "", text)
    lines = [line.strip() for line in clean.splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"^[\w.]*(Error|Exception)\b", line)]
    return (errors or lines or ["(no message)"])[-1]


def _failed_cell(nb: Any) -> str:
    """The cell whose run failed: the one holding an error output that is not allowed."""
    code = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        code += 1
        allowed = "raises-exception" in cell.get("metadata", {}).get("tags", [])
        if not allowed and any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return f"code cell {code} ({_first_source_line(cell.source)}) failed"
    return "the run failed"


def _first_line(exc: BaseException) -> str:
    evalue = getattr(exc, "evalue", None)
    ename = getattr(exc, "ename", None)
    if ename and evalue is not None:
        return f"{ename}: {str(evalue).splitlines()[0] if str(evalue) else ''}".rstrip(": ")
    return _last_error_line(str(exc)) if str(exc) else type(exc).__name__


def _name(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _regression_env(report: Path | None = None) -> dict[str, str]:
    """This process's environment with ``$FRAISEQL_REGRESSION=1`` (and the report file):
    what the kernels started for the notebooks inherit."""
    env = {**os.environ, ENV_REGRESSION: "1"}
    if report is not None:
        from fraiseql_nb.notebook.nbval_report import REPORT_ENV

        env[REPORT_ENV] = str(report)
    return env
