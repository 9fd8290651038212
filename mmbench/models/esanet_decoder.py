"""ESANet's decoder side (Seichter et al., ICRA 2021; TUI-NICR/ESANet ``src/models/model.py`` and
``context_modules.py``), as the official code builds it by default:

* **skip projections** — the fused encoder maps at strides 4, 8, 16 go through a 1×1
  conv-BN-ReLU to the decoder's channels, left as they are where the channels already match
  (``encoder_decoder_fusion='add'``);
* **context module** after the last stage — ``ppm`` (bins 1, 5: average-pool, 1×1 conv-BN-ReLU
  to ``C // len(bins)`` channels, nearest upsampling back, concatenation with the input, 1×1
  conv-BN-ReLU to the first decoder width), ``ppm-1-2-4-8``, and the *adaptive* ``appm`` /
  ``appm-1-2-4-8`` (Cityscapes), whose bins are multiplied by the ratio of the actual to the
  training input size, or ``none``. Upsampling in the context module is nearest neighbour, as
  the official code falls back to with learned decoder upsampling;
* **three decoder modules** (widths 512, 256, 128 — ``decoder_channels_mode='decreasing'``): a
  3×3 conv-BN-ReLU, three :class:`~mmbench.models.backbones.NonBottleneck1D` blocks, a 1×1 *side
  output* (deep supervision, training only), **learned ×2 upsampling**
  (``learned-3x3-zeropad``: nearest ×2, then a depthwise 3×3 conv initialised to the bilinear
  kernel [1 2 1]ᵀ[1 2 1]/16, zero bias, trainable), and the skip added;
* a 3×3 conv to the classes and two learned ×2 upsamplings to the input size.

The decoder convolutions keep PyTorch's default initialisation (the official training runs
without ``--he_init``). The side outputs are the logits at strides 8, 16, 32; training sums the
loss over the four outputs (:func:`mmbench.models.losses.deep_supervision_loss`).

Adapted: widths scale with the recipe's ``width`` (``8w, 4w, 2w``; 512, 256, 128 at 64), and an
upsampling whose ×2 size does not match the skip's (inputs not divisible by 32) goes to the
skip's size instead (identical for 480×640 and 512×1024).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mmbench.models.backbones import NonBottleneck1D
from mmbench.models.decoders import SegmentationDecoder, SegmentationOutputs, conv_bn_relu
from mmbench.specs import CONTEXT_MODULES


class LearnedUpsample(nn.Module):
    """ESANet's ``learned-3x3-zeropad`` upsampling: nearest ×2 (or to ``size``), then a depthwise
    3×3 conv (zero padding) initialised to the bilinear kernel."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        kernel = torch.tensor([1.0, 2.0, 1.0])
        with torch.no_grad():
            self.conv.weight.copy_((torch.outer(kernel, kernel) / 16).expand(channels, 1, 3, 3))
            self.conv.bias.zero_()

    def forward(self, x: torch.Tensor, size: Sequence[int] | None = None) -> torch.Tensor:
        size = tuple(size) if size is not None else (x.shape[-2] * 2, x.shape[-1] * 2)
        return self.conv(F.interpolate(x, size=size, mode="nearest"))


class PyramidPooling(nn.Module):
    """ESANet's ``PyramidPoolingModule`` (``ppm``) and ``AdaptivePyramidPoolingModule`` (``appm``):
    see the module docstring. ``input_size`` is the stride-32 size of the training input (appm
    scales its bins by the ratio of the actual size to it)."""

    def __init__(self, in_channels: int, out_channels: int, bins: Sequence[int], adaptive: bool,
                 input_size: Sequence[int]):
        super().__init__()
        reduced = in_channels // len(bins)
        self.bins, self.adaptive, self.input_size = tuple(bins), adaptive, tuple(input_size)
        self.branches = nn.ModuleList(conv_bn_relu(in_channels, reduced, 1) for _ in self.bins)
        self.final_conv = conv_bn_relu(in_channels + reduced * len(self.bins), out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if self.adaptive:  # the official int(ratio + 0.5) bin multipliers
            multiplier = (int(height / self.input_size[0] + 0.5), int(width / self.input_size[1] + 0.5))
        else:
            multiplier = (1, 1)
        out = [x]
        for b, branch in zip(self.bins, self.branches, strict=True):
            pooled = F.adaptive_avg_pool2d(x, (b * multiplier[0], b * multiplier[1]))
            out.append(F.interpolate(branch(pooled), size=(height, width), mode="nearest"))
        return self.final_conv(torch.cat(out, dim=1))


def context_module(name: str, in_channels: int, out_channels: int, input_size: Sequence[int]) -> tuple[nn.Module, int]:
    """ESANet's ``get_context_module``: the module and its output channels."""
    if name not in CONTEXT_MODULES:
        raise ValueError(f"unknown context module '{name}'; choose one of {', '.join(CONTEXT_MODULES)}")
    if name == "none":
        return nn.Identity(), in_channels
    bins = (1, 2, 4, 8) if name.endswith("1-2-4-8") else (1, 5)
    stride32 = (max(input_size[0] // 32, 1), max(input_size[1] // 32, 1))
    return PyramidPooling(in_channels, out_channels, bins, name.startswith("appm"), stride32), out_channels


def decoder_channels(width: int) -> list[int]:
    """ESANet's ``decreasing`` decoder widths, scaled: ``[8w, 4w, 2w]`` (512, 256, 128 at 64)."""
    return [width * 8, width * 4, width * 2]


class ESANetProjection(nn.Module):
    """The skip projections and the context module: encoder maps at strides 4, 8, 16, 32 → the
    four decoder inputs (``[skip4, skip8, skip16, context]``, finest first). MMANet's official
    distillation reads these (its ``fuse_cache``)."""

    def __init__(self, in_channels: Sequence[int], channels: Sequence[int], context: str, input_size: Sequence[int]):
        super().__init__()
        targets = [channels[2], channels[1], channels[0]]  # stride 4 → the last decoder width
        self.skips = nn.ModuleList(
            conv_bn_relu(c, t, 1) if c != t else nn.Identity() for c, t in zip(in_channels[:3], targets, strict=True)
        )
        self.context, context_channels = context_module(context, in_channels[3], channels[0], input_size)
        self.out_channels = [*targets, context_channels]

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [*(skip(f) for skip, f in zip(self.skips, features[:3], strict=True)), self.context(features[3])]


class DecoderModule(nn.Module):
    """One ESANet decoder module: 3×3 conv-BN-ReLU, ``blocks`` NBt1D blocks, side output, learned
    ×2 upsampling, + skip."""

    def __init__(self, in_channels: int, channels: int, num_classes: int, blocks: int = 3):
        super().__init__()
        self.conv3x3 = conv_bn_relu(in_channels, channels, 3)
        self.decoder_blocks = nn.Sequential(*(NonBottleneck1D(channels, channels) for _ in range(blocks)))
        self.side_output = nn.Conv2d(channels, num_classes, 1)
        self.upsample = LearnedUpsample(channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor, side: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.decoder_blocks(self.conv3x3(x))
        side_logits = self.side_output(out) if side else None
        return self.upsample(out, skip.shape[-2:]) + skip, side_logits


class ESANetDecoder(nn.Module):
    """ESANet's ``Decoder`` over the projected inputs (:class:`ESANetProjection`)."""

    def __init__(self, channels: Sequence[int], num_classes: int, in_channels: int | None = None, blocks: int = 3):
        super().__init__()
        widths = [in_channels if in_channels is not None else channels[0], *channels]
        self.decoder_module_1 = DecoderModule(widths[0], widths[1], num_classes, blocks)
        self.decoder_module_2 = DecoderModule(widths[1], widths[2], num_classes, blocks)
        self.decoder_module_3 = DecoderModule(widths[2], widths[3], num_classes, blocks)
        self.conv_out = nn.Conv2d(channels[2], num_classes, 3, padding=1)
        self.upsample1 = LearnedUpsample(num_classes)
        self.upsample2 = LearnedUpsample(num_classes)

    def outputs(self, features: Sequence[torch.Tensor], output_size: Sequence[int], sides: bool = False) -> SegmentationOutputs:
        """Logits, side outputs (strides 8, 16, 32, when ``sides``) and the three decoder maps
        after their skip (coarsest first: ESANet's ``out_down_32_feature`` … ``out_down_8_feature``)."""
        x, side_logits, maps = features[3], [], []
        stages = (self.decoder_module_1, self.decoder_module_2, self.decoder_module_3)
        for module, skip in zip(stages, reversed(features[:3]), strict=True):
            x, side = module(x, skip, sides)
            maps.append(x)
            side_logits.append(side)
        logits = self.upsample2(self.upsample1(self.conv_out(x)), output_size)
        return SegmentationOutputs(logits, list(reversed(side_logits)) if sides else [], maps)

    def forward(self, features: Sequence[torch.Tensor], output_size: Sequence[int]) -> torch.Tensor:
        return self.outputs(features, output_size).logits


class ESANetHead(nn.Module):
    """ESANet's decoder side over one encoder's four stage maps (projection + decoder), as its
    single-modality model (``model_one_modality.py``); same call interface as
    :class:`mmbench.models.SegmentationDecoder`."""

    def __init__(self, in_channels: Sequence[int], num_classes: int, input_size: Sequence[int],
                 context: str = "ppm", width: int = 64):
        super().__init__()
        channels = decoder_channels(width)
        self.projection = ESANetProjection(in_channels, channels, context, input_size)
        self.decoder = ESANetDecoder(channels, num_classes, self.projection.out_channels[3])

    def outputs(self, features: Sequence[torch.Tensor], output_size: Sequence[int], sides: bool = False) -> SegmentationOutputs:
        return self.decoder.outputs(self.projection(features), output_size, sides)

    def forward(self, features: Sequence[torch.Tensor], output_size: Sequence[int]) -> torch.Tensor:
        return self.outputs(features, output_size).logits


def segmentation_head(in_channels: Sequence[int], num_classes: int, input_size: Sequence[int], decoder: str = "light",
                      context: str = "ppm", width: int = 64) -> nn.Module:
    """A decoder over one encoder's four stage maps for ``recipe.decoder``: :class:`ESANetHead`
    (``esanet``) or the light :class:`~mmbench.models.SegmentationDecoder`; both are called as
    ``head(features, output_size)`` and ``head.outputs(features, output_size, sides)``."""
    if decoder == "esanet":
        return ESANetHead(in_channels, num_classes, input_size, context, width)
    return SegmentationDecoder(in_channels, num_classes, channels=max(width * 2, 32))
