"""mmFormer in 2D: hybrid modality-specific encoders (convolutions + an intra-modal transformer),
an inter-modal transformer over the tokens of every modality, a U-Net fusion decoder with deep
supervision, and the shared-weight per-modality decoder regulariser."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mmbench import TaskSpec
from mmbench.models import MultiEncoderSegmenter, conv
from mmbench_mmformer.losses import mmformer_loss


def transformer(dim: int, heads: int) -> nn.TransformerEncoder:
    """One pre-norm transformer layer (MHSA + GELU FFN ×4, dropout 0.1), as mmFormer's depth-1
    ``Transformer``; ``torch.nn``'s attention has a qkv bias where mmFormer's has none."""
    layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=4 * dim, dropout=0.1, activation="gelu",
                                       batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)


def inter_tokens_to_map(tokens: torch.Tensor, modalities: int, height: int, width: int, layout: str) -> torch.Tensor:
    """``[B, K·N, D]`` inter-modal tokens → ``[B, K·D, H, W]``.

    ``official``: mmFormer's ``.view(B, H, W, K·D)`` of the concatenated sequence, which gives
    position v the K *consecutive* tokens K·v … K·v + K − 1 (mostly one modality's neighbouring
    positions — a scramble of the spatial layout we keep as the default); ``aligned``: position v
    gets the K modalities' tokens of position v, the paper's intent."""
    batch, _, dim = tokens.shape
    if layout == "aligned":
        tokens = tokens.reshape(batch, modalities, height * width, dim).transpose(1, 2)
    return tokens.reshape(batch, height, width, modalities * dim).permute(0, 3, 1, 2)


class MMFormer(MultiEncoderSegmenter):
    """mmFormer (Zhang et al., *mmFormer: Multimodal Medical Transformer for Incomplete Multimodal
    Learning of Brain Tumor Segmentation*, MICCAI 2022; YaoZhang93/mmFormer), adapted to 2D.

    Per modality: core ResNet encoder, then a 1×1 projection of the deepest map to tokens with a
    zero-initialised learnable position embedding and one intra-modal transformer layer. The
    intra outputs and every skip are masked (absent modalities zeroed); the inter-modal
    transformer attends over all K·N tokens without an attention mask (zeroed tokens still take
    part, as in the official code) and its output is reshaped back (see
    :func:`inter_tokens_to_map`) and projected. The fusion decoder merges, at each scale, a
    pre-norm fusion of the masked modality skips with the upsampled coarser map, with a
    deep-supervision head per scale. Training adds the shared per-modality decoder on each
    modality's convolutional features. Adapted: core ResNet encoders instead of mmFormer's 3D
    pre-norm conv encoders; token dimension = the deepest encoder width (the skeleton is
    :class:`mmbench.models.MultiEncoderSegmenter`)."""

    def __init__(self, task: TaskSpec, config: Any, ctx: Any):
        super().__init__(task, config, ctx)
        channels = self.channels
        k, dim = len(self.modalities), channels[-1]
        first = self.encoders[self.modalities[0]].eval()  # eval: a 1-sample probe must not touch BatchNorm
        with torch.no_grad():
            probe = first(torch.zeros(1, *ctx.shapes[self.modalities[0]]))[-1]
        first.train()
        self.grid = tuple(probe.shape[-2:])
        tokens = self.grid[0] * self.grid[1]
        heads = config.heads if dim % config.heads == 0 else 1
        self.project = nn.ModuleDict({m: nn.Conv2d(channels[-1], dim, 1) for m in self.modalities})
        self.position = nn.ParameterDict({m: nn.Parameter(torch.zeros(1, tokens, dim)) for m in self.modalities})
        self.intra = nn.ModuleDict({m: transformer(dim, heads) for m in self.modalities})
        self.inter = transformer(dim, heads)
        self.inter_out = nn.Conv2d(k * dim, channels[-1], 1)
        self.skip_fusion = nn.ModuleList(
            nn.Sequential(conv(k * c, c), conv(c, c, 3), conv(c, c)) for c in channels[:-1]
        )
        self.up = nn.ModuleList(conv(channels[i + 1], channels[i]) for i in range(3))
        self.merge = nn.ModuleList(conv(2 * channels[i], channels[i], 3) for i in range(3))
        self.deep = nn.ModuleList(nn.Conv2d(c, task.num_classes, 1) for c in channels[1:])
        self.classifier = nn.Conv2d(channels[0], task.num_classes, 1)
        self.separate = self.separate_decoder()

    def _intra(self, m: str, deepest: torch.Tensor) -> torch.Tensor:
        tokens = self.project[m](deepest).flatten(2).transpose(1, 2)
        return self.intra[m](tokens + self.position[m])

    def decode(self, features: dict[str, list[torch.Tensor]], mask: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The fused prediction (logits) and the deep-supervision outputs as probabilities
        upsampled to the input size, as the official decoder returns them."""
        reference = next(iter(features.values()))
        batch = mask.shape[0]
        intra = {m: self._intra(m, features[m][-1]) for m in features}
        dim = next(iter(intra.values())).shape[-1]
        token_zero = reference[-1].new_zeros(batch, self.grid[0] * self.grid[1], dim)
        masked = [(intra.get(m, token_zero)) * mask[:, i, None, None] for i, m in enumerate(self.modalities)]
        position = torch.cat([self.position[m] for m in self.modalities], dim=1)
        inter = self.inter(torch.cat(masked, dim=1) + position)
        decoded = self.inter_out(inter_tokens_to_map(inter, len(self.modalities), *self.grid, self.config.token_layout))
        deep = []
        for s in (2, 1, 0):
            deep.append(self.upsample_probabilities(self.deep[s](decoded)))
            skips = self.masked_scale(features, mask, s)
            up = self.up[s](F.interpolate(decoded, size=skips.shape[-2:], mode="bilinear", align_corners=False))
            decoded = self.merge[s](torch.cat([self.skip_fusion[s](skips.flatten(1, 2)), up], dim=1))
        return self.resize(self.classifier(decoded)), deep

    def criterion(self, fused, separate, auxiliary, target):
        return mmformer_loss(fused, separate, auxiliary, target, self.task.num_classes, self.task.ignore_index)
