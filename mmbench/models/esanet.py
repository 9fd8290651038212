"""The ESANet RGB-D(-X) segmentation network (Seichter et al., *Efficient RGB-D Semantic
Segmentation for Indoor Scene Analysis*, ICRA 2021; TUI-NICR/ESANet ``src/models/model.py``),
shared by the ``esanet`` baselines and MMANet's segmentation model (whose official code is an
ESANet fork).

The first modality (RGB) is the main stream: after the first convolution (before the max-pool)
and after every ResNet stage each modality's map is gated by its own squeeze-and-excitation block
and the gated maps are **added** (ESANet's ``SE-add``); the sum continues down the main stream
while every other stream continues on its own features. Absent modalities (and per-sample
modality dropout) zero a modality's contribution at every fusion point, as the MMANet fork of
ESANet does.

Two decoder sides (``recipe.decoder``):

* ``esanet`` — ESANet's own (:mod:`mmbench.models.esanet_decoder`): skip projections, the context
  module (``recipe.context``: ``ppm``, Cityscapes ``appm-1-2-4-8``), three NBt1D decoder modules
  with learned upsampling and side outputs for deep supervision. With ``recipe.backbone`` =
  ``resnet34-nbt1d`` and ImageNet weights this is ESANet-R34-NBt1D, the official default; with
  ``resnet50`` the network of MMANet's fork (which forces ``args.encoder = 'resnet50'``).
* ``light`` — a PSP-style context module (:class:`PyramidPoolingContext`) and the core FPN-style
  :class:`SegmentationDecoder`, no deep supervision: the smoke profiles' CPU-sized network.

More than two modalities are all fused into the first; a single modality is ESANet's
single-modality network (no SE fusion).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mmbench.models.backbones import ResNetEncoder, resolve_stem
from mmbench.models.decoders import PyramidPoolingContext, SegmentationDecoder, SegmentationOutputs
from mmbench.models.esanet_decoder import ESANetDecoder, ESANetProjection, decoder_channels
from mmbench.models.fusion import SEBlock
from mmbench.specs import SEGMENTATION_DECODERS as DECODERS


class ESANetwork(nn.Module):
    """ESANet over ``modalities`` (``shapes[m]`` = ``[C, H, W]``); ``decoder`` / ``context`` as
    ``recipe.decoder`` / ``recipe.context``."""

    def __init__(self, modalities: Sequence[str], shapes: Mapping[str, Sequence[int]], num_classes: int,
                 arch: str = "resnet34", width: int = 64, decoder: str = "light", context: str = "ppm"):
        super().__init__()
        self.modalities = tuple(modalities)
        if any(len(shapes[m]) != 3 for m in self.modalities):
            raise ValueError("ESANet needs image modalities [C, H, W]")
        if decoder not in DECODERS:
            raise ValueError(f"unknown decoder '{decoder}'; choose one of {', '.join(DECODERS)}")
        self.input_size = tuple(shapes[self.modalities[0]][-2:])
        stem = resolve_stem(self.input_size)
        self.encoders = nn.ModuleDict({m: ResNetEncoder(shapes[m][0], arch, width, stem) for m in self.modalities})
        channels = [width, *self.encoders[self.modalities[0]].out_channels]  # stem + 4 stages
        # one modality (a "customized" single-modality model): ESANet's plain encoder-decoder, no fusion
        self.se = (nn.ModuleList(nn.ModuleDict({m: SEBlock(c) for m in self.modalities}) for c in channels)
                   if len(self.modalities) > 1 else None)
        self.decoder_kind, self.num_classes, self.width = decoder, num_classes, width
        if decoder == "esanet":
            self.projection: nn.Module = ESANetProjection(channels[1:], decoder_channels(width), context, self.input_size)
            self.feature_channels = list(self.projection.out_channels)
        else:
            self.context = PyramidPoolingContext(channels[-1])
            self.feature_channels = channels[1:]
        self.decoder = self.make_decoder()

    def make_decoder(self) -> nn.Module:
        """A new decoder of this network's kind over :meth:`features` (MMANet's auxiliary decoder
        is a second one, as in the official ``ESANet_KD_Auxi``)."""
        if self.decoder_kind == "esanet":
            return ESANetDecoder(decoder_channels(self.width), self.num_classes, self.feature_channels[3])
        return SegmentationDecoder(self.feature_channels, self.num_classes, channels=max(self.width * 2, 32))

    def _fuse(self, level: int, maps: dict[str, torch.Tensor], mask: torch.Tensor, everywhere: list[bool]) -> torch.Tensor:
        """SE-add: Σ over present modalities of SE(map) · presence (the product skipped for a
        modality present in every sample: ×1 changes nothing and costs a full-size pass)."""
        fused = None
        for i, m in enumerate(self.modalities):
            if m not in maps:
                continue
            gated = self.se[level][m](maps[m]) if self.se is not None else maps[m]
            if not everywhere[i]:
                gated = gated * mask[:, i].reshape(-1, 1, 1, 1).to(gated.dtype)
            fused = gated if fused is None else fused + gated
        if fused is None:
            raise ValueError("ESANet needs at least one modality present")
        return fused

    def encode(self, batch: Mapping[str, torch.Tensor], mask: torch.Tensor) -> list[torch.Tensor]:
        """The fused maps after each of the four stages for the per-sample presence ``mask``
        ``[B, M]``; absent modalities are not encoded."""
        anywhere, everywhere = mask.bool().any(dim=0).tolist(), mask.bool().all(dim=0).tolist()  # one host sync
        present = [m for i, m in enumerate(self.modalities) if anywhere[i]]
        main = self.modalities[0]
        first = {m: self.encoders[m].first_conv(batch[m]) for m in present}
        fused = self._fuse(0, first, mask, everywhere)
        streams = {m: self.encoders[m].maxpool(fused if m == main else first[m]) for m in present}
        stages = []
        for stage in range(4):  # the main stream continues from the fused map, the others on their own
            streams = {m: self.encoders[m].stage(stage, streams[m]) for m in present}
            fused = self._fuse(stage + 1, streams, mask, everywhere)
            stages.append(fused)
            if main in streams:
                streams[main] = fused
        return stages

    def features(self, batch: Mapping[str, torch.Tensor], mask: torch.Tensor) -> list[torch.Tensor]:
        """The decoder's four inputs, finest first: the fused stage maps with the context module
        on the deepest (``esanet``: after the skip projections — the official ``fuse_cache``)."""
        stages = self.encode(batch, mask)
        if self.decoder_kind == "esanet":
            return self.projection(stages)
        return [*stages[:3], self.context(stages[3])]

    def outputs(self, features: list[torch.Tensor], sides: bool = False) -> SegmentationOutputs:
        """Logits, side outputs (``esanet`` with ``sides``: strides 8, 16, 32) and decoder maps."""
        return self.decoder.outputs(features, self.input_size, sides)

    def head(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.decoder(features, self.input_size)

    def decode(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The logits and the decoder's maps (coarsest first; the first is ESANet's
        ``out_down_32_feature``)."""
        out = self.outputs(features)
        return out.logits, out.maps

    def training_outputs(self, batch: Mapping[str, torch.Tensor], mask: torch.Tensor) -> list[torch.Tensor]:
        """What the training loss is summed over: the logits, then the side outputs (none for
        ``light``), see :func:`mmbench.models.losses.deep_supervision_loss`."""
        out = self.outputs(self.features(batch, mask), sides=True)
        return [out.logits, *out.sides]

    def forward(self, batch: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(batch, mask))
