"""Optimisers and per-iteration schedules built from a recipe."""

import math

import pytest
import torch

from mmbench.engine.optim import build_optimizer, build_scheduler
from mmbench.specs import Recipe


def lrs(recipe, steps_per_epoch=4):
    model = torch.nn.Linear(2, 2)
    optimizer = build_optimizer(model, recipe, None)
    scheduler = build_scheduler(optimizer, recipe, steps_per_epoch)
    values = []
    for _ in range(recipe.epochs * steps_per_epoch):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return optimizer, values


def test_step_schedule():
    _, values = lrs(Recipe(epochs=4, lr=1.0, scheduler="step", step_size=2, gamma=0.1))
    assert values[:8] == [1.0] * 8 and values[8:] == pytest.approx([0.1] * 8)


def test_cosine_with_warmup():
    _, values = lrs(Recipe(epochs=4, lr=1.0, scheduler="cosine", warmup_epochs=1))
    total = 16
    assert values[0] == pytest.approx(0.5 * (1 + math.cos(0)) * 1 / 4)
    assert values[3] == pytest.approx(0.5 * (1 + math.cos(math.pi * 3 / total)))
    assert values[10] == pytest.approx(0.5 * (1 + math.cos(math.pi * 10 / total)))


def test_onecycle_peaks_at_ten_percent():
    _, values = lrs(Recipe(epochs=10, lr=1.0, scheduler="onecycle"))
    assert values[0] == pytest.approx(1.0 / 25)
    assert max(values) == pytest.approx(1.0, rel=1e-3) and values.index(max(values)) in (3, 4)


@pytest.mark.parametrize(("name", "cls"), [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)])
def test_optimizers_and_param_group_scales(name, cls):
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    groups = [{"params": model[0].parameters(), "lr_scale": 0.1}, {"params": model[1].parameters()}]
    optimizer = build_optimizer(model, Recipe(optimizer=name, lr=0.5), groups)
    assert isinstance(optimizer, cls)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.05, 0.5])
