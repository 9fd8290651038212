"""RFNet in 2D: modality-specific encoders, region-aware fusion (RFM) guided by probability
region maps (PRM) at every scale, and the shared-weight per-modality decoder regulariser."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mmbench import TaskSpec
from mmbench.models import MultiEncoderSegmenter, conv
from mmbench_rfnet.losses import rfnet_loss


class RegionMapGenerator(nn.Module):
    """PRM: an embedding of the masked modality features (1×1 → 3×3 → 1×1 back to C), concatenated
    with the upsampled decoder feature except at the deepest scale, → 1×1 to 16 → 1×1 to classes."""

    def __init__(self, modalities: int, channels: int, num_classes: int, with_decoder: bool):
        super().__init__()
        quarter = max(channels // 4, 4)
        self.embed = nn.Sequential(conv(modalities * channels, quarter), conv(quarter, quarter, 3), conv(quarter, channels))
        self.head = nn.Sequential(conv(channels * (2 if with_decoder else 1), 16), nn.Conv2d(16, num_classes, 1))

    def forward(self, stacked: torch.Tensor, decoder: torch.Tensor | None = None) -> torch.Tensor:
        x = self.embed(stacked.flatten(1, 2))
        return self.head(x if decoder is None else torch.cat([x, decoder], dim=1))


class RegionAwareFusion(nn.Module):
    """RFM: per region r (class), region features f_kr = y_k · prm_r, region-normalised global
    averages → a per-region weight network (1×1 → 128 → LeakyReLU → 1×1 → K, sigmoid) →
    fused_r = Σ_k w_kr f_kr (sigmoid weights, not normalised; absent modalities, zeroed, still get
    a weight); the R fused maps go through 1×1 → 3×3 → 1×1 to C/2, concatenated with a C/2 shortcut
    from all masked modalities. The region maps are detached, as in the official code."""

    def __init__(self, modalities: int, channels: int, regions: int):
        super().__init__()
        self.k, self.r = modalities, regions
        self.weights = nn.Sequential(
            nn.Conv2d(regions * (modalities * channels + 1), regions * 128, 1, groups=regions),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(regions * 128, regions * modalities, 1, groups=regions), nn.Sigmoid(),
        )
        half = max(channels // 2, 1)
        self.region_fusion = nn.Sequential(conv(regions * channels, channels), conv(channels, channels, 3), conv(channels, half))
        self.shortcut = nn.Sequential(conv(modalities * channels, channels), conv(channels, channels, 3), conv(channels, channels - half))

    def forward(self, stacked: torch.Tensor, region_logits: torch.Tensor) -> torch.Tensor:
        batch, k, c = stacked.shape[:3]
        prm = F.softmax(region_logits.detach(), dim=1)  # [B, R, H, W]
        regional = stacked[:, :, None] * prm[:, None, :, None]  # [B, K, R, C, H, W]
        prm_avg = prm.mean(dim=(2, 3)) + 1e-7  # [B, R]
        feat_avg = regional.mean(dim=(4, 5)) / prm_avg[:, None, :, None]  # [B, K, R, C]
        vector = torch.cat([feat_avg.permute(0, 2, 1, 3).reshape(batch, self.r, k * c), prm_avg[..., None]], dim=2)
        w = self.weights(vector.reshape(batch, -1, 1, 1)).reshape(batch, self.r, k)  # [B, R, K]
        fused = (regional * w.permute(0, 2, 1)[:, :, :, None, None, None]).sum(dim=1)  # [B, R, C, H, W]
        return torch.cat([self.region_fusion(fused.flatten(1, 2)), self.shortcut(stacked.flatten(1, 2))], dim=1)


class RFNet(MultiEncoderSegmenter):
    """RFNet (Ding, Yu, Yang & Yang, *RFNet: Region-aware Fusion Network for Incomplete Multi-modal
    Brain Tumor Segmentation*, ICCV 2021; dyh127/RFNet), adapted from 3D MRI to 2D images.

    Per-sample masks uniform over the non-empty subsets (RFNet draws one of the 15 per volume);
    the fused decoder runs RFM + PRM at every scale from the deepest up; training adds the
    shared-weight per-modality decoder on each modality's own (unmasked) features and deep
    supervision of every region map. Loss: RFNet's class-weighted CE + Dice on each (weights 1),
    the fused term off before ``region_fusion_start``. Adapted: core ResNet encoders instead of
    RFNet's 3D conv encoders, BatchNorm instead of InstanceNorm, the core FPN-style decoder as the
    shared per-modality decoder (the skeleton is :class:`mmbench.models.MultiEncoderSegmenter`)."""

    def __init__(self, task: TaskSpec, config: Any, ctx: Any):
        super().__init__(task, config, ctx)
        channels = self.channels
        k, r = len(self.modalities), task.num_classes
        self.prm = nn.ModuleList(RegionMapGenerator(k, c, r, with_decoder=i < 3) for i, c in enumerate(channels))
        self.rfm = nn.ModuleList(RegionAwareFusion(k, c, r) for c in channels)
        self.up = nn.ModuleList(conv(channels[i + 1], channels[i]) for i in range(3))
        self.merge = nn.ModuleList(conv(2 * channels[i], channels[i], 3) for i in range(3))
        self.classifier = nn.Conv2d(channels[0], r, 1)
        self.separate = self.separate_decoder()
        epochs = ctx.recipe.epochs
        self.fuse_start = config.region_fusion_start if config.region_fusion_start is not None else min(20, epochs // 15)
        self.epoch = 0

    def decode(self, features: dict[str, list[torch.Tensor]], mask: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The fused prediction (logits) and the region maps (deepest first) as probabilities
        upsampled to the input size, as the official deep supervision."""
        stacks = [self.masked_scale(features, mask, s) for s in range(4)]
        region_logits = self.prm[3](stacks[3])
        decoded = self.rfm[3](stacks[3], region_logits)
        maps = [region_logits]
        for s in (2, 1, 0):
            up = self.up[s](F.interpolate(decoded, size=stacks[s].shape[-2:], mode="bilinear", align_corners=False))
            region_logits = self.prm[s](stacks[s], up)
            maps.append(region_logits)
            decoded = self.merge[s](torch.cat([self.rfm[s](stacks[s], region_logits), up], dim=1))
        return self.resize(self.classifier(decoded)), [self.upsample_probabilities(m) for m in maps]

    def criterion(self, fused, separate, auxiliary, target):
        return rfnet_loss(fused, separate, auxiliary, target, self.task.num_classes,
                          fuse_on=self.epoch >= self.fuse_start, ignore_index=self.task.ignore_index)

    def on_epoch_start(self, epoch: int, num_epochs: int) -> None:
        self.epoch = epoch
