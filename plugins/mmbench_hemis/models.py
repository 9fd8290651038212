"""The HeMIS network: the core multi-encoder :class:`~mmbench.models.FusionNet` with HeMIS's
moment fusion (:class:`mmbench_hemis.fusion.MomentFusion`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from mmbench import TaskSpec
from mmbench.engine import MethodModule, RunContext
from mmbench.models import FusionNet, task_loss, uniform_subset_mask
from mmbench_hemis.fusion import MomentFusion
from mmbench_hemis.losses import segmentation_loss


def u_hemis_mask(batch_size: int, num_modalities: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """U-HeMIS's per-iteration sampling: n uniform in 1..M, then a uniform subset of size n, shared
    by the whole batch."""
    size = int(torch.randint(1, num_modalities + 1, ()))
    chosen = torch.randperm(num_modalities)[:size]
    row = torch.zeros(num_modalities, device=device)
    row[chosen.to(device)] = 1.0
    return row.expand(batch_size, -1).clone()


class HeMIS(MethodModule):
    """Trained with random missing modalities (see :class:`mmbench_hemis.HeMISConfig`); at test
    time the abstraction runs over the deployed subset."""

    def __init__(self, task: TaskSpec, config: Any, ctx: RunContext):
        super().__init__()
        self.task, self.config = task, config
        self.modalities = tuple(ctx.modalities)
        self.dense = task.kind == "segmentation"
        stage = config.fusion_stage or (4 if self.dense else 2)
        fusion = MomentFusion(population=config.variant == "u-hemis")
        self.net = FusionNet(self.modalities, ctx.shapes, task.kind, task.num_classes,
                             arch=config.backbone or ctx.recipe.backbone, width=ctx.recipe.width,
                             fusion=fusion, fusion_stage=stage)

    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        target = batch["target"]
        sample = u_hemis_mask if self.config.variant == "u-hemis" else uniform_subset_mask
        logits = self.net(batch, sample(target.shape[0], len(self.modalities), target.device))
        if self.dense:
            return {"ce+dice": segmentation_loss(logits, target, self.task.num_classes, self.task.ignore_index)}
        return {"ce": task_loss(self.task, logits, target)}

    def predict_subsets(self, batch: Any, subsets: Sequence[tuple[str, ...]]) -> dict[tuple[str, ...], torch.Tensor]:
        return self.net.predict_subsets(batch, subsets)
