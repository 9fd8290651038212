"""Decoding helpers shared by dataset plugins: PIL images → ``[C, H, W]`` float32 arrays, with
the checks that catch a dataset whose encoding differs from its spec."""

from __future__ import annotations

from typing import Any

import numpy as np

from mmbench.errors import MMBenchError

MAX_DEPTH_M = 20.0


def rgb_array(image: Any) -> np.ndarray:
    """``[3, H, W]`` float32 (0-255) from an RGB / RGBA / palette image; other modes are an error."""
    if image.mode not in ("RGB", "RGBA", "P"):
        raise MMBenchError(f"RGB image has PIL mode '{image.mode}', expected RGB; the dataset differs from the spec.")
    return np.moveaxis(np.asarray(image.convert("RGB"), dtype=np.float32), -1, 0)


def depth_metres(image: Any, rotated: bool = False) -> np.ndarray:
    """``[1, H, W]`` depth from a depth PNG: 16-bit millimetres → metres (``rotated``: the SUN
    RGB-D toolbox's storage, millimetres rotated left by 3 bits, undone as ``(p >> 3) | (p << 13)``),
    checked to lie within 0-20 m; 8-bit (normalised, DFormer-style) → ``p / 255``, relative depth."""
    values = np.asarray(image)
    if image.mode == "L":
        return (values.astype(np.float32) / 255.0)[None]
    if image.mode not in ("I;16", "I;16B", "I"):
        raise MMBenchError(f"depth image has PIL mode '{image.mode}', expected 8-bit (L) or 16-bit (I;16) PNG.")
    raw = values.astype(np.uint32) & 0xFFFF
    if rotated:
        raw = ((raw >> 3) | (raw << 13)) & 0xFFFF
    metres = raw.astype(np.float32) / 1000.0
    if float(metres.max(initial=0.0)) > MAX_DEPTH_M:
        raise MMBenchError(f"depth up to {metres.max():.1f} m exceeds {MAX_DEPTH_M:.0f} m: the depth encoding "
                           "differs from the spec (millimetre PNG expected).")
    return metres[None]
