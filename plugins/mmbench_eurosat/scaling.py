"""DisCoM-KD's per-band scaling: each band mapped from its 2nd–98th percentile to [0, 1] and
clipped (``rescale`` in ``preproc2.py`` of tanodino/CMKD_Disentangle, first commit b63bd5c).

The percentiles are exact and equal ``numpy.percentile``'s default (linear interpolation between
order statistics). Integer bands (the MS half is uint16) are counted in a histogram, so memory
stays at one 65,536-bin count per band however many images are read; float bands (the SAR half,
in dB) keep their values until the percentiles are taken (about 0.5 GB per band over the whole
dataset).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

LOW, HIGH = 2.0, 98.0


def _from_histogram(counts: np.ndarray, q: float) -> float:
    """numpy's linear-interpolation ``q``-th percentile of the values counted in ``counts``."""
    cumulative = np.cumsum(counts)
    position = (cumulative[-1] - 1) * q / 100.0
    below = int(np.floor(position))
    low = int(np.searchsorted(cumulative, below, side="right"))
    high = int(np.searchsorted(cumulative, below + 1, side="right")) if below + 1 < cumulative[-1] else low
    return float(low + (position - below) * (high - low))


class BandPercentiles:
    """Accumulates ``[bands, H, W]`` images and returns each band's (2nd, 98th) percentiles."""

    def __init__(self, bands: int):
        self.bands = bands
        self.histograms: np.ndarray | None = None
        self.values: list[list[np.ndarray]] = [[] for _ in range(bands)]

    def update(self, image: np.ndarray) -> None:
        if np.issubdtype(image.dtype, np.integer) and image.dtype.itemsize <= 2 and image.min() >= 0:
            if self.histograms is None:
                self.histograms = np.zeros((self.bands, 1 << 16), dtype=np.int64)
            for band in range(self.bands):
                self.histograms[band] += np.bincount(image[band].ravel(), minlength=1 << 16)
        else:
            for band in range(self.bands):
                self.values[band].append(np.asarray(image[band], dtype=np.float32).ravel())

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)``, each ``[bands]`` float64."""
        if self.histograms is not None and any(self.values):
            raise ValueError("a band set mixes integer and float images")
        if self.histograms is not None:
            low = [_from_histogram(h, LOW) for h in self.histograms]
            high = [_from_histogram(h, HIGH) for h in self.histograms]
        else:
            pairs = [np.percentile(np.concatenate(v), [LOW, HIGH]) for v in self.values]
            low, high = [p[0] for p in pairs], [p[1] for p in pairs]
        return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)


def band_percentiles(images: Iterable[np.ndarray], bands: int) -> tuple[np.ndarray, np.ndarray]:
    accumulator = BandPercentiles(bands)
    for image in images:
        accumulator.update(image)
    return accumulator.result()


def rescale(image: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """``clip((x - p2) / (p98 - p2), 0, 1)`` per band, in float32 as the official code computes it.
    A constant band (p98 = p2, where the official division gives NaN) maps to 0."""
    low32 = low.astype(np.float32)[:, None, None]
    span = (high - low).astype(np.float32)[:, None, None]
    scaled = (image.astype(np.float32) - low32) / np.where(span > 0, span, np.float32(np.inf))
    return np.clip(scaled, 0.0, 1.0)
