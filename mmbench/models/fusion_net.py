"""The multi-encoder fusion network shared by the fusion baselines and several methods.

One encoder per modality, fusion of their features under a presence mask at every scale up to
``fusion_stage`` (late fusion when 4; mid fusion with a shared ResNet trunk for the later stages
otherwise, as the CASIA-SURF SF baseline fuses after ``layer2``), then a classifier on the pooled
last features or a segmentation decoder over all scales.

Encoding and fusion are separate calls so every deployment subset is evaluated from **one**
encoding of each modality (``encode`` once, ``fuse`` + ``head`` per subset).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import torch
from torch import nn

from mmbench.models.backbones import ResNetTrunk, build_encoder
from mmbench.models.esanet_decoder import segmentation_head
from mmbench.models.fusion import SEBlock, fuse_features


def subset_mask(modalities: Sequence[str], subset: Sequence[str], batch_size: int, device: torch.device | str) -> torch.Tensor:
    """``[B, M]`` presence mask of a deployment subset."""
    row = torch.tensor([1.0 if m in subset else 0.0 for m in modalities], device=device)
    return row.expand(batch_size, -1)


def modality_dropout_mask(batch_size: int, num_modalities: int, p: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """Per-sample Bernoulli modality dropout: each modality is dropped with probability ``p``,
    independently, conditioned on at least one modality being kept (rows with every modality
    dropped are re-drawn, so the kept-subset distribution is the exact conditional Bernoulli)."""
    mask = (torch.rand(batch_size, num_modalities, device=device) >= p).float()
    empty = mask.sum(dim=1) == 0
    while bool(empty.any()):
        mask[empty] = (torch.rand(int(empty.sum()), num_modalities, device=device) >= p).float()
        empty = mask.sum(dim=1) == 0
    return mask


def predict_each_subset(
    batch: Mapping[str, torch.Tensor],
    subsets: Sequence[Sequence[str]],
    modalities: Sequence[str],
    encode: Callable[[Mapping[str, torch.Tensor], list[str]], dict[str, Any]],
    decode: Callable[[dict[str, Any], torch.Tensor], torch.Tensor],
) -> dict[tuple[str, ...], torch.Tensor]:
    """Encode each modality any subset needs once (``encode(batch, names) -> {name: features}``),
    then ``decode(features of the subset's modalities, [B, M] presence mask)`` per subset."""
    needed = [m for m in modalities if any(m in s for s in subsets)]
    features = encode(batch, needed)
    size, device = batch[needed[0]].shape[0], batch[needed[0]].device
    return {
        tuple(s): decode({m: f for m, f in features.items() if m in s}, subset_mask(modalities, s, size, device))
        for s in subsets
    }


def uniform_subset_mask(batch_size: int, num_modalities: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Per-sample modality mask drawn uniformly over the 2^M − 1 non-empty subsets (MMANet's and
    the SF baseline's ``modality_drop``; RFNet / mmFormer sample their masks the same way)."""
    codes = torch.randint(1, 2**num_modalities, (batch_size,), device=device)
    bits = 2 ** torch.arange(num_modalities, device=device)
    return ((codes[:, None] & bits[None, :]) > 0).float()


FUSION_MODES = ("concat", "sum", "mean", "se")


class FusionRule(Protocol):
    """A method's own fusion of one scale (e.g. HeMIS's moments): ``rule(features, mask)`` fuses
    the per-modality maps ``[B, C, ...]`` (all modalities, absent ones zero, in mask-column order)
    under the ``[B, M]`` presence mask; ``rule.out_channels(channels)`` is the fused width for the
    per-modality widths ``channels``."""

    def __call__(self, features: Sequence[torch.Tensor], mask: torch.Tensor) -> torch.Tensor: ...

    def out_channels(self, channels: Sequence[int]) -> int: ...


class FusionNet(nn.Module):
    """Modality-specific encoders → masked fusion (concat / sum / mean / SE + concat, or a
    method's :class:`FusionRule`) → head or decoder."""

    def __init__(
        self,
        modalities: Sequence[str],
        shapes: Mapping[str, Sequence[int]],
        kind: str,
        num_classes: int,
        arch: str = "resnet18",
        width: int = 64,
        fusion: str | FusionRule = "concat",
        fusion_stage: int = 4,
        se_reduction: int = 16,
        decoder: str = "light",
        context: str = "ppm",
    ):
        super().__init__()
        self.modalities = tuple(modalities)
        self.kind = kind
        self.fusion = fusion
        vector = [m for m in self.modalities if len(shapes[m]) == 1]
        if vector and (kind == "segmentation" or fusion_stage < 4):
            raise ValueError(
                f"vector modalities {vector} need late fusion of a classification task "
                f"(got kind={kind}, fusion_stage={fusion_stage})"
            )
        stages = fusion_stage if not vector else 4
        self.encoders = nn.ModuleDict(
            {m: build_encoder(shapes[m], arch, width, stages=stages) for m in self.modalities}
        )
        self.input_size = next((tuple(shapes[m][-2:]) for m in self.modalities if len(shapes[m]) == 3), None)
        # per scale, the channels of each modality's features (vector data: one pooled scale)
        num_scales = 1 if vector else stages
        self._scales = num_scales
        scale_channels = [
            [self.encoders[m].out_channels[-1 if vector else s] for m in self.modalities] for s in range(num_scales)
        ]
        self._scale_channels = scale_channels
        if fusion == "se":
            self.se = nn.ModuleList(
                nn.ModuleList(SEBlock(c, se_reduction) for c in channels) for channels in scale_channels
            )
        if not isinstance(fusion, str):
            fused_channels = [fusion.out_channels(c) for c in scale_channels]
        else:
            if fusion not in FUSION_MODES:
                raise ValueError(f"unknown fusion '{fusion}': use one of {', '.join(FUSION_MODES)} or a FusionRule")
            fused_channels = [sum(c) if fusion in ("concat", "se") else c[0] for c in scale_channels]
        self.trunk = None
        if fusion_stage < 4 and not vector:
            self.trunk = ResNetTrunk(fused_channels[-1], arch, width, fusion_stage)
            fused_channels = [*fused_channels, *self.trunk.out_channels]
        self.feature_channels = fused_channels
        if kind == "segmentation":  # recipe.decoder: ESANet's decoder side, or the light FPN one
            self.decoder = segmentation_head(fused_channels, num_classes, self.input_size, decoder, context, width)
        else:
            self.classifier = nn.Linear(fused_channels[-1], num_classes)

    # -- the three steps -----------------------------------------------------------------------------
    def encode(self, batch: Mapping[str, torch.Tensor], modalities: Sequence[str] | None = None) -> dict[str, list[torch.Tensor]]:
        """Per-modality feature lists for ``modalities`` (default: all the network has)."""
        features = {}
        for m in modalities or self.modalities:
            feats = self.encoders[m](batch[m])
            if self._scales == 1 and feats[-1].dim() > 2:
                feats = [feats[-1].mean(dim=(2, 3))]
            features[m] = feats
        return features

    def fuse(self, features: Mapping[str, list[torch.Tensor]], mask: torch.Tensor) -> list[torch.Tensor]:
        """Fused features per scale; absent modalities (not in ``features`` or masked) count as zeros."""
        reference = next(iter(features.values()))
        fused = []
        for s in range(self._scales):
            per_modality = []
            for i, m in enumerate(self.modalities):
                if m in features:
                    f = features[m][s]
                    if self.fusion == "se":
                        f = self.se[s][i](f)
                else:
                    ref = reference[s]
                    f = ref.new_zeros(ref.shape[0], self._scale_channels[s][i], *ref.shape[2:])
                per_modality.append(f)
            if isinstance(self.fusion, str):
                mode = "concat" if self.fusion in ("concat", "se") else self.fusion
                fused.append(fuse_features(per_modality, mask, mode))
            else:
                fused.append(self.fusion(per_modality, mask))
        if self.trunk is not None:
            fused.extend(self.trunk(fused[-1]))
        return fused

    def head(self, fused: list[torch.Tensor]) -> torch.Tensor:
        """Logits ``[B, C]`` (classification) or ``[B, C, H, W]`` (segmentation)."""
        if self.kind == "segmentation":
            return self.decoder(fused, self.input_size)
        last = fused[-1]
        pooled = last.mean(dim=(2, 3)) if last.dim() == 4 else last
        return self.classifier(pooled)

    def training_outputs(self, batch: Mapping[str, torch.Tensor], mask: torch.Tensor) -> list[torch.Tensor]:
        """The outputs the training loss sums over: the logits, then (segmentation with ESANet's
        decoder) the side outputs — :func:`mmbench.models.losses.deep_supervision_loss`."""
        fused = self.features(batch, mask)
        if self.kind != "segmentation":
            return [self.head(fused)]
        out = self.decoder.outputs(fused, self.input_size, sides=True)
        return [out.logits, *out.sides]

    def predict_subsets(self, batch: Mapping[str, torch.Tensor], subsets: Sequence[Sequence[str]]) -> dict[tuple[str, ...], torch.Tensor]:
        """Outputs for each deployment subset from one encoding of each needed modality."""
        return predict_each_subset(batch, subsets, self.modalities, self.encode,
                                   lambda features, mask: self.head(self.fuse(features, mask)))

    def features(self, batch: Mapping[str, torch.Tensor], mask: torch.Tensor) -> list[torch.Tensor]:
        """Fused features per scale for the per-sample presence ``mask`` (absent modalities not encoded)."""
        present = [m for i, m in enumerate(self.modalities) if bool(mask[:, i].any())]
        return self.fuse(self.encode(batch, present), mask)

    def forward(self, batch: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(batch, mask))
