"""The house rules of docs/architecture.md, read from the source with ``ast``.

- every module of ``primekit`` has a layer, and imports only go down (or stay in their layer);
- the import graph, counting imports inside functions, has no circle;
- no module imports another module's private (``_name``) name;
- no module over 600 lines, no function over 100 lines.

``KNOWN_*`` lists hold what other work in progress has not fixed yet. They may only shrink: a test
fails when an entry is no longer needed, so the list stays honest.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "primekit"

# Lower numbers are lower layers. A module may import from its own layer or any lower one.
# The first matching prefix wins (longest prefixes first); see docs/architecture.md.
LAYERS: dict[str, int] = {
    # 0 foundation: checks, files, the numba kernels
    "primekit._validation": 0,
    "primekit.io": 0,
    "primekit._engine": 0,
    # packing a class into the bit rows the kernels walk (matrix or long-table codes)
    "primekit._packing": 0,
    "primekit._tag_major": 0,
    # the join report of samples and tags (the long-table search and the study share it)
    "primekit._join": 0,
    "primekit._torch_files": 0,
    # 1 data contracts: one container and the tables it is made of
    "primekit.split": 1,
    "primekit.tags": 1,
    "primekit.samples": 1,
    "primekit.mode_table": 1,
    "primekit.images": 1,
    # 2 search, run folder, jobs
    "primekit._class_search": 2,
    "primekit.search": 2,
    "primekit.run_folder": 2,
    "primekit.runs": 2,
    "primekit._jobs": 2,
    "primekit.statistics": 2,
    "primekit.stats": 2,
    "primekit._bitsets": 2,
    "primekit.search_ray": 2,
    # 3 the embedded data set (its evaluation runs the search)
    "primekit.toyworld": 3,
    # 4 models: open_clip, torch classifiers, image generators (they run image jobs)
    "primekit.clip": 4,
    "primekit.models": 4,
    "primekit.generate": 4,
    # 5 taggers (the CLIP tagger uses primekit.clip)
    "primekit.tagging": 5,
    # 6 analysis: metrics, baselines, report, plots
    "primekit.metrics": 6,
    "primekit.baselines": 6,
    "primekit.tag_stats": 6,
    "primekit.report": 6,
    "primekit._render": 6,
    "primekit.plots": 6,
    "primekit.sweeps": 6,
    # 7 applications: study, demo, explorer, command lines, the flat API
    "primekit.study": 7,
    "primekit.demo": 7,
    "primekit.explore": 7,
    "primekit._explore": 7,
    "primekit.notebooks": 7,
    "primekit.cli": 7,
    "primekit.search_cli": 7,
    "primekit.tagging.cli": 7,
    "primekit.tagging.cli_embed": 7,
    "primekit.tagging.cli_predict": 7,
    "primekit.study_build": 7,
    "primekit.study_cli": 7,
    "primekit.examples": 7,
    "primekit": 7,
}

MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 100

# Work of issue 18 still under way; each entry must still be needed (see the module docstring).
KNOWN_UPWARD: set[tuple[str, str]] = set()
KNOWN_CIRCLES: set[frozenset[str]] = set()
KNOWN_PRIVATE: set[tuple[str, str, str]] = {
    (src, dst, name)
    for (src, dst), names in {
        ("primekit.toyworld.clip", "primekit.toyworld.train"): "_prep _threads",
    }.items()
    for name in names.split()
}
KNOWN_LONG_MODULES: set[str] = set()
KNOWN_LONG_FUNCTIONS: set[str] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int | None:
    for prefix in sorted(LAYERS, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return LAYERS[prefix]
    return None


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str) -> list[tuple[str, str | None, int]]:
    """``(imported module, imported name or None, line)`` for every primekit import of ``module``,
    at top level or inside functions (``from pkg import sub`` counts as an import of ``pkg.sub``)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names if a.name.split(".")[0] == "primekit"]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, path.name == "__init__.py", node)
            if target.split(".")[0] != "primekit":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in MODULES:
                    out.append((sub, None, node.lineno))
                else:
                    out.append((target, alias.name, node.lineno))
    return out


def edges() -> list[tuple[str, str, str | None, int]]:
    return [(m, t, name, line) for m in MODULES for t, name, line in imports(m) if t != m]


def upward_imports() -> set[tuple[str, str]]:
    found = set()
    for src, dst, _, _ in edges():
        if dst in MODULES and layer_of(dst) > layer_of(src):
            found.add((src, dst))
    return found


def test_every_module_has_a_layer():
    assert [m for m in MODULES if layer_of(m) is None] == []


def test_imports_only_go_down():
    found = upward_imports()
    assert found - KNOWN_UPWARD == set(), "upward imports (see docs/architecture.md)"
    assert KNOWN_UPWARD - found == set(), "fixed: remove these from KNOWN_UPWARD"


def circles() -> set[frozenset[str]]:
    """Groups of modules that import each other in a circle (strongly connected components)."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for src, dst, _, _ in edges():
        if dst in MODULES:
            graph[src].add(dst)
    reach = {m: _reachable(graph, m) for m in graph}
    return {frozenset(m2 for m2 in reach[m] if m in reach[m2]) | {m} for m in graph if m in reach[m]}


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph[node])
    return seen


def test_the_import_graph_has_no_circle():
    found = circles()
    assert found - KNOWN_CIRCLES == set(), "circles, counting imports inside functions"
    assert KNOWN_CIRCLES - found == set(), "fixed: remove these from KNOWN_CIRCLES"


def test_no_private_name_crosses_modules():
    found = {
        (src, dst, name)
        for src, dst, name, _ in edges()
        if name is not None and name.startswith("_") and not name.startswith("__")
    }
    assert found - KNOWN_PRIVATE == set()
    assert KNOWN_PRIVATE - found == set(), "fixed: remove these from KNOWN_PRIVATE"


def _functions(tree: ast.AST, prefix: str):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield f"{prefix}.{node.name}", node
            yield from _functions(node, f"{prefix}.{node.name}")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}.{node.name}")


def long_functions() -> dict[str, int]:
    out = {}
    for module, path in MODULES.items():
        for name, node in _functions(ast.parse(path.read_text()), module):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            length = node.end_lineno - first + 1
            if length > MAX_FUNCTION_LINES:
                out[name] = length
    return out


def test_no_function_over_100_lines():
    found = long_functions()
    assert set(found) - KNOWN_LONG_FUNCTIONS == set(), found
    assert KNOWN_LONG_FUNCTIONS - set(found) == set(), "fixed: remove from KNOWN_LONG_FUNCTIONS"


def test_no_module_over_600_lines():
    found = {
        m for m, p in MODULES.items() if len(p.read_text().splitlines()) > MAX_MODULE_LINES
    }
    assert found - KNOWN_LONG_MODULES == set()
    assert KNOWN_LONG_MODULES - found == set(), "fixed: remove from KNOWN_LONG_MODULES"


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from .demo import DEFAULTS", {("primekit.search", "primekit.demo")}),
        ("def f():\n    from . import report\n", {("primekit.search", "primekit.report")}),
        ("import primekit.study", {("primekit.search", "primekit.study")}),
        ("from ._validation import check_int", set()),
    ],
)
def test_the_checker_sees_an_upward_import(monkeypatch, tmp_path, source, expected):
    """The rules are read from the source: an added upward import (even inside a function) fails."""
    fake = tmp_path / "primekit" / "search.py"
    fake.parent.mkdir()
    fake.write_text(source)
    monkeypatch.setitem(MODULES, "primekit.search", fake)
    assert {e for e in upward_imports() if e[0] == "primekit.search"} == expected


def test_the_architecture_page_names_every_module():
    """docs/architecture.md lists every top-level module and package in its layer table."""
    page = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    top = {m.split(".")[1] for m in MODULES if m.count(".") >= 1}
    missing = sorted(t for t in top if f"`{t}`" not in page and f"`{t}/`" not in page)
    assert missing == [], "add them to the layer table of docs/architecture.md"
