"""Benchmarks report ratios against a baseline measured in the same process (never absolute
timing assertions). Run with ``tox -e bench`` or ``pytest benchmarks``."""

import os
import tempfile
from pathlib import Path

import pytest

_HOME = Path(tempfile.mkdtemp(prefix="mmbench-bench-"))
os.environ.setdefault("MMBENCH_HOME", str(_HOME / "home"))
os.environ.setdefault("HF_HOME", str(_HOME / "hf"))
os.environ["HF_HUB_OFFLINE"] = "1"

_RATIOS: list[str] = []


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

    return add


def pytest_terminal_summary(terminalreporter):
    if _RATIOS:
        terminalreporter.section("mmbench ratios")
        for line in _RATIOS:
            terminalreporter.write_line(line)
