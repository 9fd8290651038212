"""Where a result comes from: versions, git sha, device, and on the CPU the kind of processor."""

from __future__ import annotations

import functools
import hashlib
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


@functools.cache
def cpu_kind() -> str:
    """The processor model, the instruction set torch's kernels dispatch to and a digest of the
    CPU's feature flags and cache size, e.g. ``Intel(R) Xeon(R) Processor · AVX512 · 3f2a9c1e``.
    oneDNN and torch's vectorised kernels pick their code (and so their order of floating-point
    operations) by these, so a CPU run is bit-identical only on a processor of the same kind."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "flags", "cache size") and key.strip() not in fields:
                    fields[key.strip()] = value.strip()
                if line.strip() == "":
                    break  # the first processor is enough
    except OSError:
        pass
    model = fields.get("model name") or platform.processor() or platform.machine() or "cpu"
    digest = hashlib.sha256(f"{fields.get('flags', '')}|{fields.get('cache size', '')}".encode()).hexdigest()[:8]
    return f"{model} · {torch.backends.cpu.get_cpu_capability()} · {digest}"


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
        cpu=cpu_kind() if device.type == "cpu" else None,
    )
