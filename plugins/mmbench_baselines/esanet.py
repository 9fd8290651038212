"""ESANet-style RGB-D segmentation baseline (Seichter et al., *Efficient RGB-D Semantic Segmentation
for Indoor Scene Analysis*, ICRA 2021; TUI-NICR/ESANet) — the network the MMANet and OS-MD
segmentation experiments start from.

The first modality (RGB) is the main stream: after the stem and after every ResNet stage, each
modality's map is gated by its own squeeze-and-excitation block and the gated maps are **added**
(ESANet's ``SE-add``); the sum continues down the main stream while every other stream continues
on its own features. A pyramid-pooling context module follows the last stage and the core
decoder combines it with the fused skip features. Missing modalities (and per-sample modality
dropout in training) zero a modality's contribution at every fusion point, as the MMANet fork of
ESANet does.

Adapted: the core ResNet-18/34 ``BasicBlock`` encoders (recipe width) instead of ImageNet-pretrained
ResNet-34 Non-Bottleneck-1D blocks, and the core FPN-style decoder instead of ESANet's learned-
upsampling decoder with deep supervision; more than two modalities are all fused into the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from mmbench.engine import MethodModule, RunContext
from mmbench.models import SEBlock, subset_mask, task_loss, uniform_subset_mask
from mmbench.models.backbones import SMALL_INPUT, ResNetEncoder
from mmbench.models.decoders import PyramidPoolingContext, SegmentationDecoder
from mmbench.specs import TaskSpec


class ESANet(MethodModule):
    def __init__(self, task: TaskSpec, ctx: RunContext, modality_dropout: bool = False, backbone: str | None = None):
        super().__init__()
        self.task = task
        self.modalities = tuple(ctx.modalities)
        self.modality_dropout = modality_dropout
        arch, width = backbone or ctx.recipe.backbone, ctx.recipe.width
        shapes = {m: ctx.shapes[m] for m in self.modalities}
        if any(len(s) != 3 for s in shapes.values()):
            raise ValueError("ESANet needs image modalities [C, H, W]")
        stem = "small" if min(next(iter(shapes.values()))[-2:]) < SMALL_INPUT else "imagenet"
        self.encoders = nn.ModuleDict({m: ResNetEncoder(s[0], arch, width, stem) for m, s in shapes.items()})
        channels = [width, *self.encoders[self.modalities[0]].out_channels]  # stem + 4 stages
        self.se = nn.ModuleList(nn.ModuleDict({m: SEBlock(c) for m in self.modalities}) for c in channels)
        self.context = PyramidPoolingContext(channels[-1])
        self.decoder = SegmentationDecoder(channels[1:], task.num_classes, channels=max(width * 2, 32))
        self.input_size = tuple(next(iter(shapes.values()))[-2:])

    def _fuse(self, level: int, maps: dict[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """SE-add: Σ over present modalities of SE(map) · presence."""
        gated = [self.se[level][m](maps[m]) * mask[:, i].reshape(-1, 1, 1, 1).to(maps[m].dtype)
                 for i, m in enumerate(self.modalities) if m in maps]
        return torch.stack(gated).sum(dim=0)

    def forward_mask(self, batch: Any, mask: torch.Tensor) -> torch.Tensor:
        """Logits with the per-sample presence ``mask`` ``[B, M]``; absent modalities are not encoded."""
        present = [m for i, m in enumerate(self.modalities) if bool(mask[:, i].any())]
        main = self.modalities[0]
        streams = {m: self.encoders[m].stem(batch[m]) for m in present}
        fused = self._fuse(0, streams, mask)
        skips = []
        for stage in range(4):  # the main stream continues from the fused map, the others on their own
            streams = {m: self.encoders[m].stage(stage, fused if m == main else streams[m]) for m in present}
            fused = self._fuse(stage + 1, streams, mask)
            skips.append(fused)
        skips[-1] = self.context(skips[-1])
        return self.decoder(skips, self.input_size)

    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        target = batch["target"]
        if self.modality_dropout:
            mask = uniform_subset_mask(target.shape[0], len(self.modalities), target.device)
        else:
            mask = torch.ones(target.shape[0], len(self.modalities), device=target.device)
        return {"ce": task_loss(self.task, self.forward_mask(batch, mask), target)}

    def predict(self, batch: Any, modalities: Sequence[str]) -> torch.Tensor:
        target = batch["target"]
        return self.forward_mask(batch, subset_mask(self.modalities, modalities, target.shape[0], target.device))
