"""The suite's own guards fail a runaway test and let the next one run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

RUNAWAY = """
import time

def test_runaway():
    hoard = []
    while True:  # about 200 MB a second, without end
        hoard.append(b"x" * (20 * 2**20))
        time.sleep(0.1)

def test_hang():
    time.sleep(60)

def test_next():
    assert 1 + 1 == 2
"""


def test_a_runaway_test_fails_at_the_ceiling_and_a_hung_one_at_the_timeout(
    tmp_path: Path,
) -> None:
    (tmp_path / "test_runaway.py").write_text(RUNAWAY, encoding="utf-8")
    env = {**os.environ, "FRAISEQL_TEST_MAX_RSS_MB": "400", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.guards",
            "-p",
            "no:cacheprovider",
            "--timeout",
            "6",
            "-o",
            "addopts=",
            str(tmp_path / "test_runaway.py"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert "MemoryCeilingError" in out and "passed 400 MB" in out, out
    assert "Timeout (>6.0s) from pytest-timeout" in out, out
    assert "2 failed, 1 passed" in out, out
