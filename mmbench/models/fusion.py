"""Fusion of per-modality features under a presence mask.

A missing modality's features are replaced by zeros (MMANet and the SF / ESANet baselines do
this) by multiplying with the mask; ``mask`` is ``[B, M]`` (1 = present) so the same code serves
per-sample modality dropout in training and a fixed deployment subset at test time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class SEBlock(nn.Module):
    """Squeeze-and-excitation channel gating (Hu et al. 2018): avg-pool → FC → ReLU → FC → sigmoid.

    Used per modality before fusion by the CASIA-SURF SF baseline (``resnet18_se.py`` in the
    MMANet repository, reduction 16) and in ESANet's SE-add fusion.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.gate = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeezed = x.mean(dim=tuple(range(2, x.dim()))) if x.dim() > 2 else x
        weights = self.gate(squeezed)
        return x * weights.reshape(*weights.shape, *([1] * (x.dim() - 2)))


def masked_feature(feature: torch.Tensor, mask_column: torch.Tensor) -> torch.Tensor:
    """``feature`` zeroed in the samples whose ``mask_column`` entry is 0."""
    return feature * mask_column.reshape(-1, *([1] * (feature.dim() - 1))).to(feature.dtype)


def fuse_features(features: Sequence[torch.Tensor], mask: torch.Tensor, mode: str = "concat") -> torch.Tensor:
    """Fuse one scale's per-modality features ``[B, C_m, ...]`` (modality order = mask columns).

    ``concat``: channel concatenation with zeros for missing modalities; ``sum``: sum of present
    modalities; ``mean``: mean over present modalities.
    """
    masked = [masked_feature(f, mask[:, i]) for i, f in enumerate(features)]
    if mode == "concat":
        return torch.cat(masked, dim=1)
    total = torch.stack(masked, dim=0).sum(dim=0)
    if mode == "sum":
        return total
    if mode == "mean":
        return total / present_count(mask, total)
    raise ValueError(f"unknown fusion mode '{mode}'")


def present_count(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The number of present modalities per sample (at least 1), shaped to broadcast over ``like``."""
    return mask.sum(dim=1).clamp(min=1).reshape(-1, *([1] * (like.dim() - 1))).to(like.dtype)
