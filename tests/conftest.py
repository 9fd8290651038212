"""Shared fixtures. Every test runs offline, with its caches in a per-session temp directory."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# Set before anything imports datasets / huggingface_hub (they read these once at import).
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="mmbench-tests-"))
os.environ["MMBENCH_HOME"] = str(_SESSION_HOME / "home")
os.environ["HF_HOME"] = str(_SESSION_HOME / "hf")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.pop("MMBENCH_PLUGINS", None)

#: Overrides that make a synthetic run take seconds.
FAST = [
    "--set", "recipe.epochs=2", "--set", "recipe.limit_train=192", "--set", "recipe.limit_eval=96",
    "--set", "recipe.width=8", "--set", "recipe.batch_size=32",
]
FAST_OVERRIDES = {"recipe.epochs": "2", "recipe.limit_train": "192", "recipe.limit_eval": "96",
                  "recipe.width": "8", "recipe.batch_size": "32"}


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: str | Path | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m mmbench ARGS`` in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "mmbench", *args], capture_output=True, text=True,
        env={**os.environ, **(env or {})}, cwd=cwd, timeout=timeout,
    )


@pytest.fixture(scope="session")
def registry():
    from mmbench.plugins import Registry

    return Registry.load()


@pytest.fixture
def cli():
    return run_cli
