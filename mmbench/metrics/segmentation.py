"""Semantic segmentation metrics from a confusion matrix accumulated over the whole split."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mmbench.metrics.confusion import ConfusionAccumulator, confusion_matrix


def segmentation_scores(matrix: torch.Tensor) -> dict[str, float]:
    """mIoU and pixel accuracy.

    IoU_c = TP_c / (TP_c + FP_c + FN_c). Classes with no ground-truth pixel in the split are
    excluded from the mean, as ESANet's newest ``src/metric.py`` does (the older MMANet fork counts
    them as IoU 0; both agree on a full test set where every class occurs).
    """
    m = matrix.double()
    tp = m.diag()
    gt = m.sum(dim=1)
    union = gt + m.sum(dim=0) - tp
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.zeros_like(tp))
    present = gt > 0
    miou = iou[present].mean().item() if present.any() else 0.0
    total = gt.sum().item()
    return {"miou": miou, "pixel_accuracy": tp.sum().item() / total if total else 0.0}


class SegmentationMeter(ConfusionAccumulator):
    """Accumulates ``[B, C, H, W]`` logits against ``[B, H, W]`` labels (ignore index skipped)."""

    def update_native(self, logits: torch.Tensor, target: torch.Tensor, extents: torch.Tensor) -> None:
        """Score each sample's logits resized (bilinear) to its label's own ``(h, w)`` — the top-left
        of ``target``'s padded canvas — as ESANet's ``train.py`` / ``eval.py`` score against
        ``label_orig``; one sample at a time, so no full-resolution batch of logits is held."""
        for logit, label, (height, width) in zip(logits, target, extents.tolist(), strict=True):
            resized = F.interpolate(logit[None], size=(height, width), mode="bilinear", align_corners=False)
            self.matrix += confusion_matrix(resized.argmax(dim=1), label[:height, :width], self.num_classes,
                                            self.ignore_index)

    def compute(self) -> dict[str, float]:
        return segmentation_scores(self.matrix)
