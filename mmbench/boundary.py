"""The public API a plugin may import, and a check of what a plugin's code imports beyond it.

Everything a plugin may use is exported (``__all__``) by :data:`PUBLIC_MODULES`; the rest of
``mmbench`` is internal and may change in any release. ``mmbench check-plugin`` warns about
imports outside it (a plugin still works, until the internals move).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

PUBLIC_MODULES = ("mmbench", "mmbench.engine", "mmbench.models", "mmbench.testing")


def imports_of(path: Path) -> list[tuple[str, list[str], int]]:
    """``(module, imported names, line)`` of every absolute import in ``path``, inside functions too."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, [], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, [a.name for a in node.names], node.lineno))
    return found


def private_imports(path: Path) -> list[str]:
    """One ``line N: ...`` entry per import of ``path`` that is not part of the public API: a
    private module of mmbench, or a name a public module does not export."""
    problems = []
    for module, names, line in imports_of(path):
        if module.split(".")[0] != "mmbench":
            continue
        if module not in PUBLIC_MODULES:
            problems.append(f"line {line}: imports the private module {module}")
            continue
        exported = set(getattr(importlib.import_module(module), "__all__", ()))
        problems += [f"line {line}: {module}.{name} is not public" for name in names if name not in exported]
    return problems
