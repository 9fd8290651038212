"""Content hashes of plugin code, so that edited code never reuses the records or caches of the old code.

A plugin loaded from a file or a module path (``--plugin``, ``MMBENCH_PLUGINS``) has no version
that changes when it is edited, and neither has an editable install (``pip install -e``) of a
distribution. Their source is hashed instead, and the hash enters the run id, the data cache key
and the record (:attr:`mmbench.records.MethodInfo.source_hash`). What is hashed is the code that
runs:

* a ``--plugin`` **file**: the file, plus every module it imports from its own folder
  (``from common import x`` next to it), followed transitively;
* a ``--plugin`` **module** (``pkg.plugin``): every file of its top-level package (or the module
  file when it is not in a package), plus the modules and packages it imports from the same
  folder on ``sys.path``;
* an **editable install**: every file of the distribution's package folders — the top-level
  packages named by any of its entry points (every group, console scripts included) or by
  ``top_level.txt``, plus those they import from the same source folders — whatever module the
  mmbench entry point names. Every plugin of one editable distribution has that one hash.

Package folders are hashed whole (data files included: a decoder may read a table next to it);
``__pycache__`` and compiled files are skipped. A released (non-editable) install is identified by
its version instead.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

_SKIPPED_SUFFIXES = (".pyc", ".pyo")
_INSTALL_FOLDERS = {"site-packages", "dist-packages"}
"""Imports are never followed into installed packages (numpy, torch, ...): they have versions."""


def _folder_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(_SKIPPED_SUFFIXES)]


_IMPORT = re.compile(rb"^[ \t]*(?:from[ \t]+([A-Za-z_]\w*)[\w.]*[ \t]+import|import[ \t]+([A-Za-z_][\w., \t]*))", re.M)


def _imported_top_names(file: Path) -> set[str]:
    """Top-level module names ``file`` imports absolutely (relative imports stay in their package).
    A line scan, not a parse: an import-like line in a docstring can only add a name, which is
    then hashed only if it is a module beside the plugin."""
    try:
        text = file.read_bytes()
    except OSError:
        return set()
    names: set[str] = set()
    for match in _IMPORT.finditer(text):
        if match.group(1):
            names.add(match.group(1).decode())
        else:
            for part in match.group(2).decode().split(","):
                name = part.strip().split(" ")[0].split(".")[0]
                if name.isidentifier():
                    names.add(name)
    return names


def _unit(root: Path, name: str) -> list[Path] | None:
    """The files of top-level module ``name`` under ``root``: a package folder whole, or one file."""
    package, module = root / name, root / f"{name}.py"
    if (package / "__init__.py").is_file():
        return _folder_files(package)
    if module.is_file():
        return [module]
    return None


def code_files(start: Iterable[Path], roots: Iterable[Path]) -> list[Path]:
    """``start`` plus every module or package they import, transitively, found under ``roots``
    (the standard library and installed packages are outside them and never followed)."""
    roots = [r for r in (Path(r).resolve() for r in roots) if r.name not in _INSTALL_FOLDERS]
    files: set[Path] = set()
    pending = [Path(p).resolve() for p in start]
    seen_names: set[str] = set()
    while pending:
        file = pending.pop()
        if file in files:
            continue
        files.add(file)
        if file.suffix != ".py":
            continue
        for name in sorted(_imported_top_names(file) - seen_names - set(sys.stdlib_module_names)):
            seen_names.add(name)
            for root in roots:
                unit = _unit(root, name)
                if unit is not None:
                    pending.extend(p.resolve() for p in unit)
                    break
    return sorted(files)


def _digest(files: Iterable[Path]) -> str | None:
    """sha256 (first 16 hex digits) over the files' names and contents, in a fixed order."""
    files = sorted(set(files), key=lambda p: p.as_posix())
    if not files:
        return None
    anchor = Path(*_common_parts(files))
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(anchor).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _common_parts(files: list[Path]) -> tuple[str, ...]:
    """The folder all ``files`` live under (names are hashed relative to it: moving a checkout
    keeps its hash)."""
    parts = [p.parent.parts for p in files]
    common: list[str] = []
    for level in zip(*parts, strict=False):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return tuple(common)


def _module_start(module: ModuleType) -> tuple[list[Path], list[Path]]:
    """The files to start from and the folders to follow imports in, for a plugin module."""
    file = getattr(module, "__file__", None)
    if not file:
        return [], []
    path = Path(file).resolve()
    top = module.__name__.split(".")[0]
    if module.__name__.startswith("mmbench_local_plugin_"):  # a --plugin file
        return [path], [path.parent]
    top_module = sys.modules.get(top)
    top_file = getattr(top_module, "__file__", None) if top_module is not None else None
    if top_file and Path(top_file).name == "__init__.py":
        package = Path(top_file).resolve().parent
        return _folder_files(package), [package.parent]
    return [path], [path.parent]


def plugin_files(module: Any) -> list[Path]:
    """The source files of a file / module plugin's code (the files :func:`source_hash` covers)."""
    if not isinstance(module, ModuleType):
        return []
    start, roots = _module_start(module)
    return [p for p in code_files(start, roots) if p.suffix == ".py"] if start else []


def source_hash(module: Any) -> str | None:
    """Hash of the code a file / module plugin runs (see the module docstring); ``None`` for an
    object that is not a module with source on disk."""
    if not isinstance(module, ModuleType):
        return None
    start, roots = _module_start(module)
    return _digest(code_files(start, roots)) if start else None


def _top_level_names(dist: importlib.metadata.Distribution) -> set[str]:
    names = {ep.value.split(":")[0].split(".")[0].strip() for ep in dist.entry_points}
    try:
        listed = dist.read_text("top_level.txt") or ""
    except (OSError, ValueError):
        listed = ""
    names.update(line.strip() for line in listed.splitlines() if line.strip())
    return {n for n in names if n.isidentifier()}


def _source_roots(dist: importlib.metadata.Distribution, names: Iterable[str]) -> list[Path]:
    """The folders an editable install puts on ``sys.path`` (its ``.pth`` lines) plus the parents
    of its top-level packages as Python finds them."""
    roots: list[Path] = []
    for file in dist.files or []:
        if str(file).endswith(".pth"):
            try:
                text = Path(str(file.locate())).read_text()
            except OSError:
                continue
            roots.extend(Path(line.strip()) for line in text.splitlines()
                         if line.strip() and not line.startswith(("#", "import")) and Path(line.strip()).is_dir())
    import importlib.util

    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is not None and spec.origin and spec.origin not in ("built-in", "frozen"):
            origin = Path(spec.origin).resolve()
            roots.append(origin.parent.parent if origin.name == "__init__.py" else origin.parent)
    return list(dict.fromkeys(r.resolve() for r in roots))


def distribution_hash(dist: importlib.metadata.Distribution) -> str | None:
    """Hash of every file of an (editable) distribution's package folders (see the module
    docstring). :meth:`mmbench.plugins.Registry.load` computes it once per distribution."""
    names = _top_level_names(dist)
    roots = _source_roots(dist, names)
    start: list[Path] = []
    for name in sorted(names):
        start.extend(next((u for u in (_unit(root, name) for root in roots) if u is not None), []))
    return _digest(code_files(start, roots))


def is_editable(dist: importlib.metadata.Distribution | None) -> bool:
    """Whether ``dist`` is an editable install (PEP 660 ``direct_url.json``)."""
    if dist is None:
        return False
    try:
        text = dist.read_text("direct_url.json")
    except (OSError, ValueError):
        return False
    if not text:
        return False
    try:
        return bool(json.loads(text).get("dir_info", {}).get("editable", False))
    except ValueError:
        return False
