"""The package's modules import one another without cycles, and the core knows no front end.

Every import counts, also one inside a function (a lazy import is still a
dependency); only those under ``if TYPE_CHECKING:`` (annotations) do not. A
``from package import name`` depends on the package's ``__init__``; ``from
package.module import name`` on that module alone.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "fraiseql_nb"
# Front ends, by package: they may use the core; the core never imports them. The
# notebook regression tool (``fraiseql-nb notebooks``) is in notebook/: it drives notebooks.
FRONT_ENDS = ("fraiseql_nb.notebook", "fraiseql_nb.web", "fraiseql_nb.cli", "fraiseql_nb.__main__")
# The package root composes everything (it registers the notebook's formatters in IPython).
ROOT = "fraiseql_nb"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports, anywhere but under TYPE_CHECKING."""
    name = module_name(path)
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking(node):
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:  # "from pkg import module" imports the module
                child = f"{target}.{alias.name}"
                found.add(child if child in modules else target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in modules and m != name}


def graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, modules) for p in paths}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected group of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return groups


def test_the_graph_is_read_as_python_reads_it() -> None:
    edges = graph()
    assert "fraiseql_nb.schema.graphql" in edges["fraiseql_nb.query.parse"]
    assert "fraiseql_nb.schema.model" in edges["fraiseql_nb.schema.graphql"]
    assert "fraiseql_nb.result" in edges["fraiseql_nb.notebook.display"]  # inside a function
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_itself_back() -> None:
    assert cycles(graph()) == []


def test_the_core_imports_no_front_end() -> None:
    edges = graph()
    core = [m for m in edges if m != ROOT and not m.startswith(FRONT_ENDS)]
    reaching = {
        m: sorted(t for t in edges[m] if t.startswith(FRONT_ENDS)) for m in core if edges[m]
    }
    assert {m: t for m, t in reaching.items() if t} == {}


# The pure stages of the pipeline: they import no plane (no I/O) and no driver.
PURE = ("fraiseql_nb.language", "fraiseql_nb.query", "fraiseql_nb.sql", "fraiseql_nb.compute")
DRIVERS = ("psycopg_pool", "adbc_driver_postgresql", "adbc_driver_manager")


def test_the_pure_stages_do_no_io() -> None:
    edges = graph()
    pure = [m for m in edges if m.startswith(PURE)]
    assert "fraiseql_nb.compute.aggregate" in pure
    into_planes = {
        m: sorted(t for t in edges[m] if t.startswith("fraiseql_nb.planes")) for m in pure
    }
    assert {m: t for m, t in into_planes.items() if t} == {}
    drivers = {}
    for m in pure:
        path = PACKAGE.joinpath(*m.split(".")[1:])
        source = (path / "__init__.py" if path.is_dir() else path.with_suffix(".py")).read_text()
        used = [d for d in DRIVERS if f"import {d}" in source or f"from {d}" in source]
        if used:
            drivers[m] = used
    assert drivers == {}


# ---------------------------------------------------------------------- the layout

LAYOUT = REPO / "docs" / "architecture.md"


def _summary(doc: str | None) -> str:
    """A docstring's first paragraph on one line."""
    return " ".join((doc or "").split("\n\n")[0].split())


def package_map() -> dict[str, str]:
    """Each subpackage (``name/``) and top-level module (``name.py``) of the package, with
    the first paragraph of its docstring."""
    out = {}
    for path in sorted(PACKAGE.iterdir()):
        if path.is_dir() and (path / "__init__.py").exists():
            source, name = path / "__init__.py", f"{path.name}/"
        elif path.suffix == ".py" and path.stem not in ("__init__", "__main__"):
            source, name = path, path.name
        else:
            continue
        out[name] = _summary(ast.get_docstring(ast.parse(source.read_text(encoding="utf-8"))))
    return out


def documented_map() -> dict[str, str]:
    """docs/architecture.md's "The packages" list: ``- **`name`** — summary`` items."""
    text = LAYOUT.read_text(encoding="utf-8")
    section = text.split("## The packages", 1)[1].split("\n## ", 1)[0]
    items = re.findall(r"^- \*\*`([^`]+)`\*\* — (.+?)(?=^- \*\*|\Z)", section, re.M | re.S)
    return {name: " ".join(body.split()) for name, body in items}


def test_the_architecture_doc_maps_every_package_by_its_docstring() -> None:
    """``ls fraiseql_nb`` reads like docs/architecture.md: every subpackage and top-level
    module is listed there, in its own docstring's words, and nothing else is."""
    assert "language/" in package_map() and "session.py" in package_map()
    assert documented_map() == package_map()


def test_the_top_level_is_the_public_surface() -> None:
    """Loose modules at the top are the public surface and its composition only; the
    rest lives in packages by layer."""
    loose = {n for n in package_map() if n.endswith(".py")}
    assert loose == {
        "charts.py",
        "cli.py",
        "connecting.py",
        "errors.py",
        "result.py",
        "session.py",
    }


# Only the composition (the root, opening a session) and the front ends reach the local
# tooling: the embedded server and the demo data are not part of the core.
LOCAL = "fraiseql_nb.local"
COMPOSITION = (ROOT, "fraiseql_nb.connecting")


def test_the_core_imports_no_local_tooling() -> None:
    edges = graph()
    reaching = {
        m: sorted(t for t in edges[m] if t.startswith(LOCAL))
        for m in edges
        if m not in COMPOSITION and not m.startswith((*FRONT_ENDS, LOCAL))
    }
    assert {m: t for m, t in reaching.items() if t} == {}
    assert any(t.startswith(LOCAL) for t in edges["fraiseql_nb.connecting"])
