"""MMANet end to end on the synthetic shapes: mining picks a weak combination on validation, then
MAD and MAR switch on; checkpoints of any epoch load into a fresh module."""

from __future__ import annotations

import pytest

from conftest import FAST_OVERRIDES, make_runner
from mmbench.plan import plan_run
from mmbench_mmanet.models import schedule


@pytest.mark.parametrize(("task", "weak_size"), [("synth-rgbdi-pad", (2, 3)), ("synth-rgbd-seg", (1, 1))])
def test_mining_then_distillation(registry, tmp_path, task, weak_size):
    overrides = {**FAST_OVERRIDES, "recipe.epochs": "4", "begin_epoch": "2", "mining_epochs": "1"}
    record, _ = make_runner(registry, tmp_path).run(plan_run(registry, "mmanet", task, 0, overrides))
    losses = [set(c["loss"]) for c in record.curves]
    assert losses[:3] == [{"ce"}] * 3 and losses[3] == {"ce", "mad", "mar"}
    report = record.extra["method"]
    assert len(report["weak_combinations"]) in weak_size  # classification: weak pair + its singles
    assert report["begin_epoch"] == 3 and any(v > 0 for v in report["mining_distances"].values())
    assert len(record.metrics["best"]) == (7 if task == "synth-rgbdi-pad" else 3)


def test_official_schedules_and_short_recipes():
    from mmbench_mmanet import MMANetConfig

    assert schedule("anti-spoofing", MMANetConfig(), 100) == (5, 2)  # mining after epochs 2, 3, 4
    assert schedule("segmentation", MMANetConfig(), 300) == (10, 6)  # mining epochs 6..9
    assert schedule("segmentation", MMANetConfig(), 10) == (5, 1)
