"""Per-epoch checkpoints, written atomically and loaded with ``weights_only=True``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mmbench.errors import MMBenchError
from mmbench.io import atomic_write

CHECKPOINT_FORMAT = 1


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    state = {"format": CHECKPOINT_FORMAT, **state}
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint; a truncated or foreign file is a one-line error saying what to do."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise MMBenchError(
            f"checkpoint {path} is corrupt or truncated ({type(exc).__name__}); "
            "delete it to start the run from scratch."
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise MMBenchError(f"{path} is not an mmbench checkpoint (format {CHECKPOINT_FORMAT}); delete it to start over.")
    return state
