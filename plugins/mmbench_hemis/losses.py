"""HeMIS's training loss (U-HeMIS, ReubenDo/U-HVED ``extensions/u_hemis/application.py``: NiftyNet's
``CrossEntropy`` + ``Dice`` with softmax; classification uses cross-entropy alone)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mmbench.models import dice_loss

NIFTYNET_DICE_EPSILON = 1e-5


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, num_classes: int,
                      ignore_index: int | None = None) -> torch.Tensor:
    """Mean cross-entropy + NiftyNet's soft Dice as U-HeMIS trains with it: NiftyNet's
    ``LossFunction`` computes each loss per batch element and averages, and its ``dice`` divides
    2·Σp·t by Σp² + Σt + 1e-5 (squared prediction), background included. The cross-entropy's
    per-sample means average to the pooled mean when no position is ignored."""
    ce = F.cross_entropy(logits, target, ignore_index=ignore_index if ignore_index is not None else -100)
    return ce + dice_loss(logits, target, num_classes, ignore_index, eps=NIFTYNET_DICE_EPSILON,
                          per_sample=True, squared=True)
