"""Classification metrics from a confusion matrix (scikit-learn's definitions)."""

from __future__ import annotations

import torch

from mmbench.metrics.confusion import ConfusionAccumulator


def classification_scores(matrix: torch.Tensor) -> dict[str, float]:
    """Accuracy, macro F1 and support-weighted F1 of a confusion matrix (rows = truth).

    A class's F1 is 0 when it has neither true nor predicted samples' overlap (precision and recall
    undefined count as 0, as scikit-learn's ``zero_division=0``). Macro F1 averages over classes
    with support or predictions (classes absent from both are left out).
    """
    m = matrix.double()
    total = m.sum()
    tp = m.diag()
    support = m.sum(dim=1)
    predicted = m.sum(dim=0)
    denom = support + predicted
    f1 = torch.where(denom > 0, 2 * tp / denom.clamp(min=1), torch.zeros_like(tp))
    present = denom > 0
    accuracy = (tp.sum() / total).item() if total > 0 else 0.0
    macro = f1[present].mean().item() if present.any() else 0.0
    weighted = (f1 * support).sum().item() / support.sum().item() if support.sum() > 0 else 0.0
    return {"accuracy": accuracy, "macro_f1": macro, "weighted_f1": weighted}


class ClassificationMeter(ConfusionAccumulator):
    """Accumulates ``[B, C]`` logits against ``[B]`` targets."""

    def compute(self) -> dict[str, float]:
        return classification_scores(self.matrix)
