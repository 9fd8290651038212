"""The plugin boundary: built-in plugins use only the public API, no plugin imports another, the
core imports no plugin and has no import cycle; ``mmbench.run`` is the CLI's ``run``."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from mmbench.boundary import PUBLIC_MODULES, imports_of, private_imports

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = PUBLIC_MODULES


def _top_level_imports(path: Path) -> list[tuple[str, list[str], int]]:
    """``(module, names, line)`` of the imports outside functions (``if TYPE_CHECKING`` included)."""
    found = []

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.Import):
                found.extend((alias.name, [], node.lineno) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.append((node.module, [a.name for a in node.names], node.lineno))
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(getattr(node, "orelse", []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
    visit(ast.parse(path.read_text()).body)
    return found


def _all_imports(path: Path) -> list[tuple[str, list[str], int]]:
    """Every absolute import in the file, inside functions too."""
    return imports_of(path)


PLUGIN_FILES = sorted((ROOT / "plugins").glob("mmbench_*/**/*.py"))


@pytest.mark.parametrize("path", PLUGIN_FILES, ids=lambda p: str(p.relative_to(ROOT / "plugins")))
def test_built_in_plugins_import_only_public_names_and_no_other_plugin(path):
    own = path.relative_to(ROOT / "plugins").parts[0]
    problems = []
    for module, _, line in _all_imports(path):
        root = module.split(".")[0]
        if root.startswith("mmbench_") and root != own:
            problems.append(f"line {line}: imports another plugin ({module})")
    problems += private_imports(path)
    assert not problems, f"{path.name}: " + "; ".join(problems)


def test_public_names_resolve():
    for module in PUBLIC:
        imported = importlib.import_module(module)
        for name in imported.__all__:
            assert getattr(imported, name) is not None, f"{module}.{name}"


def test_the_core_imports_no_plugin():
    offenders = [f"{p.relative_to(ROOT)}:{line} {module}"
                 for p in sorted((ROOT / "mmbench").rglob("*.py"))
                 for module, _, line in _all_imports(p) if module.split(".")[0].startswith("mmbench_")]
    assert not offenders


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_core_has_no_import_cycle():
    files = {_module_name(p): p for p in (ROOT / "mmbench").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        edges = set()
        for module, names, _ in _top_level_imports(path):
            for target in (f"{module}.{n}" for n in names):
                if target in files:
                    edges.add(target)
            if module in files and not any(f"{module}.{n}" in files for n in names):
                edges.add(module)
        graph[name] = {e for e in edges if e != name and not name.startswith(e + ".")}
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph.get(nxt_ := node, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " → ".join([*stack[stack.index(nxt):], nxt]))
            if nxt not in state:
                visit(nxt, [*stack, nxt])
        state[nxt_] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_importing_mmbench_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, mmbench; mmbench.MethodSpec; assert 'torch' not in sys.modules and 'numpy' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_every_public_class_and_function_is_documented():
    """The API reference (docs/api.md, mkdocstrings) is generated from these docstrings: a public
    class or function without one would be an empty entry."""
    import importlib
    import inspect

    from mmbench.boundary import PUBLIC_MODULES

    missing = [f"{module}.{name}" for module in PUBLIC_MODULES for name in importlib.import_module(module).__all__
               if (inspect.isclass(obj := getattr(importlib.import_module(module), name)) or inspect.isfunction(obj))
               and not (obj.__doc__ or "").strip()]
    assert not missing, missing
