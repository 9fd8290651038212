"""Task metrics, accumulated over a whole split (never averaged per batch).

* :class:`ClassificationMeter` — accuracy, macro / weighted F1, confusion matrix;
* :class:`SegmentationMeter` — mIoU and pixel accuracy from an accumulated confusion matrix with
  an ignore index;
* :class:`AntiSpoofingMeter` — APCER, BPCER, ACER (ISO/IEC 30107-3) and accuracy.

:func:`meter_for` picks the meter of a task kind. Every meter has ``update(logits, target)`` and
``compute() -> {metric: float}``; values are fractions in [0, 1].
"""

from mmbench.metrics.antispoofing import AntiSpoofingMeter, spoofing_error_rates
from mmbench.metrics.classification import ClassificationMeter, classification_scores
from mmbench.metrics.segmentation import SegmentationMeter, segmentation_scores
from mmbench.specs import TaskSpec

__all__ = [
    "AntiSpoofingMeter",
    "ClassificationMeter",
    "SegmentationMeter",
    "classification_scores",
    "meter_for",
    "segmentation_scores",
    "spoofing_error_rates",
]


def meter_for(task: TaskSpec) -> ClassificationMeter | SegmentationMeter | AntiSpoofingMeter:
    """A fresh meter for ``task``'s kind."""
    if task.kind == "segmentation":
        return SegmentationMeter(task.num_classes, task.ignore_index)
    if task.kind == "anti-spoofing":
        return AntiSpoofingMeter()
    return ClassificationMeter(task.num_classes)
