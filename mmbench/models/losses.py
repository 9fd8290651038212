"""Task losses shared by methods."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from mmbench.specs import TaskSpec


def task_loss(task: TaskSpec, logits: torch.Tensor, target: torch.Tensor,
              class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy for every task kind; segmentation skips the task's ignore index and takes the
    run's ``ctx.class_weights`` (a weighted mean over the labelled pixels)."""
    return deep_supervision_loss(task, [logits], target, class_weights)


def downsample_target(target: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """A label map ``[B, H, W]`` resized to ``size`` by nearest neighbour (ESANet's
    ``MultiScaleLabel``: ``cv2.resize(..., INTER_NEAREST)``, source index ⌊i·H/h⌋ — the same as
    torch's ``nearest``); ignored pixels stay ignored."""
    if tuple(target.shape[-2:]) == tuple(size):
        return target
    resized = F.interpolate(target.unsqueeze(1).to(torch.float32), size=tuple(size), mode="nearest")
    return resized.squeeze(1).to(target.dtype)


def deep_supervision_loss(task: TaskSpec, outputs: Sequence[torch.Tensor], target: torch.Tensor,
                          class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """ESANet's training loss (``train.py``, ``utils.CrossEntropyLoss2d``): the (class-weighted)
    cross-entropy of every output — the logits at the input size and the side outputs — against
    the target downsampled to that output's size (:func:`downsample_target`), **summed** over the
    outputs. Each term is a weighted mean over the non-ignored pixels (the official Σ loss / Σ
    weight of the labelled pixels). With one output (and for classification) it is :func:`task_loss`."""
    ignore = task.ignore_index if task.ignore_index is not None else -100
    weight = class_weights.to(outputs[0].device, outputs[0].dtype) if class_weights is not None else None
    return sum((F.cross_entropy(o, downsample_target(target, o.shape[-2:]) if o.dim() > 2 else target, weight=weight,
                                ignore_index=ignore) for o in outputs), outputs[0].new_zeros(()))


def _one_hot_valid(prob: torch.Tensor, target: torch.Tensor, num_classes: int,
                   ignore_index: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The one-hot target ``[B, C, ...]`` (zero at ignored positions) and the valid mask ``[B, ...]``."""
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    safe = torch.where(valid, target, torch.zeros_like(target))
    onehot = F.one_hot(safe, num_classes).movedim(-1, 1).to(prob.dtype) * valid.unsqueeze(1).to(prob.dtype)
    return onehot, valid


def _probabilities(scores: torch.Tensor, from_probabilities: bool) -> torch.Tensor:
    return scores if from_probabilities else F.softmax(scores, dim=1)


def softmax_weighted_loss(logits: torch.Tensor, target: torch.Tensor, num_classes: int,
                          ignore_index: int | None = None, *, from_probabilities: bool = False) -> torch.Tensor:
    """RFNet / mmFormer's class-balanced cross-entropy (``utils/criterions.py`` of dyh127/RFNet and
    YaoZhang93/mmFormer, identical files): per sample and class, weight 1 − (class voxels /
    sample voxels), term −w·log(clamp(p, 0.005, 1)) on the true class, mean over all positions.

    ``logits`` ``[B, C, ...]`` (softmax probabilities with ``from_probabilities=True``: the
    official criterion receives probabilities, upsampled ones for deep supervision), ``target``
    ``[B, ...]``. Positions with ``ignore_index`` (a 2D adaptation; BraTS has none) count neither
    in the class frequencies nor in the mean."""
    prob = _probabilities(logits, from_probabilities).clamp(0.005, 1.0)
    onehot, valid = _one_hot_valid(prob, target, num_classes, ignore_index)
    dims = tuple(range(2, onehot.dim()))
    per_class = onehot.sum(dim=dims)  # [B, C]
    weight = 1.0 - per_class / per_class.sum(dim=1, keepdim=True).clamp(min=1)
    weight = weight.reshape(*weight.shape, *([1] * len(dims)))
    loss_map = -(weight * onehot * torch.log(prob)).sum(dim=1)
    return loss_map.sum() / valid.sum().clamp(min=1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None,
              eps: float = 1e-7, *, per_sample: bool = False, squared: bool = False,
              from_probabilities: bool = False) -> torch.Tensor:
    """Soft Dice loss, background class included: 1 − mean over classes of 2·Σ(p·t) / (Σp + Σt + eps).

    Defaults: RFNet / mmFormer's ``dice_loss`` (sums pooled over the whole batch, ε = 1e-7).
    ``per_sample=True, squared=True, eps=1e-5`` is NiftyNet's ``dice`` as U-HeMIS trains with it
    (``niftynet/layer/loss_segmentation.py``: the loss is computed per batch element and averaged,
    the denominator is Σp² + Σt). ``from_probabilities``: ``logits`` already are softmax outputs.
    Ignored positions are left out of every sum."""
    prob = _probabilities(logits, from_probabilities)
    onehot, valid = _one_hot_valid(prob, target, num_classes, ignore_index)
    prob = prob * valid.unsqueeze(1).to(prob.dtype)
    dims = tuple(range(2, prob.dim())) if per_sample else (0, *range(2, prob.dim()))
    mass = (prob * prob if squared else prob).sum(dim=dims)
    dice = 2 * (prob * onehot).sum(dim=dims) / (mass + onehot.sum(dim=dims) + eps)
    return 1.0 - dice.mean(dim=-1).mean()


def ce_dice(logits: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None,
            *, from_probabilities: bool = False) -> torch.Tensor:
    """RFNet / mmFormer's criterion of one prediction (at the target's size):
    :func:`softmax_weighted_loss` + :func:`dice_loss`; ``from_probabilities`` as theirs."""
    return (softmax_weighted_loss(logits, target, num_classes, ignore_index, from_probabilities=from_probabilities)
            + dice_loss(logits, target, num_classes, ignore_index, from_probabilities=from_probabilities))
