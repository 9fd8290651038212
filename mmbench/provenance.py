"""Where a result comes from: versions, git sha, device."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import torch
import torchvision

import mmbench
from mmbench.records import Provenance


def git_sha() -> str | None:
    """The commit of the mmbench checkout in use (None for an installed wheel)."""
    root = Path(mmbench.__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"


def collect(device: torch.device, plugins: dict[str, str], sources: dict[str, str] | None = None) -> Provenance:
    return Provenance(
        mmbench=mmbench.__version__,
        plugins=plugins,
        plugin_sources=dict(sources or {}),
        threads=torch.get_num_threads(),
        git_sha=git_sha(),
        python=sys.version.split()[0],
        torch=torch.__version__,
        torchvision=torchvision.__version__,
        cuda=torch.version.cuda if device.type == "cuda" else None,
        device=str(device),
        device_name=device_name(device),
        cpu_count=os.cpu_count() or 1,
        platform=platform.platform(),
    )
