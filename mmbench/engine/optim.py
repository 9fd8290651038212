"""Optimiser and learning-rate schedule from a :class:`mmbench.Recipe`.

Schedules step once per iteration: ``step`` (×gamma every ``step_size`` epochs), ``cosine``
(to 0 over the run), ``onecycle`` (torch's OneCycleLR, div 25, pct 0.1, cosine — ESANet's
settings), ``none``; an optional linear warm-up over ``warmup_epochs`` multiplies any of them
except one-cycle (which has its own).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from mmbench.specs import Recipe


def build_optimizer(module: nn.Module, recipe: Recipe, groups: Iterable[dict[str, Any]] | None) -> torch.optim.Optimizer:
    if groups is None:
        groups = [{"params": [p for p in module.parameters() if p.requires_grad]}]
    param_groups = []
    for group in groups:
        group = dict(group)
        scale = group.pop("lr_scale", 1.0)
        group["params"] = [p for p in group["params"] if p.requires_grad]
        group.setdefault("lr", recipe.lr * scale)
        param_groups.append(group)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(
            param_groups, lr=recipe.lr, momentum=recipe.momentum,
            nesterov=recipe.nesterov and recipe.momentum > 0, weight_decay=recipe.weight_decay,
        )
    cls = torch.optim.Adam if recipe.optimizer == "adam" else torch.optim.AdamW
    return cls(param_groups, lr=recipe.lr, weight_decay=recipe.weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, recipe: Recipe, steps_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler:
    total = max(recipe.epochs * steps_per_epoch, 1)
    if recipe.scheduler == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=total,
            div_factor=25, pct_start=0.1, anneal_strategy="cos", final_div_factor=1e4,
            cycle_momentum=recipe.optimizer == "sgd" and recipe.momentum > 0,
        )
    warmup = recipe.warmup_epochs * steps_per_epoch

    def factor(step: int) -> float:
        if recipe.scheduler == "step":
            value = recipe.gamma ** ((step // steps_per_epoch) // recipe.step_size)
        elif recipe.scheduler == "cosine":
            value = 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
        else:
            value = 1.0
        if warmup and step < warmup:
            value *= (step + 1) / warmup
        return value

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
