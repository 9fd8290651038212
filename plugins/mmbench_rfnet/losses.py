"""RFNet's losses (dyh127/RFNet ``utils/criterions.py``): class-weighted cross-entropy + soft Dice
on every prediction. The criterion (:func:`mmbench.models.ce_dice`) lives in the core, since
mmFormer uses the identical file; this module assembles RFNet's total."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mmbench.models import ce_dice


def rfnet_loss(fused: torch.Tensor, separate: Sequence[torch.Tensor], region_maps: Sequence[torch.Tensor],
               target: torch.Tensor, num_classes: int, fuse_on: bool, ignore_index: int | None = None) -> dict[str, torch.Tensor]:
    """The three terms of RFNet's training loss, all weights 1: the fused prediction (multiplied by
    0 before ``region_fusion_start_epoch``, as the official code), the shared-weight per-modality
    decoders (the segmentation-based regulariser) and the deep-supervised region maps, which are
    softmax probabilities already upsampled to the target's size (official: the criterion is
    applied to ``up(softmax(prm))``, not to the softmax of upsampled logits)."""
    return {
        "fuse": ce_dice(fused, target, num_classes, ignore_index) * (1.0 if fuse_on else 0.0),
        "sep": sum(ce_dice(p, target, num_classes, ignore_index) for p in separate),  # type: ignore[dict-item]
        "prm": sum(ce_dice(p, target, num_classes, ignore_index, from_probabilities=True) for p in region_maps),  # type: ignore[dict-item]
    }
