"""Encoders adapted to any number of input channels.

:class:`ResNetEncoder` is torchvision's ResNet-18/34 (``BasicBlock``) and ResNet-50
(``Bottleneck``), with the same layer names, so torchvision's ImageNet weights load into a
``width=64`` encoder (:mod:`mmbench.models.pretrained`); ``resnet34-nbt1d`` is ESANet's ResNet-34
with Non-Bottleneck-1D blocks (:class:`NonBottleneck1D`, TUI-NICR/ESANet ``src/models/resnet.py``,
same key names as the authors' ImageNet file). Three changes a benchmark of RGB-D-IR / MS / SAR
data needs:

* ``in_channels`` is free (1 for depth, 13 for Sentinel-2 MS, 2 for SAR);
* ``width`` scales every stage (64 = the standard network; the smoke profiles use 16 so a 2-core
  CPU trains in minutes);
* ``stem="small"`` (one 3x3 stride-2 conv, no max-pool: overall stride 2 instead of 4) for small
  inputs (< 96 px); ``stem="imagenet"`` is the usual 7x7 stride-2 conv + max-pool; ``stem="3x3"``
  a 3x3 stride-2 conv + max-pool (the CASIA-SURF baseline's ResNet-18, which the MMANet face code
  uses). ``recipe.stem`` picks one for every encoder a run builds (:func:`encoder_stem`); ``auto``
  chooses by input size. (The CIFAR
  stride-1 stem costs 4x the compute of ``small`` at 32 px for little gain on the synthetic tasks.)

``stages`` keeps only the first k stages, for mid-fusion networks whose later stages are shared.
The encoder returns the feature map of every kept stage (strides 4, 8, 16, 32 with the ImageNet
stem) so segmentation decoders can use skips. :class:`MLPEncoder` is the encoder for vector
modalities (tabular / pre-extracted features).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck


class NonBottleneck1D(nn.Module):
    """ERFNet's Non-Bottleneck-1D residual block (Romera et al., T-ITS 2018) as ESANet's encoder
    and decoder use it (``src/models/resnet.py``): 3×1 conv (stride along H) → ReLU → 1×3 conv
    (stride along W) → BN → ReLU → 3×1 → ReLU → 1×3 → BN, + the (projected) input, ReLU. The
    factorised convolutions have biases and the BatchNorms ε = 1e-3, as in the official block."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv3x1_1 = nn.Conv2d(inplanes, planes, (3, 1), stride=(stride, 1), padding=(1, 0))
        self.conv1x3_1 = nn.Conv2d(planes, planes, (1, 3), stride=(1, stride), padding=(0, 1))
        self.bn1 = nn.BatchNorm2d(planes, eps=1e-3)
        self.conv3x1_2 = nn.Conv2d(planes, planes, (3, 1), padding=(1, 0))
        self.conv1x3_2 = nn.Conv2d(planes, planes, (1, 3), padding=(0, 1))
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-3)
        self.act = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1x3_1(self.act(self.conv3x1_1(x)))))
        out = self.bn2(self.conv1x3_2(self.act(self.conv3x1_2(out))))
        identity = x if self.downsample is None else self.downsample(x)
        return self.act(out + identity)


RESNET_BLOCKS: dict[str, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet34-nbt1d": (NonBottleneck1D, (3, 4, 6, 3)),
}
SMALL_INPUT = 96
STEM: ContextVar[str] = ContextVar("mmbench_encoder_stem", default="auto")
"""The stem of encoders built without an explicit one (set by :func:`encoder_stem`)."""

ON_BUILT: ContextVar[Callable[[nn.Module], None] | None] = ContextVar("mmbench_on_encoder_built", default=None)
"""Called with every ResNet encoder / trunk at the end of its construction (set by
:func:`mmbench.models.pretrained.imagenet_initialisation`)."""


def _built(module: nn.Module) -> None:
    hook = ON_BUILT.get()
    if hook is not None:
        hook(module)


@contextlib.contextmanager
def encoder_stem(stem: str) -> Iterator[None]:
    """Encoders built inside use ``stem`` (``recipe.stem``) unless given one explicitly."""
    token = STEM.set(stem)
    try:
        yield
    finally:
        STEM.reset(token)


def resolve_stem(size: Sequence[int], stem: str = "auto") -> str:
    """``stem``, else the one set by :func:`encoder_stem`, else ``small`` below 96 px and
    ``imagenet`` from 96 px."""
    stem = STEM.get() if stem == "auto" else stem
    if stem == "auto":
        return "small" if min(size) < SMALL_INPUT else "imagenet"
    return stem


def _block(arch: str) -> type[nn.Module]:
    if arch not in RESNET_BLOCKS:
        raise ValueError(f"unknown backbone '{arch}'; choose one of {', '.join(RESNET_BLOCKS)}")
    return RESNET_BLOCKS[arch][0]


def make_stage(in_channels: int, planes: int, blocks: int, stride: int, block: type[nn.Module] = BasicBlock) -> nn.Sequential:
    """One ResNet stage of ``block``s (``BasicBlock`` or ``Bottleneck``, output ``planes ×
    block.expansion`` channels), with a 1x1 projection shortcut when shapes change."""
    channels = planes * block.expansion
    downsample = None
    if stride != 1 or in_channels != channels:
        downsample = nn.Sequential(
            nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False), nn.BatchNorm2d(channels)
        )
    layers = [block(in_channels, planes, stride, downsample)]
    layers += [block(channels, planes) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def stage_planes(width: int) -> list[int]:
    return [width, width * 2, width * 4, width * 8]


def stage_channels(width: int, arch: str = "resnet18") -> list[int]:
    """Output channels of the four stages: ``width × (1, 2, 4, 8)``, times 4 for ResNet-50."""
    return [p * _block(arch).expansion for p in stage_planes(width)]


class ResNetEncoder(nn.Module):
    """ResNet-18/34/50 (or ESANet's ResNet-34 NBt1D) features for an ``in_channels`` input (see
    module docstring)."""

    def __init__(
        self,
        in_channels: int,
        arch: str = "resnet18",
        width: int = 64,
        stem: str = "imagenet",
        stages: int = 4,
    ):
        super().__init__()
        block = _block(arch)
        channels, planes = stage_channels(width, arch), stage_planes(width)
        if stem not in ("small", "3x3", "imagenet"):
            raise ValueError(f"unknown stem '{stem}'; choose small, 3x3 or imagenet")
        if stem in ("small", "3x3"):
            self.conv1 = nn.Conv2d(in_channels, width, 3, stride=2, padding=1, bias=False)
            self.maxpool = nn.Identity() if stem == "small" else nn.MaxPool2d(3, stride=2, padding=1)
        else:
            self.conv1 = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        blocks = RESNET_BLOCKS[arch][1]
        previous = width
        for index in range(stages):
            stride = 1 if index == 0 else 2
            self.add_module(f"layer{index + 1}", make_stage(previous, planes[index], blocks[index], stride, block))
            previous = channels[index]
        self.arch = arch
        self.num_stages = stages
        self.out_channels = channels[:stages]
        self.strides = [(2 if stem == "small" else 4) * 2**i for i in range(stages)]
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        _built(self)

    def first_conv(self, x: torch.Tensor) -> torch.Tensor:
        """conv1 → BN → ReLU (stride 2), before the max-pool (ESANet fuses modalities here)."""
        return self.relu(self.bn1(self.conv1(x)))

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """conv1 → BN → ReLU → max-pool (identity for the small stem)."""
        return self.maxpool(self.first_conv(x))

    def stage(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """ResNet stage ``index`` (0-based: ``layer{index + 1}``), for networks that fuse between stages."""
        return getattr(self, f"layer{index + 1}")(x)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        features = []
        for index in range(self.num_stages):
            x = self.stage(index, x)
            features.append(x)
        return features


class ResNetTrunk(nn.Module):
    """The later stages of a ResNet applied to fused mid-level features (shared across modalities)."""

    def __init__(self, in_channels: int, arch: str, width: int, first_stage: int):
        super().__init__()
        block = _block(arch)
        channels, planes = stage_channels(width, arch), stage_planes(width)
        blocks = RESNET_BLOCKS[arch][1]
        stages = []
        previous = in_channels
        for index in range(first_stage, 4):
            stages.append(make_stage(previous, planes[index], blocks[index], 2, block))
            previous = channels[index]
        self.stages = nn.ModuleList(stages)
        self.out_channels = channels[first_stage:]
        self.arch, self.first_stage = arch, first_stage
        _built(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class MLPEncoder(nn.Module):
    """Two-layer MLP for vector modalities; returns a one-element feature list like the CNNs."""

    def __init__(self, in_features: int, width: int = 64):
        super().__init__()
        hidden, out = width * 4, width * 8
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, out), nn.BatchNorm1d(out), nn.ReLU(inplace=True),
        )
        self.out_channels = [out]
        self.num_stages = 1

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.net(x)]


def build_encoder(shape: Sequence[int], arch: str = "resnet18", width: int = 64, stages: int = 4) -> nn.Module:
    """The encoder for a modality of per-sample ``shape`` (``ctx.shapes[m]``).

    * ``[C, H, W]``: a ResNet (``arch`` resnet18 / resnet34 / resnet50 / resnet34-nbt1d, channels scaled by ``width``, 64 =
      the standard network; the stem of :func:`resolve_stem`: by default a stride-2 3×3 stem below 96 px,
      else the 7×7 + max-pool stem) with
      ``stages`` stages. Called on ``[B, C, H, W]`` it returns a **list** of ``stages`` feature maps
      ``[B, c_i, H_i, W_i]``, strides 4, 8, 16, 32 (2, 4, 8, 16 with the small stem); channels in
      ``encoder.out_channels`` (``width × (1, 2, 4, 8)``, × 4 for resnet50).
    * ``[D]`` (vector data): a two-layer MLP; called on ``[B, D]`` it returns a one-element list
      ``[[B, 8·width]]`` (``out_channels == [8·width]``).
    """
    if len(shape) == 1:
        return MLPEncoder(shape[0], width)
    return ResNetEncoder(shape[0], arch, width, resolve_stem(shape[-2:]), stages)
