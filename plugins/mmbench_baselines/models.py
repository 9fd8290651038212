"""The baseline models: one modality, or modality-specific encoders fused (optionally with SE and
modality dropout). Built on :class:`mmbench.models.FusionNet`; nothing here is specific beyond
the loss and the training-time modality mask."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mmbench.engine import MethodModule, RunContext
from mmbench.models import FusionNet, modality_dropout_mask, task_loss
from mmbench.specs import TaskSpec


class FusionBaseline(MethodModule):
    """Encoders per trained modality → masked fusion → head, trained with cross-entropy.

    ``dropout`` > 0 drops each modality per sample with that probability (never all of them) in
    training — the "-MD" baselines of MMANet / OS-MD. Missing modalities at test time are zeros.
    """

    def __init__(self, task: TaskSpec, ctx: RunContext, modalities: Sequence[str], fusion: str = "concat",
                 fusion_stage: int = 4, dropout: float = 0.0, se_reduction: int = 16, backbone: str | None = None):
        super().__init__()
        self.task = task
        self.trained = tuple(modalities)
        self.dropout = dropout
        self.net = FusionNet(
            self.trained, ctx.shapes, task.kind, task.num_classes, arch=backbone or ctx.recipe.backbone,
            width=ctx.recipe.width, fusion=fusion, fusion_stage=fusion_stage, se_reduction=se_reduction,
        )

    def _mask(self, batch_size: int, device: torch.device) -> torch.Tensor:
        if self.dropout > 0 and len(self.trained) > 1:
            return modality_dropout_mask(batch_size, len(self.trained), self.dropout, device)
        return torch.ones(batch_size, len(self.trained), device=device)

    def training_step(self, batch, step):
        target = batch["target"]
        logits = self.net(batch, self._mask(target.shape[0], target.device))
        return {"ce": task_loss(self.task, logits, target)}

    def predict(self, batch, modalities):
        return self.predict_subsets(batch, [tuple(modalities)])[tuple(modalities)]

    def predict_subsets(self, batch, subsets):
        return self.net.predict_subsets(batch, subsets)  # each modality encoded once for all subsets
