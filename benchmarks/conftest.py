"""Benchmarks report ratios against a baseline measured in the same process (never absolute
timing assertions). Run with ``tox -e bench`` or ``pytest benchmarks``: a ratio that misses its
goal fails its benchmark. ``pytest benchmarks --quick`` (CI) runs each once at reduced sizes and
holds no ratio to its goal (see :mod:`sizing`)."""

import math
import os
import re
import tempfile
from pathlib import Path

import pytest

_HOME = Path(tempfile.mkdtemp(prefix="mmbench-bench-"))
os.environ.setdefault("MMBENCH_HOME", str(_HOME / "home"))
os.environ.setdefault("HF_HOME", str(_HOME / "hf"))
os.environ["HF_HUB_OFFLINE"] = "1"

_RATIOS: list[str] = []
_GOAL = re.compile(r"^(>=|<=)\s*([0-9.]+)")


def pytest_addoption(parser):
    parser.addoption("--quick", action="store_true",
                     help="run every benchmark once at reduced sizes; report ratios without holding them to goals")


def pytest_configure(config):
    if config.getoption("--quick"):
        os.environ["MMBENCH_BENCH_QUICK"] = "1"  # read by sizing.py when the benchmark modules are collected


def meets(value: float, goal: str) -> bool:
    """Whether ``value`` meets ``goal`` (">= 5", "<= 0.2 s"); a goal in words is always met."""
    match = _GOAL.match(goal)
    if match is None:
        return True
    bound = float(match.group(2))
    return math.isfinite(value) and (value >= bound if match.group(1) == ">=" else value <= bound)


@pytest.fixture
def report():
    """Record a named ratio with its goal; printed in the terminal summary."""

    def add(benchmark, name: str, value: float, goal: str, **details: float) -> None:
        benchmark.extra_info[name] = round(value, 4)
        benchmark.extra_info[f"{name}_goal"] = goal
        for key, detail in details.items():
            benchmark.extra_info[key] = round(detail, 4)
        extras = ", ".join(f"{k}={v:.4g}" for k, v in details.items())
        _RATIOS.append(f"{name} = {value:.3f} (goal {goal}){'; ' + extras if extras else ''}")
        if os.environ.get("MMBENCH_BENCH_QUICK") != "1":
            assert meets(value, goal), f"{name} = {value:.4g} misses its goal {goal} ({extras})"

    return add


def pytest_terminal_summary(terminalreporter):
    if _RATIOS:
        terminalreporter.section("mmbench ratios")
        for line in _RATIOS:
            terminalreporter.write_line(line)
