"""Decoding helpers shared by dataset plugins: PIL images → ``[C, H, W]`` float32 arrays, with
the checks that catch a dataset whose encoding differs from its spec."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

import numpy as np

from mmbench.errors import MMBenchError

__all__ = ["LazyRows", "depth_metres", "open_image", "rgb_array"]

MAX_DEPTH_M = 20.0
T = TypeVar("T")


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


def open_image(path: Any) -> Any:
    """A fully loaded PIL image; an unreadable file is one clear error naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            return image
    except (OSError, UnidentifiedImageError) as exc:
        raise MMBenchError(f"cannot read {path}: {exc}; re-extract the dataset.") from None


class LazyRows(Generic[T]):
    """The rows of a bring-your-own split: ``load(item)`` for each item, called only as the cache
    is built (sized, so the split is never materialised)."""

    def __init__(self, items: Sequence[T], load: Callable[[T], dict[str, Any]]):
        self.items, self.load = items, load

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for item in self.items:
            yield self.load(item)
