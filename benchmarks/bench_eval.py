"""(2) Evaluating all 7 deployment subsets of synth-rgbdi-pad vs one full-modality pass
(goal ≤ 1.5×: each modality is encoded once, only fusion and head run per subset)."""

import time

from sizing import sized

from mmbench.data.arrays import ArrayBatches, load_task_data
from mmbench.engine.loop import evaluate
from mmbench.engine.runner import Runner
from mmbench.plan import plan_run
from mmbench.plugins import Registry

ROUNDS = sized(3, 1)


def timed(module, test, subsets, plan, runner) -> float:
    start = time.perf_counter()
    evaluate(module, test, subsets, plan.task, runner.device, 250)
    return time.perf_counter() - start


def test_all_subsets_vs_full_pass(benchmark, report):
    registry = Registry.load()
    ratios = {}
    for method in ("fusion", "se-fusion"):
        plan = plan_run(registry, method, "synth-rgbdi-pad", 0, {"recipe.limit_eval": sized("500", "100")})
        runner = Runner(registry, out="/tmp/mmbench-bench-runs", device="cpu")
        data = load_task_data(plan.task, plan.dataset, plan.recipe)
        module = plan.method.builder()(plan.task, plan.config, runner.context(plan, data))
        test = ArrayBatches(data.test, data.stats, data.modalities)
        full = [plan.subsets[0]]

        timed(module, test, full, plan, runner)
        one = min(timed(module, test, full, plan, runner) for _ in range(ROUNDS))
        every = min(timed(module, test, plan.subsets, plan, runner) for _ in range(ROUNDS))
        ratios[method] = (every / one, one, every)
        if method == "fusion":
            benchmark.pedantic(evaluate, args=(module, test, plan.subsets, plan.task, runner.device, 250), rounds=ROUNDS)
    ratio, one, every = ratios["fusion"]
    report(benchmark, "all_subsets_vs_full_pass", ratio, "<= 1.5", full_pass_s=one, all_subsets_s=every)
    ratio, one, every = ratios["se-fusion"]
    report(benchmark, "all_subsets_vs_full_pass_se_fusion_midfusion", ratio,
           "informational (shared layer3-4 run per subset)", full_pass_s=one, all_subsets_s=every)
