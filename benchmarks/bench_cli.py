"""(3) CLI start-up: `mmbench --help` (goal ≤ 0.5 s) and `mmbench list` (goal ≤ 1.5 s), with a
bare `python -c pass` start measured alongside as the baseline; (4) the default `mmbench run`
end to end on a cold cache (goal ≤ 120 s)."""

import os
import subprocess
import sys
import tempfile
import time

import pytest
from sizing import QUICK, sized

#: quick mode: the default run, shortened
QUICK_RUN = ["--set", "recipe.epochs=1", "--set", "recipe.limit_train=256", "--set", "recipe.limit_eval=128"]


def wall(args, env=None) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, env={**os.environ, **(env or {})})
    return time.perf_counter() - start


@pytest.mark.parametrize(("command", "goal"), [(["--help"], 0.5), (["list"], 1.5)])
def test_cli_startup(benchmark, report, command, goal):
    python = min(wall([sys.executable, "-c", "pass"]) for _ in range(sized(5, 1)))
    benchmark.pedantic(wall, args=([sys.executable, "-m", "mmbench", *command],), rounds=sized(5, 1), iterations=1)
    best = benchmark.stats.stats.min  # wall() raises if the command fails, so this times a working command
    report(benchmark, f"mmbench_{command[0].strip('-')}_seconds", best, f"<= {goal} s",
           bare_python_s=python, ratio_to_bare_python=best / python)


def test_default_run_end_to_end(benchmark, report):
    with tempfile.TemporaryDirectory() as home:
        env = {"MMBENCH_HOME": home}
        args = [sys.executable, "-m", "mmbench", "run", "--out", os.path.join(home, "runs"), "--no-progress",
                *(QUICK_RUN if QUICK else [])]
        seconds = benchmark.pedantic(wall, args=(args, env), rounds=1, iterations=1)
        warm = wall([*args, "--force"], env)
    report(benchmark, "default_run_cold_seconds", seconds, "<= 120 s", warm_cache_seconds=warm)
