"""A light FPN-style segmentation decoder over multi-scale features (shared by all seg methods).

Lateral 1x1 convolutions bring every scale to ``channels``, a top-down path adds upsampled coarse
features to finer ones, a 3x3 conv-BN-ReLU smooths the finest map and a 1x1 conv predicts classes,
upsampled bilinearly to the input size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class SegmentationDecoder(nn.Module):
    def __init__(self, in_channels: Sequence[int], num_classes: int, channels: int = 64):
        super().__init__()
        self.laterals = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.smooth = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)
        )
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, features: Sequence[torch.Tensor], output_size: Sequence[int]) -> torch.Tensor:
        x = self.laterals[-1](features[-1])
        for lateral, feature in zip(reversed(self.laterals[:-1]), reversed(features[:-1]), strict=True):
            x = lateral(feature) + F.interpolate(x, size=feature.shape[-2:], mode="bilinear", align_corners=False)
        logits = self.classifier(self.smooth(x))
        return F.interpolate(logits, size=tuple(output_size), mode="bilinear", align_corners=False)
