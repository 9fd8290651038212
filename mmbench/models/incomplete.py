"""The skeleton that RFNet and mmFormer share: one encoder per modality, a fusion decoder over the
masked per-scale features, the shared-weight per-modality decoder regulariser, and evaluation of
every deployment subset from one encoding of each modality. A method subclasses
:class:`MultiEncoderSegmenter` and supplies ``decode`` (its fusion) and ``criterion`` (its loss).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mmbench.engine.module import MethodModule
from mmbench.models.backbones import build_encoder
from mmbench.models.decoders import SegmentationDecoder
from mmbench.models.fusion_net import predict_each_subset, uniform_subset_mask


def conv(in_channels: int, out_channels: int, kernel: int = 1) -> nn.Sequential:
    """conv → BatchNorm → LeakyReLU(0.2) (RFNet's ``general_conv3d`` / mmFormer's ``general_conv3d_prenorm``
    in 2D; BatchNorm replaces InstanceNorm, which is degenerate on the 2 × 2 deepest maps of small inputs)."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(out_channels), nn.LeakyReLU(0.2, inplace=True))


def masked_stack(features: Sequence[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """``[B, K, C, H, W]`` with absent modalities zeroed (RFNet: ``y[mask] = x[mask]``)."""
    return torch.stack(features, dim=1) * mask[:, :, None, None, None].to(features[0].dtype)


class MultiEncoderSegmenter(MethodModule):
    """Modality-specific encoders (the recipe's backbone) over image modalities, trained with
    per-sample masks uniform over the non-empty subsets (as RFNet and mmFormer draw them).

    Subclasses build their fusion decoder after calling ``__init__`` and implement
    ``decode(features, mask) -> (logits, auxiliary outputs)`` (deep-supervision outputs as
    probabilities at the input size, :meth:`upsample_probabilities`) and
    ``criterion(fused, separate, auxiliary, target) -> {term: loss}``; ``separate`` are the
    shared per-modality decoder's outputs (:meth:`separate_decoder`) on each modality's own
    features."""

    def __init__(self, task: Any, config: Any, ctx: Any):
        super().__init__()
        self.task, self.config = task, config
        self.modalities = tuple(ctx.modalities)
        self.width = ctx.recipe.width
        arch = config.backbone or ctx.recipe.backbone
        self.encoders = nn.ModuleDict({m: build_encoder(ctx.shapes[m], arch, self.width) for m in self.modalities})
        self.channels: list[int] = list(self.encoders[self.modalities[0]].out_channels)
        self.input_size = tuple(ctx.shapes[self.modalities[0]][-2:])

    def separate_decoder(self) -> SegmentationDecoder:
        """The shared-weight per-modality decoder (the segmentation-based regulariser)."""
        return SegmentationDecoder(self.channels, self.task.num_classes, channels=max(self.width * 2, 32))

    def resize(self, logits: torch.Tensor) -> torch.Tensor:
        return F.interpolate(logits, size=self.input_size, mode="bilinear", align_corners=False)

    def upsample_probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Softmax, then bilinear upsampling to the input size with ``align_corners=True``: how
        RFNet and mmFormer bring their deep-supervision outputs to the label's size (their
        ``nn.Upsample(scale_factor=2^k, mode='trilinear', align_corners=True)`` on softmax
        outputs; with ``align_corners=True`` the sampling depends only on the two sizes)."""
        return F.interpolate(F.softmax(logits, dim=1), size=self.input_size, mode="bilinear", align_corners=True)

    def encode(self, batch: Any, names: Sequence[str]) -> dict[str, list[torch.Tensor]]:
        return {m: self.encoders[m](batch[m]) for m in names}

    def masked_scale(self, features: dict[str, list[torch.Tensor]], mask: torch.Tensor, scale: int) -> torch.Tensor:
        """The modalities' features at ``scale`` stacked ``[B, K, C, H, W]``, absent ones zero."""
        reference = next(iter(features.values()))[scale]
        return masked_stack([features[m][scale] if m in features else torch.zeros_like(reference)
                             for m in self.modalities], mask)

    def decode(self, features: dict[str, list[torch.Tensor]], mask: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        raise NotImplementedError

    def criterion(self, fused: torch.Tensor, separate: list[torch.Tensor], auxiliary: list[torch.Tensor],
                  target: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        target = batch["target"]
        features = self.encode(batch, self.modalities)
        mask = uniform_subset_mask(target.shape[0], len(self.modalities), target.device)
        fused, auxiliary = self.decode(features, mask)
        separate = [self.separate(features[m], self.input_size) for m in self.modalities]
        return self.criterion(fused, separate, auxiliary, target)

    def predict_subsets(self, batch: Any, subsets: Sequence[tuple[str, ...]]) -> dict[tuple[str, ...], torch.Tensor]:
        return predict_each_subset(batch, subsets, self.modalities, self.encode,
                                   lambda features, mask: self.decode(features, mask)[0])
