"""Re-run the regression notebooks and save their outputs (after a deliberate change).

    pip install -e ".[notebook]" && python scripts/refresh_notebooks.py [NOTEBOOK ...]

Each notebook runs top to bottom in a fresh kernel against a temporary
embedded server (as under nbval), then is saved without widget state: the
committed outputs are the text and HTML that nbval compares and that
GitHub and nbconvert show. Review the diff before committing it.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from fraiseql_nb import embedded

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def main(paths: list[str]) -> int:
    targets = [Path(p) for p in paths] or sorted(NOTEBOOKS.glob("*.ipynb"))
    home = Path(tempfile.mkdtemp(prefix="fqnb-", dir="/tmp" if os.path.isdir("/tmp") else None))
    os.environ["FRAISEQL_HOME"] = str(home)
    for name in ("FRAISEQL_DSN", "FRAISEQL_CONFIG"):
        os.environ.pop(name, None)
    try:
        embedded.start(home)
        for path in targets:
            print(f"running {path.name} …", flush=True)
            nb = nbformat.read(path, as_version=4)
            NotebookClient(
                nb, timeout=600, resources={"metadata": {"path": str(path.parent)}}
            ).execute()
            nb.metadata.pop("widgets", None)
            nbformat.write(nb, path)
    finally:
        embedded.stop(home)
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
