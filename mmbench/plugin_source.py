"""Content hashes of plugin code, so that edited code never reuses the records of the old code.

A plugin loaded from a file or a module path (``--plugin``, ``MMBENCH_PLUGINS``) has no version
that changes when it is edited, and neither has an editable install (``pip install -e``) of a
distribution. Their source is hashed instead: the file, or every file of the package the plugin
module belongs to (``__pycache__`` and compiled files excluded). The hash enters the run id and
the record (:attr:`mmbench.records.MethodInfo.source_hash`).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from pathlib import Path
from types import ModuleType
from typing import Any

_SKIPPED_SUFFIXES = (".pyc", ".pyo")


def _package_files(module: ModuleType) -> tuple[Path, list[Path]]:
    """The folder to hash relative to and the files to hash for ``module``."""
    file = getattr(module, "__file__", None)
    if not file:
        return Path("."), []
    path = Path(file).resolve()
    if path.name != "__init__.py":
        return path.parent, [path]
    root = path.parent
    files = sorted(
        p for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(_SKIPPED_SUFFIXES)
    )
    return root, files


def source_hash(module: Any) -> str | None:
    """sha256 (first 16 hex digits) of the plugin module's source file or package; ``None`` for
    an object that is not a module with source on disk."""
    if not isinstance(module, ModuleType):
        return None
    root, files = _package_files(module)
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


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
