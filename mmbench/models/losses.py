"""Task losses shared by methods."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mmbench.specs import TaskSpec


def task_loss(task: TaskSpec, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for every task kind; segmentation skips the task's ignore index."""
    ignore = task.ignore_index if task.ignore_index is not None else -100
    return F.cross_entropy(logits, target, ignore_index=ignore)


def softmax_weighted_loss(logits: torch.Tensor, target: torch.Tensor, num_classes: int,
                          ignore_index: int | None = None) -> torch.Tensor:
    """RFNet / mmFormer's class-balanced cross-entropy (``utils/criterions.py`` of dyh127/RFNet and
    YaoZhang93/mmFormer, identical files): per sample and class, weight 1 − (class voxels /
    sample voxels), term −w·log(clamp(p, 0.005, 1)) on the true class, mean over all positions.

    ``logits`` ``[B, C, ...]``, ``target`` ``[B, ...]``. Positions with ``ignore_index`` (a 2D
    adaptation; BraTS has none) count neither in the class frequencies nor in the mean."""
    prob = F.softmax(logits, dim=1).clamp(0.005, 1.0)
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    safe = torch.where(valid, target, torch.zeros_like(target))
    onehot = F.one_hot(safe, num_classes).movedim(-1, 1).to(prob.dtype) * valid.unsqueeze(1).to(prob.dtype)
    dims = tuple(range(2, onehot.dim()))
    per_class = onehot.sum(dim=dims)  # [B, C]
    weight = 1.0 - per_class / per_class.sum(dim=1, keepdim=True).clamp(min=1)
    weight = weight.reshape(*weight.shape, *([1] * len(dims)))
    loss_map = -(weight * onehot * torch.log(prob)).sum(dim=1)
    return loss_map.sum() / valid.sum().clamp(min=1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None,
              eps: float = 1e-7) -> torch.Tensor:
    """RFNet / mmFormer's soft Dice loss: 1 − mean over classes of 2·Σ(p·t) / (Σp + Σt + eps),
    sums pooled over the whole batch, background class included. Ignored positions are left out."""
    prob = F.softmax(logits, dim=1)
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    safe = torch.where(valid, target, torch.zeros_like(target))
    keep = valid.unsqueeze(1).to(prob.dtype)
    onehot = F.one_hot(safe, num_classes).movedim(-1, 1).to(prob.dtype) * keep
    prob = prob * keep
    dims = (0, *range(2, prob.dim()))
    dice = 2 * (prob * onehot).sum(dim=dims) / (prob.sum(dim=dims) + onehot.sum(dim=dims) + eps)
    return 1.0 - dice.mean()


def ce_dice(logits: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None) -> torch.Tensor:
    """RFNet / mmFormer's criterion of one prediction (``logits`` at the target's size):
    :func:`softmax_weighted_loss` + :func:`dice_loss`."""
    return softmax_weighted_loss(logits, target, num_classes, ignore_index) + dice_loss(logits, target, num_classes, ignore_index)
