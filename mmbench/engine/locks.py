"""One process per run: a run holds an exclusive lock on its run id in its results folder, so two
identical commands started at once into the same ``--out`` never train side by side into one
checkpoint file."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from mmbench.errors import MMBenchError


@contextlib.contextmanager
def run_lock(out: Path, run_id: str) -> Iterator[None]:
    """Hold ``<out>/.locks/<run_id>.lock`` for the block; if another process holds it, one line
    saying the run is in progress."""
    folder = Path(out) / ".locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{run_id}.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MMBenchError(
                f"run {run_id} is already in progress in another process writing to {out}; wait for it to "
                "finish (running the same command again then finds its record), or choose another --out."
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
