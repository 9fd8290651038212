"""(4) Teacher cache: a second method distilled from the same teacher must not retrain it.

Cold: ``dkd`` with an empty artifact cache (trains the teacher, the student reference and the
student). Warm: ``kd`` against the same teacher (trains only its student). Ratio warm / cold,
goal ≤ 0.6 (three networks of one size trained cold, one warm: ≈ 1/3 expected)."""

import time

from sizing import sized

from mmbench.artifacts import ArtifactCache
from mmbench.engine.runner import Runner
from mmbench.plan import plan_run
from mmbench.plugins import Registry

OVERRIDES = {"recipe.epochs": sized("3", "1"), "recipe.limit_train": sized("1024", "256"),
             "recipe.limit_eval": sized("256", "64")}


def timed_run(runner, registry, method):
    plan = plan_run(registry, method, "synth-mssar-cls", 0, OVERRIDES)
    start = time.perf_counter()
    runner.run(plan)
    return time.perf_counter() - start


def test_teacher_cache_cold_vs_warm(benchmark, report, tmp_path):
    registry = Registry.load()
    timed_run(Runner(registry, out=tmp_path / "r0", device="cpu", artifacts=ArtifactCache(tmp_path / "a0")),
              registry, "kd")  # builds the dataset cache so neither measured run pays for it
    runner = Runner(registry, out=tmp_path / "runs", device="cpu", artifacts=ArtifactCache(tmp_path / "artifacts"))
    cold = timed_run(runner, registry, "dkd")
    warm = benchmark.pedantic(timed_run, args=(runner, registry, "kd"), rounds=1, iterations=1)
    report(benchmark, "teacher_cache_warm_over_cold", warm / cold, "<= 0.6", cold_seconds=cold, warm_seconds=warm)
