"""The ``esanet`` / ``esanet-dropout`` baselines: :class:`mmbench.models.ESANetwork` trained with
cross-entropy — summed over the deep-supervision outputs with ``recipe.decoder=esanet``, as
ESANet's ``train.py`` — with all modalities or with per-sample modality dropout (uniform over the
non-empty subsets, as MMANet's ESANet fork)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from mmbench import TaskSpec
from mmbench.engine import Features, MethodModule, RunContext
from mmbench.models import ESANetwork, deep_supervision_loss, subset_mask, uniform_subset_mask
from mmbench_baselines import fusion_modalities


class ESANet(MethodModule):
    """``MethodSpec.build`` of ``esanet``; :meth:`with_dropout` builds ``esanet-dropout``. As a
    dependency (MMANet's segmentation teacher) it offers its fused features per scale."""

    def __init__(self, task: TaskSpec, config: Any, ctx: RunContext, modality_dropout: bool = False):
        super().__init__()
        self.task = task
        self.modality_dropout = modality_dropout
        recipe = ctx.recipe
        self.net = ESANetwork(fusion_modalities(ctx.modalities, config), ctx.shapes, task.num_classes, config.backbone or recipe.backbone,
                              recipe.width, recipe.decoder, recipe.context)
        self.register_buffer("class_weights", ctx.class_weights, persistent=False)

    @classmethod
    def with_dropout(cls, task: TaskSpec, config: Any, ctx: RunContext) -> ESANet:
        return cls(task, config, ctx, modality_dropout=True)

    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        target = batch["target"]
        count = len(self.net.modalities)
        if self.modality_dropout:
            mask = uniform_subset_mask(target.shape[0], count, target.device)
        else:
            mask = torch.ones(target.shape[0], count, device=target.device)
        return {"ce": deep_supervision_loss(self.task, self.net.training_outputs(batch, mask), target,
                                                  self.class_weights)}

    def _mask(self, batch: Any, modalities: Sequence[str]) -> torch.Tensor:
        target = batch["target"]
        return subset_mask(self.net.modalities, modalities, target.shape[0], target.device)

    def predict(self, batch: Any, modalities: Sequence[str]) -> torch.Tensor:
        return self.net(batch, self._mask(batch, modalities))

    def features(self, batch: Any, modalities: Sequence[str]) -> Features:
        scales = self.net.features(batch, self._mask(batch, modalities))
        logits, maps = self.net.decode(scales)
        return Features(scales, logits, maps)

    def encoder(self, modality: str) -> nn.Module:
        return self.net.encoders[modality]
