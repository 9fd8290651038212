"""The baseline models: one modality, or modality-specific encoders fused (optionally with SE and
modality dropout). Built on :class:`mmbench.models.FusionNet`; nothing here is specific beyond
the loss and the training-time modality mask. The ``build_*`` functions are the methods'
``MethodSpec.build`` (as import strings)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from mmbench import TaskSpec
from mmbench.engine import Features, MethodModule, RunContext
from mmbench.models import FusionNet, deep_supervision_loss, modality_dropout_mask, subset_mask
from mmbench_baselines import fusion_modalities, unimodal_modality


class FusionBaseline(MethodModule):
    """Encoders per trained modality → masked fusion → head, trained with cross-entropy.

    ``dropout`` > 0 drops each modality per sample with that probability (never all of them) in
    training — the "-MD" baselines of MMANet / OS-MD. Missing modalities at test time are zeros.
    As a dependency it offers its fused features per scale and its encoders.
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
            decoder=ctx.recipe.decoder, context=ctx.recipe.context,
        )
        self.register_buffer("class_weights", ctx.class_weights, persistent=False)

    def _mask(self, batch_size: int, device: torch.device) -> torch.Tensor:
        if self.dropout > 0 and len(self.trained) > 1:
            return modality_dropout_mask(batch_size, len(self.trained), self.dropout, device)
        return torch.ones(batch_size, len(self.trained), device=device)

    def training_step(self, batch, step):
        target = batch["target"]
        outputs = self.net.training_outputs(batch, self._mask(target.shape[0], target.device))
        return {"ce": deep_supervision_loss(self.task, outputs, target, self.class_weights)}

    def predict_subsets(self, batch, subsets):
        return self.net.predict_subsets(batch, subsets)  # each modality encoded once for all subsets

    def features(self, batch, modalities) -> Features:
        target = batch["target"]
        scales = self.net.features(batch, subset_mask(self.trained, modalities, target.shape[0], target.device))
        return Features(scales, self.net.head(scales))

    def encoder(self, modality: str) -> nn.Module:
        return self.net.encoders[modality]


def build_unimodal(task: TaskSpec, config: Any, ctx: RunContext) -> FusionBaseline:
    return FusionBaseline(task, ctx, [unimodal_modality(ctx.modalities, config)], backbone=config.backbone)


def build_fusion(task: TaskSpec, config: Any, ctx: RunContext) -> FusionBaseline:
    return FusionBaseline(task, ctx, fusion_modalities(ctx.modalities, config), fusion=config.fusion,
                          backbone=config.backbone)


def build_fusion_dropout(task: TaskSpec, config: Any, ctx: RunContext) -> FusionBaseline:
    return FusionBaseline(task, ctx, ctx.modalities, dropout=config.p, backbone=config.backbone)


def build_se_fusion(task: TaskSpec, config: Any, ctx: RunContext) -> FusionBaseline:
    return FusionBaseline(task, ctx, fusion_modalities(ctx.modalities, config), fusion="se",
                          fusion_stage=config.fusion_stage, dropout=config.p, se_reduction=config.reduction,
                          backbone=config.backbone)
