"""nbval runs these notebooks as tests (see README): their kernels get a server of their own.

``%fraiseql connect --demo`` and ``fq.connect()`` use the embedded server of
``$FRAISEQL_HOME``; here that is a fresh temporary folder, started before
the first notebook and deleted at the end, so the notebooks never touch a
user's data and run the same on every machine.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from fraiseql_nb import embedded

_home: Path | None = None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    global _home
    if _home is not None or item.path.suffix != ".ipynb":
        return
    # A short path: unix socket paths are limited to ~100 bytes.
    _home = Path(tempfile.mkdtemp(prefix="fqnb-", dir="/tmp" if os.path.isdir("/tmp") else None))
    atexit.register(shutil.rmtree, _home, True)
    for name in ("FRAISEQL_DSN", "FRAISEQL_CONFIG"):
        os.environ.pop(name, None)
    os.environ["FRAISEQL_HOME"] = str(_home)  # inherited by the kernels nbval starts
    embedded.start(_home, cleanup="delete")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop the notebooks' server now: the kernels that also used it have exited, and
    left to itself it would run on (its folder deleted) until it noticed, minutes later."""
    if _home is not None:
        embedded.stop(_home)
