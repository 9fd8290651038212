"""Per-class random splits as the DisCoM-KD code draws them (``createSplits.py`` of
tanodino/CMKD_Disentangle, first commit b63bd5c), for datasets that publish no split of their own
or whose papers drew their own."""

from __future__ import annotations

import numpy as np

__all__ = ["per_class_split"]


def per_class_split(labels: np.ndarray, random_state: int, train: float = 0.7, val: float = 0.1) -> dict[str, np.ndarray]:
    """``{"train", "val", "test"}`` positions of ``labels``: per class (in label order), the
    class's positions shuffled as ``sklearn.utils.shuffle(idx, random_state=random_state)`` does
    (a fresh ``numpy.random.RandomState(random_state)`` shuffling ``arange(n)``), then cut at
    ``int(n * train)`` and ``int(n * (train + val))`` in floating point, as the official code
    computes them (for n = 10 the second cut is 7: that class gets no validation sample)."""
    labels = np.asarray(labels)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        order = np.arange(len(members))
        np.random.RandomState(random_state).shuffle(order)
        members = members[order]
        train_end, val_end = int(len(members) * train), int(len(members) * (train + val))
        parts["train"].append(members[:train_end])
        parts["val"].append(members[train_end:val_end])
        parts["test"].append(members[val_end:])
    return {split: np.concatenate(p) for split, p in parts.items()}
