"""A light FPN-style segmentation decoder over multi-scale features (shared by all seg methods).

Lateral 1x1 convolutions bring every scale to ``channels``, a top-down path adds upsampled coarse
features to finer ones, a 3x3 conv-BN-ReLU smooths the finest map and a 1x1 conv predicts classes,
upsampled bilinearly to the input size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    """conv (no bias, same padding) → BN → ReLU (ESANet's ``ConvBNAct``)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
    )


class SegmentationOutputs(NamedTuple):
    """A segmentation decoder's outputs: the logits at the input size, the side outputs (logits at
    strides 8, 16, 32 — ESANet's deep supervision; empty for a decoder without) and the decoder's
    feature maps, coarsest first."""

    logits: torch.Tensor
    sides: list[torch.Tensor]
    maps: list[torch.Tensor]


class SegmentationDecoder(nn.Module):
    """The light FPN-style decoder of the smoke profile (the module docstring): lateral 1x1
    convolutions to ``channels``, a top-down path adding upsampled coarse maps to finer ones, a 3x3
    conv-BN-ReLU on the finest map and a 1x1 classifier, upsampled to the output size."""

    def __init__(self, in_channels: Sequence[int], num_classes: int, channels: int = 64):
        super().__init__()
        self.laterals = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.smooth = conv_bn_relu(channels, channels, 3)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def top_down(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The decoder's maps, coarsest first: the merge at each finer scale (the first is the
        counterpart of ESANet's first decoder-module output, ``out_down_32_feature``); with a
        single input scale, its lateral projection."""
        x = self.laterals[-1](features[-1])
        maps = []
        for lateral, feature in zip(reversed(self.laterals[:-1]), reversed(features[:-1]), strict=True):
            x = lateral(feature) + F.interpolate(x, size=feature.shape[-2:], mode="bilinear", align_corners=False)
            maps.append(x)
        return maps or [x]

    def classify(self, finest: torch.Tensor, output_size: Sequence[int]) -> torch.Tensor:
        """Class logits from the finest decoder map, upsampled to ``output_size``."""
        logits = self.classifier(self.smooth(finest))
        return F.interpolate(logits, size=tuple(output_size), mode="bilinear", align_corners=False)

    def outputs(self, features: Sequence[torch.Tensor], output_size: Sequence[int], sides: bool = False) -> SegmentationOutputs:
        """Logits, no side outputs (this decoder has no deep supervision) and the maps of
        :meth:`top_down` — the interface of :class:`mmbench.models.ESANetDecoder`."""
        maps = self.top_down(features)
        return SegmentationOutputs(self.classify(maps[-1], output_size), [], maps)

    def forward(self, features: Sequence[torch.Tensor], output_size: Sequence[int]) -> torch.Tensor:
        return self.classify(self.top_down(features)[-1], output_size)


class PyramidPoolingContext(nn.Module):
    """PSPNet-style pyramid pooling (Zhao et al., CVPR 2017) as ESANet's ``ppm`` context module:
    the input average-pooled to each bin size, 1x1 conv-BN-ReLU, upsampled back, concatenated with
    the input and fused by a 3x3 conv-BN-ReLU. ESANet's default bins are (1, 5)."""

    def __init__(self, channels: int, bins: Sequence[int] = (1, 5)):
        super().__init__()
        branch = max(channels // len(bins), 1)
        self.bins = tuple(bins)
        self.branches = nn.ModuleList(conv_bn_relu(channels, branch, 1) for _ in self.bins)
        self.fuse = conv_bn_relu(channels + branch * len(self.bins), channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [
            F.interpolate(branch(F.adaptive_avg_pool2d(x, b)), size=size, mode="bilinear", align_corners=False)
            for b, branch in zip(self.bins, self.branches, strict=True)
        ]
        return self.fuse(torch.cat([x, *pooled], dim=1))
