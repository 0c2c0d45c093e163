"""Regression notebooks end to end: ``fraiseql-nb notebooks refresh|test`` on a notebook
written against a database of its own, and on the project's notebooks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psycopg
import pytest

from fraiseql_nb.local import embedded
from tests.conftest import ENV_STORE, REPO, short_tempdir, shown

CELLS = [
    "%load_ext fraiseql_nb\nimport os\ndsn = os.environ['NB_DSN']\n%fraiseql connect $dsn",
    "%%fraiseql\n{ users(limit: 3) { id name } }",
    "%%fraiseql -o totals\n{ sales_aggregate(groupBy: {region: true}) { region count revenue_sum } }",
    "%%fraiseql\n{ sales_window(orderBy: [{id: ASC}], limit: 4) { id revenue"
    " running_sum(field: revenue) } }",
    "totals.chart()",
]


def notebooks(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fraiseql_nb", "notebooks", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        check=False,
    )


@pytest.fixture
def notebook(tiny: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NB_DSN", tiny)  # the kernels inherit it
    monkeypatch.setenv(ENV_STORE, str(tmp_path / "store"))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    path = tmp_path / "work" / "sales.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, path)
    return path


def test_a_refreshed_notebook_tests_the_same_run_after_run(
    notebook: Path, tiny: str, tmp_path: Path
) -> None:
    folder = notebook.parent
    done = notebooks("refresh", str(folder), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sales.ipynb: refreshed" in done.stdout
    saved = nbformat.read(notebook, as_version=4)
    badge = saved.cells[2].outputs[0]["data"]["text/plain"].splitlines()[0]
    assert badge == "sales_aggregate: arrow · 5 rows"  # no duration, bytes or cache hit
    store = tmp_path / "store"
    for run in range(5):
        if run in (0, 2):  # an empty arrow store, then a warm one (left by the run before)
            shutil.rmtree(store, ignore_errors=True)
        done = notebooks("test", str(notebook), cwd=tmp_path)
        assert done.returncode == 0, f"run {run + 1}: {done.stdout}{done.stderr}"
        assert "1 notebook(s): every output as saved" in done.stdout

    # New data: the test fails, naming the cell and showing the count that changed.
    with psycopg.connect(tiny, autocommit=True) as conn:
        region = conn.execute(
            "SELECT dimensions->>'region' FROM tf_sales GROUP BY 1 ORDER BY 1 LIMIT 1"
        ).fetchone()
        assert region is not None
        before = conn.execute(
            "SELECT count(*) FROM tf_sales WHERE dimensions->>'region' = %s", region
        ).fetchone()
        conn.execute(
            "INSERT INTO tf_sales SELECT id + 1000000, customer_id, product_id, occurred_at,"
            " revenue, quantity, cost, discount, dimensions, date_info FROM tf_sales"
            " WHERE dimensions->>'region' = %s ORDER BY id LIMIT 1",
            region,
        )
    assert before is not None
    done = notebooks("test", str(folder), cwd=tmp_path)
    assert done.returncode == 1
    report = done.stdout
    assert "sales.ipynb, code cell 3 (%%fraiseql -o totals): outputs differ" in report, report
    assert region[0] in report
    assert f"{before[0]:,}" in report and f"{before[0] + 1:,}" in report, report
    assert "1 of 1 notebook(s) differ from their saved outputs" in report
    assert "Traceback" not in report + done.stderr

    done = notebooks("refresh", str(notebook), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    done = notebooks("test", str(notebook), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_refresh_keeps_a_notebook_whose_run_failed(notebook: Path, tmp_path: Path) -> None:
    nb = nbformat.read(notebook, as_version=4)
    nb.cells[1].source = "%%fraiseql\n{ users(limit: 3) { id nme } }"
    nbformat.write(nb, notebook)
    before = notebook.read_bytes()
    done = notebooks("refresh", str(notebook), cwd=tmp_path)
    assert done.returncode == 1
    line = done.stdout.strip()
    assert line.startswith("work/sales.ipynb: code cell 2 (%%fraiseql) failed"), line
    assert "nme" in line and "(not saved)" in line and "\n" not in line
    assert notebook.read_bytes() == before


def test_an_unreachable_database_is_one_line_naming_the_cell(
    notebook: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NB_DSN", "postgresql://nobody:secret@127.0.0.1:1/none")
    done = notebooks("refresh", str(notebook), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout.count("\n") == 1 and "code cell 1" in done.stdout
    assert "cannot connect" in done.stdout and "secret" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("path", "message"),
    [("missing", "missing: no such file or folder"), ("empty", "no notebooks in empty")],
)
def test_paths_without_notebooks_are_one_line_errors(
    tmp_path: Path, path: str, message: str
) -> None:
    (tmp_path / "empty").mkdir()
    for action in ("test", "refresh"):
        done = notebooks(action, path, cwd=tmp_path)
        assert (done.returncode, done.stdout) == (1, "")
        assert done.stderr == f"fraiseql-nb: error: {message}\n"


def test_the_project_notebooks_match_their_saved_outputs() -> None:
    """The README's test command runs the project's notebooks through the same command a
    user runs on theirs, against an embedded server of their own."""
    home = short_tempdir("fqnb-")
    env_before = {k: os.environ.get(k) for k in ("FRAISEQL_HOME", "FRAISEQL_DSN")}
    os.environ["FRAISEQL_HOME"] = str(home)
    os.environ.pop("FRAISEQL_DSN", None)
    started = time.perf_counter()
    try:
        done = notebooks("test", "notebooks", cwd=REPO)
    finally:
        embedded.stop(home)
        for key, value in env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    print(f"fraiseql-nb notebooks test notebooks/: {time.perf_counter() - started:.1f} s")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("3 notebook(s): every output as saved")


def test_regression_mode_shows_what_does_not_vary(ip: object, tiny: str) -> None:
    from tests.notebook.conftest import run

    run(ip, "%config FraiseQL.regression = True")  # type: ignore[arg-type]
    try:
        ip.user_ns["tiny_dsn"] = tiny  # type: ignore[attr-defined]
        run(ip, "%fraiseql connect $tiny_dsn")  # type: ignore[arg-type]
        # An empty store and background loads on: regression mode waits for the load.
        result = run(ip, "%fraiseql { sales_aggregate { count revenue_sum } }")  # type: ignore[arg-type]
        assert result.backend == "arrow"
        bundle = shown(result)
        assert bundle["text/plain"].splitlines()[0] == "sales_aggregate: arrow · 1 row"
        html = bundle["text/html"]
        assert " ms" not in html and "cache" not in html
        assert "computed by the arrow plane (Polars)" in html  # not what it loaded: that varies
        assert isinstance(result.df["revenue_sum"][0], float)  # the data itself untouched
        run(ip, "%config FraiseQL.float_digits = 30")  # type: ignore[arg-type]  # refused
        assert ip.magics_manager.registry["FraiseQL"].float_digits == 12  # type: ignore[attr-defined]
    finally:
        # The refused value stays in the shell's config: a later FraiseQL() would read it.
        ip.config.FraiseQL.pop("float_digits", None)  # type: ignore[attr-defined]
        run(ip, "%config FraiseQL.regression = False")  # type: ignore[arg-type]
        ip.user_ns["demo_dsn_again"] = ip.user_ns["demo_dsn"]  # type: ignore[attr-defined]
        run(ip, "%fraiseql connect $demo_dsn_again")  # type: ignore[arg-type]
    last = run(ip, "%fraiseql { users(limit: 1) { id } }")  # type: ignore[arg-type]
    assert " ms · " in shown(last)["text/plain"].splitlines()[0]
