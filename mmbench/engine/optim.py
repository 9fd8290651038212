"""Optimiser and learning-rate schedule from a :class:`mmbench.Recipe`.

Schedules advance once per iteration (``recipe.scheduler_interval=step``) or once per epoch
(``epoch``: the trainer steps them after each epoch): ``step`` (×gamma every ``step_size``
epochs), ``multistep`` (×gamma at each of ``milestones``, epochs counted after the warm-up),
``cosine`` (to 0 over the run), ``onecycle`` (torch's OneCycleLR, div 25, pct 0.1, cosine, the
momentum — SGD's, or Adam's β1 — cycled 0.95 → 0.85 → 0.95: ESANet's settings), ``none``; an
optional linear warm-up over ``warmup_epochs`` (from a rate of 0 with ``warmup_from_zero``)
multiplies any of them except one-cycle (which has its own).
"""

from __future__ import annotations

import bisect
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
    """The schedule, to be stepped after every iteration (``steps_per_epoch`` of them per epoch),
    or after every epoch with ``recipe.scheduler_interval=epoch``."""
    if recipe.scheduler_interval == "epoch":
        steps_per_epoch = 1
    total = max(recipe.epochs * steps_per_epoch, 1)
    if recipe.scheduler == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=total,
            div_factor=25, pct_start=0.1, anneal_strategy="cos", final_div_factor=1e4,
            cycle_momentum=recipe.optimizer != "sgd" or recipe.momentum > 0,
        )
    warmup = recipe.warmup_epochs * steps_per_epoch

    def factor(step: int) -> float:
        epoch = step // steps_per_epoch
        if recipe.scheduler == "step":
            value = recipe.gamma ** (epoch // recipe.step_size)
        elif recipe.scheduler == "multistep":
            value = recipe.gamma ** bisect.bisect_right(recipe.milestones, epoch - recipe.warmup_epochs)
        elif recipe.scheduler == "cosine":
            value = 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
        else:
            value = 1.0
        if warmup and step < warmup:
            value *= (step + (0 if recipe.warmup_from_zero else 1)) / warmup
        return value

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
