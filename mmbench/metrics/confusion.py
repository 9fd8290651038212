"""Confusion-matrix accumulation shared by the classification and segmentation meters."""

from __future__ import annotations

import torch


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None) -> torch.Tensor:
    """``[num_classes, num_classes]`` int64 counts, rows = true class, columns = prediction.

    Pixels/samples whose target equals ``ignore_index`` are left out; so are targets outside
    ``[0, num_classes)`` (which a validated dataset never has).
    """
    pred = pred.reshape(-1).long()
    target = target.reshape(-1).long()
    keep = (target >= 0) & (target < num_classes)
    if ignore_index is not None:
        keep &= target != ignore_index
    flat = target[keep] * num_classes + pred[keep]
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes).cpu()


class ConfusionAccumulator:
    """Sums confusion matrices over batches."""

    def __init__(self, num_classes: int, ignore_index: int | None = None):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        pred = logits.argmax(dim=1)
        self.matrix += confusion_matrix(pred, target, self.num_classes, self.ignore_index)

    def all_reduce(self) -> None:
        """Sum the counts of every process of a distributed run (a no-op in a single process):
        metrics are computed from the summed matrix, never averaged per rank."""
        from mmbench.engine.distributed import all_reduce_sum

        self.matrix = all_reduce_sum(self.matrix)
