"""The ESANet-style RGB-D(-X) segmentation network (Seichter et al., *Efficient RGB-D Semantic
Segmentation for Indoor Scene Analysis*, ICRA 2021; TUI-NICR/ESANet), shared by the ``esanet``
baselines and MMANet's segmentation model (whose official code is an ESANet fork).

The first modality (RGB) is the main stream: after the stem and after every ResNet stage each
modality's map is gated by its own squeeze-and-excitation block and the gated maps are **added**
(ESANet's ``SE-add``); the sum continues down the main stream while every other stream continues
on its own features. A pyramid-pooling context module follows the last stage and the core decoder
combines it with the fused skip features. Absent modalities (and per-sample modality dropout) zero
a modality's contribution at every fusion point, as the MMANet fork of ESANet does.

Adapted: the core ResNet-18/34 ``BasicBlock`` encoders (any width) instead of ImageNet-pretrained
ResNet-34 Non-Bottleneck-1D blocks, and the core FPN-style decoder instead of ESANet's learned-
upsampling decoder with deep supervision; more than two modalities are all fused into the first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mmbench.models.backbones import SMALL_INPUT, ResNetEncoder
from mmbench.models.decoders import PyramidPoolingContext, SegmentationDecoder
from mmbench.models.fusion import SEBlock


class ESANetwork(nn.Module):
    def __init__(self, modalities: Sequence[str], shapes: Mapping[str, Sequence[int]], num_classes: int,
                 arch: str = "resnet34", width: int = 64):
        super().__init__()
        self.modalities = tuple(modalities)
        if any(len(shapes[m]) != 3 for m in self.modalities):
            raise ValueError("ESANet needs image modalities [C, H, W]")
        self.input_size = tuple(shapes[self.modalities[0]][-2:])
        stem = "small" if min(self.input_size) < SMALL_INPUT else "imagenet"
        self.encoders = nn.ModuleDict({m: ResNetEncoder(shapes[m][0], arch, width, stem) for m in self.modalities})
        channels = [width, *self.encoders[self.modalities[0]].out_channels]  # stem + 4 stages
        self.se = nn.ModuleList(nn.ModuleDict({m: SEBlock(c) for m in self.modalities}) for c in channels)
        self.context = PyramidPoolingContext(channels[-1])
        self.feature_channels = channels[1:]
        self.decoder = SegmentationDecoder(self.feature_channels, num_classes, channels=max(width * 2, 32))

    def _fuse(self, level: int, maps: dict[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """SE-add: Σ over present modalities of SE(map) · presence."""
        gated = [self.se[level][m](maps[m]) * mask[:, i].reshape(-1, 1, 1, 1).to(maps[m].dtype)
                 for i, m in enumerate(self.modalities) if m in maps]
        return torch.stack(gated).sum(dim=0)

    def features(self, batch: Mapping[str, torch.Tensor], mask: torch.Tensor) -> list[torch.Tensor]:
        """Fused maps after each stage (the deepest through the context module) for the
        per-sample presence ``mask`` ``[B, M]``; absent modalities are not encoded."""
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
        return skips

    def head(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.decoder(features, self.input_size)

    def decode(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The logits and the decoder's maps (coarsest first, :meth:`SegmentationDecoder.top_down`)."""
        maps = self.decoder.top_down(features)
        return self.decoder.classify(maps[-1], self.input_size), maps

    def forward(self, batch: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(batch, mask))
