"""Class weights of a segmentation training set, computed once and cached beside its data.

``median-frequency`` (Eigen & Fergus, ICCV 2015), as ESANet computes it
(``src/datasets/dataset_base.py``, ``compute_class_weights``; the MMANet segmentation fork
keeps it): for each class c, f_c = (pixels labelled c) / (pixels of the images in which c
occurs), and w_c = median(f) / f_c. An ignored (void) pixel counts towards no class's pixels but
towards the size of its image, as the official code takes every image's whole pixel count as the
denominator. The official code raises on a class absent from the training set (its f is 0/0); here
that is a one-line error too.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from mmbench.errors import MMBenchError
from mmbench.files import atomic_write_json

MODES = ("median-frequency",)
CHUNK = 64  # images per read of the memory-mapped label array


def label_frequencies(labels: np.ndarray, indices: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(pixels of each class, pixels of the images that contain each class) over ``labels[indices]``
    (``[N, H, W]``, or :class:`mmbench.data.native.RaggedImages` — each image counted at its own
    size; values outside ``0..num_classes-1`` — the ignore index, the padding — are not counted)."""
    pixels = np.zeros(num_classes, dtype=np.int64)
    image_pixels = np.zeros(num_classes, dtype=np.int64)
    extents = getattr(labels, "extents", None)  # native labels: each image's own size, not the padded one
    for start in range(0, len(indices), CHUNK):
        rows = np.sort(indices[start:start + CHUNK])
        chunk = np.asarray(labels[rows], dtype=np.int64)
        per_image = chunk.reshape(len(chunk), -1)
        offsets = np.arange(len(chunk))[:, None] * (num_classes + 1)
        clipped = np.where((per_image >= 0) & (per_image < num_classes), per_image, num_classes)
        counts = np.bincount((clipped + offsets).ravel(), minlength=len(chunk) * (num_classes + 1))
        counts = counts.reshape(len(chunk), num_classes + 1)[:, :num_classes]
        pixels += counts.sum(axis=0)
        sizes = (extents[rows].prod(axis=1) if extents is not None else np.full(len(chunk), per_image.shape[1]))
        image_pixels += ((counts > 0) * sizes[:, None]).sum(axis=0)
    return pixels, image_pixels


def median_frequency(pixels: np.ndarray, image_pixels: np.ndarray, class_names: tuple[str, ...] = ()) -> np.ndarray:
    """median(f) / f_c with f_c = pixels_c / image_pixels_c (float64)."""
    absent = np.flatnonzero(pixels == 0)
    if absent.size:
        names = [class_names[i] if i < len(class_names) else str(i) for i in absent[:5]]
        raise MMBenchError(f"{absent.size} class(es) never occur in the training samples (e.g. {', '.join(names)}): "
                           "median-frequency weights need every class; use the whole training split (no "
                           "recipe.limit_train) or set recipe.class_weighting=none.")
    frequency = pixels / image_pixels
    return np.median(frequency) / frequency


def training_class_weights(labels: np.ndarray, indices: np.ndarray, num_classes: int, mode: str,
                           cache_dir: Path, class_names: tuple[str, ...] = ()) -> np.ndarray:
    """The ``mode`` weights of the training samples ``indices``, read from (or written to)
    ``cache_dir`` — one file per mode and set of samples."""
    if mode not in MODES:
        raise MMBenchError(f"unknown class weighting {mode!r}; choose one of {', '.join(MODES)}.")
    key = hashlib.sha256(np.ascontiguousarray(np.sort(indices), dtype=np.int64).tobytes()).hexdigest()[:16]
    path = Path(cache_dir) / f"class-weights-{mode}-{key}.json"
    try:
        stored = json.loads(path.read_text())
        weights = np.asarray(stored["weights"], dtype=np.float64)
        if weights.shape == (num_classes,) and np.isfinite(weights).all():
            return weights
    except (OSError, ValueError, KeyError, TypeError):
        pass  # absent or damaged: computed again
    pixels, image_pixels = label_frequencies(labels, indices, num_classes)
    weights = median_frequency(pixels, image_pixels, class_names)
    try:
        atomic_write_json(path, {"mode": mode, "samples": int(len(indices)), "weights": weights.tolist(),
                                 "pixels": pixels.tolist(), "image_pixels": image_pixels.tolist()})
    except OSError:
        pass  # a read-only cache: the weights are recomputed next time
    return weights
