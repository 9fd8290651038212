"""Quick mode: ``pytest benchmarks --quick`` (what CI runs) runs every benchmark once at reduced
sizes, so that a benchmark that breaks fails CI; its ratios are reported but only the full run
(``tox -e bench``) holds them to their goals, since reduced sizes change what they measure."""

from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")

QUICK = os.environ.get("MMBENCH_BENCH_QUICK") == "1"


def sized(full: T, quick: T) -> T:
    """``full`` in a full benchmark run, ``quick`` in quick mode."""
    return quick if QUICK else full
