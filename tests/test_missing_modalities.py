"""For every method deployed on modality subsets: an absent modality cannot change the output."""

from __future__ import annotations

import pytest
import torch

from conftest import FAST_OVERRIDES, make_runner
from mmbench.data.arrays import ArrayBatches, load_task_data, make_loader
from mmbench.plan import plan_run

CASES = [
    ("fusion", "synth-rgbd-seg"), ("fusion-dropout", "synth-rgbdi-pad"), ("se-fusion", "synth-rgbdi-pad"),
    ("esanet", "synth-rgbd-seg"), ("esanet-dropout", "synth-rgbd-seg"), ("hemis", "synth-rgbd-seg"),
    ("hemis", "synth-rgbdi-pad"), ("mmanet", "synth-rgbdi-pad"),
    ("mmanet", "synth-rgbd-seg"), ("rfnet", "synth-rgbd-seg"),
    ("mmformer", "synth-rgbd-seg"),
]


@pytest.mark.parametrize(("method", "task"), CASES)
def test_absent_modalities_do_not_leak(registry, tmp_path, method, task):
    plan = plan_run(registry, method, task, 0, FAST_OVERRIDES)
    data = load_task_data(plan.task, plan.dataset, plan.recipe)
    ctx = make_runner(registry, tmp_path).context(plan, data)
    torch.manual_seed(0)
    module = plan.method.builder()(plan.task, plan.config, ctx).eval()
    batch = next(iter(make_loader(ArrayBatches(data.test, data.stats, data.modalities), 8, shuffle=False)))
    with torch.no_grad():
        for subset in plan.subsets:
            if len(subset) == len(plan.modalities):
                continue
            scrambled = {k: (torch.randn_like(v) * 5 if k in plan.modalities and k not in subset else v)
                         for k, v in batch.items()}
            assert torch.allclose(module.predict(batch, subset), module.predict(scrambled, subset), atol=1e-5), subset
            together = module.predict_subsets(batch, [subset])[subset]
            assert torch.allclose(together, module.predict(batch, subset), atol=1e-5)
