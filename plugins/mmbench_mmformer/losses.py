"""mmFormer's loss (YaoZhang93/mmFormer ``utils/criterions.py``, byte-identical to RFNet's): the
class-weighted cross-entropy + soft Dice of the fused prediction, of the shared-weight
per-modality decoders and of the decoder's deep-supervision outputs, all with weight 1. The
deep-supervision outputs are softmax probabilities upsampled to the target's size, as the
official ``Decoder_fuse`` returns them (``up(softmax(·))``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mmbench.models import ce_dice


def mmformer_loss(fused: torch.Tensor, separate: Sequence[torch.Tensor], deep: Sequence[torch.Tensor],
                  target: torch.Tensor, num_classes: int, ignore_index: int | None = None) -> dict[str, torch.Tensor]:
    return {
        "fuse": ce_dice(fused, target, num_classes, ignore_index),
        "sep": sum(ce_dice(p, target, num_classes, ignore_index) for p in separate),  # type: ignore[dict-item]
        "deep": sum(ce_dice(p, target, num_classes, ignore_index, from_probabilities=True) for p in deep),  # type: ignore[dict-item]
    }
