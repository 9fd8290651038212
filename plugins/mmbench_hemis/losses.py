"""HeMIS's training loss (U-HeMIS, ReubenDo/U-HVED ``extensions/u_hemis``: NiftyNet's
cross-entropy + Dice on the softmax output; classification uses cross-entropy alone)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mmbench.models import dice_loss


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, num_classes: int,
                      ignore_index: int | None = None) -> torch.Tensor:
    """Mean cross-entropy + soft Dice (batch-pooled, background included)."""
    ce = F.cross_entropy(logits, target, ignore_index=ignore_index if ignore_index is not None else -100)
    return ce + dice_loss(logits, target, num_classes, ignore_index)
