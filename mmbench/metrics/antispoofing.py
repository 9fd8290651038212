"""Face anti-spoofing error rates, ISO/IEC 30107-3 definitions.

Labels follow CASIA-SURF / CeFA and the MMANet code: 1 = live (bona fide), 0 = spoof (attack).
The decision is the argmax of the two logits, i.e. a fixed threshold of 0.5 on the softmax
live-probability, as MMANet's ``calc_accuracy_multi`` computes it (no threshold tuned on a dev
set, no EER threshold).

* APCER = attack presentations classified as bona fide / attack presentations;
* BPCER = bona fide presentations classified as attack / bona fide presentations;
* ACER = (APCER + BPCER) / 2.

MMANet's code names these the other way round (its ``APCER`` is the ISO BPCER and its ``NPCER`` the
ISO APCER); ACER is the same either way. mmbench uses the ISO names. When a class is absent from
the split its error rate is 0, as in that code.
"""

from __future__ import annotations

import torch

from mmbench.metrics.confusion import ConfusionAccumulator

LIVE, SPOOF = 1, 0


def spoofing_error_rates(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """APCER, BPCER, ACER and accuracy of hard decisions ``pred`` against ``target`` (1 = live)."""
    pred = pred.reshape(-1)
    target = target.reshape(-1)
    attacks = target == SPOOF
    bona_fide = target == LIVE
    apcer = ((pred == LIVE) & attacks).sum().item() / attacks.sum().item() if attacks.any() else 0.0
    bpcer = ((pred == SPOOF) & bona_fide).sum().item() / bona_fide.sum().item() if bona_fide.any() else 0.0
    accuracy = (pred == target).float().mean().item() if target.numel() else 0.0
    return {"acer": (apcer + bpcer) / 2, "apcer": apcer, "bpcer": bpcer, "accuracy": accuracy}


def rates_from_confusion(matrix: torch.Tensor) -> dict[str, float]:
    """The same rates from a 2×2 confusion matrix (rows = truth, columns = decision)."""
    m = matrix.double()
    attacks, bona_fide, total = m[SPOOF].sum(), m[LIVE].sum(), m.sum()
    apcer = float(m[SPOOF, LIVE] / attacks) if attacks > 0 else 0.0
    bpcer = float(m[LIVE, SPOOF] / bona_fide) if bona_fide > 0 else 0.0
    accuracy = float(m.trace() / total) if total > 0 else 0.0
    return {"acer": (apcer + bpcer) / 2, "apcer": apcer, "bpcer": bpcer, "accuracy": accuracy}


class AntiSpoofingMeter(ConfusionAccumulator):
    """Accumulates ``[B, 2]`` logits against ``[B]`` live/spoof labels as a 2×2 confusion matrix
    (so that several processes' counts add up exactly)."""

    def __init__(self) -> None:
        super().__init__(2)

    def compute(self) -> dict[str, float]:
        return rates_from_confusion(self.matrix)
