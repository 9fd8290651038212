"""The ``esanet`` / ``esanet-dropout`` baselines: :class:`mmbench.models.ESANetwork` trained with
cross-entropy, with all modalities or with per-sample modality dropout (uniform over the
non-empty subsets, as MMANet's ESANet fork)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from mmbench.engine import MethodModule, RunContext
from mmbench.models import ESANetwork, subset_mask, task_loss, uniform_subset_mask
from mmbench.specs import TaskSpec


class ESANet(MethodModule):
    def __init__(self, task: TaskSpec, ctx: RunContext, modality_dropout: bool = False, backbone: str | None = None):
        super().__init__()
        self.task = task
        self.modality_dropout = modality_dropout
        self.net = ESANetwork(ctx.modalities, ctx.shapes, task.num_classes, backbone or ctx.recipe.backbone,
                              ctx.recipe.width)

    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        target = batch["target"]
        count = len(self.net.modalities)
        if self.modality_dropout:
            mask = uniform_subset_mask(target.shape[0], count, target.device)
        else:
            mask = torch.ones(target.shape[0], count, device=target.device)
        return {"ce": task_loss(self.task, self.net(batch, mask), target)}

    def predict(self, batch: Any, modalities: Sequence[str]) -> torch.Tensor:
        target = batch["target"]
        return self.net(batch, subset_mask(self.net.modalities, modalities, target.shape[0], target.device))
