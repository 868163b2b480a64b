"""The runtime's modules import each other without a cycle: each builds only on what is below it.

The graph is read from the source with `ast`: every `gantx.*` import, at
module level and inside functions (a lazy import hides a cycle, it does not
remove it), of every module under src/gantx.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

SOURCE = Path(__file__).parents[1] / "src"


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def gantx_imports(path: Path, modules: set[str]) -> set[str]:
    """The gantx modules `path` imports anywhere in it; `from gantx.cli import bench` is gantx.cli.bench."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from .y import z
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names}
    return {name for name in found if name in modules}


def import_graph() -> dict[str, set[str]]:
    paths = sorted((SOURCE / "gantx").rglob("*.py"))
    modules = {module_name(path) for path in paths}
    return {module_name(path): gantx_imports(path, modules) - {module_name(path)} for path in paths}


def test_the_graph_is_read_as_python_imports_it():
    graph = import_graph()
    assert {"gantx.cli.options", "gantx.cli.progress", "gantx.planning", "gantx.video"} <= graph["gantx.cli.translate"]
    assert "gantx.cli.translate" in graph["gantx.cli"]  # from gantx.cli import ..., translate
    assert "gantx.cli" in graph["gantx.__main__"]  # an import inside a function counts


def test_the_runtime_has_no_import_cycle():
    graph = import_graph()
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        pytest.fail(f"import cycle: {' -> '.join(error.args[1])}")
