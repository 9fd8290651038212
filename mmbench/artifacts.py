"""Content-addressed artifact cache (trained models that other runs depend on, e.g. teachers).

An artifact's key is the run id of the run that produces it: a hash of task + version, dataset
revision, method + plugin version, resolved config, recipe, profile and seed. The cache lives
under ``$MMBENCH_HOME/artifacts``. The runner trains a missing dependency while holding an
exclusive file lock on its key (:meth:`ArtifactCache.lock`), so two processes that need the same
teacher train it once: the second waits and then loads it. ``mmbench sweep`` runs dependencies
as jobs of their own before the runs that need them; the lock is the safety net.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from mmbench.engine.checkpoint import read_torch, write_torch
from mmbench.files import atomic_write_json, mmbench_home


class ArtifactCache:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else mmbench_home() / "artifacts"

    def path(self, key: str) -> Path:
        return self.root / f"{key}.pt"

    @contextlib.contextmanager
    def lock(self, key: str, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
        """Hold the exclusive lock of ``key`` (blocks while another process holds it, after
        calling ``on_wait``: a waiting run says what it waits for)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f"{key}.lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait()
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def load(self, key: str) -> dict[str, torch.Tensor] | None:
        path = self.path(key)
        if not path.exists():
            return None
        return read_torch(path, "artifact", "delete it to retrain the model it holds.")

    def store(self, key: str, state: dict[str, torch.Tensor], meta: dict[str, Any] | None = None) -> None:
        """Write ``state`` under ``key`` (atomically: a reader never sees half a file)."""
        write_torch(self.path(key), state, remedy=f"free some space under {self.root} or set MMBENCH_HOME.")
        if meta is not None:
            atomic_write_json(self.root / f"{key}.json", meta)

    def status(self, key: str) -> str:
        """``missing``, ``cached`` (its stored checksum verified, as a run verifies it) or
        ``corrupt: ...`` with what is wrong and the remedy."""
        from mmbench.engine.checkpoint import checksum_problem

        path = self.path(key)
        if not path.exists():
            return "missing"
        problem = checksum_problem(path)
        return "cached" if problem is None else f"corrupt: {path} {problem}; delete it to retrain"

    def digest(self, key: str) -> str | None:
        """sha256 of the stored artifact's file, or ``None`` when there is none."""
        path = self.path(key)
        if not path.exists():
            return None
        sha = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
        return sha.hexdigest()

    def get_or_create(
        self, key: str, produce: Callable[[], dict[str, torch.Tensor]], meta: dict[str, Any] | None = None
    ) -> tuple[dict[str, torch.Tensor], bool]:
        """The state dict stored under ``key``, produced (once, under lock) if missing.
        Returns ``(state, was_cached)``."""
        cached = self.load(key)
        if cached is not None:
            return cached, True
        with self.lock(key):
            cached = self.load(key)  # another process may have produced it while we waited
            if cached is not None:
                return cached, True
            state = produce()
            self.store(key, state, meta)
            return state, False
