"""Task losses shared by methods."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mmbench.specs import TaskSpec


def task_loss(task: TaskSpec, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for every task kind; segmentation skips the task's ignore index."""
    ignore = task.ignore_index if task.ignore_index is not None else -100
    return F.cross_entropy(logits, target, ignore_index=ignore)
