"""Native-resolution split caches (``recipe.resolution=native``): every sample at its decoded size.

ESANet (and the MMANet segmentation fork) augments each training sample from the image as read —
Cityscapes at 2048×1024, SUN RGB-D at its sensors' sizes (561×427 … 730×530) — and scores the
test predictions against the labels as read, the prediction resized to them (``train.py``:
``label_orig``). An input-size cache can do neither, so a native cache keeps the decoded samples
unresized, one after another in a flat file per key (``<key>.bin``; sizes differ from sample to
sample), with each sample's ``(height, width)`` in ``extent.npy``. :class:`RaggedImages` reads
them back as batches padded to the split's largest size: images by repeating their edge (a
bilinear sample at a border reads the border, as cv2 does), labels with the ignore index. A
recipe's ``input_scale`` scales every sample first (smoke runs stay small).

Built like every cache: rows streamed one at a time into a temp directory renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.data.cache import (
    TARGET,
    _check_sample,
    _generated_arrays,
    _no_space,
    _resize,
    _storage_dtype,
    built_once,
    check_orientation,
    decoded_rows,
    keyed_cache_dir,
    scaled_side,
    source_fingerprint,
)
from mmbench.data.sources import REBUILD_HINT
from mmbench.errors import MMBenchError
from mmbench.specs import ArraySource, DatasetSpec, TaskSpec

NATIVE_FORMAT = 1
EXTENT = "extent"
LABEL_PAD = -1
"""Label value of the padding when the task has no ignore index (outside every class)."""


def _native_dir(spec: DatasetSpec, split: str, revision: str, keys: Sequence[str], scale: float,
                source_key: str | None, options: Mapping[str, str] | None) -> Path:
    fields = {"native": NATIVE_FORMAT, "dataset": spec.name, "revision": revision, "split": split,
              "keys": list(keys), "scale": scale, "modalities": dict(spec.modalities), "source": source_key,
              "options": dict(options or {})}
    return keyed_cache_dir(spec, revision, f"{split}-native", fields)


def _decoded_samples(spec: DatasetSpec, split: str, revision: str, data_dir: str | os.PathLike | None,
                     options: Mapping[str, str] | None) -> tuple[int, Iterator[Mapping[str, Any]]]:
    """(count, the split's decoded samples one at a time) from any source."""
    if isinstance(spec.source, ArraySource):
        count, arrays = _generated_arrays(spec, split)
        return count, ({k: a[i] for k, a in arrays.items()} for i in range(count))
    return decoded_rows(spec, split, revision, data_dir, options)


def _scaled(value: np.ndarray, scale: float, nearest: bool) -> np.ndarray:
    return _resize(value, tuple(scaled_side(side, scale) for side in value.shape[-2:]), nearest)


def build_native_cache(spec: DatasetSpec, task: TaskSpec, split: str, revision: str, keys: Sequence[str],
                       data_dir: str | os.PathLike | None = None, scale: float = 1.0, rebuild: bool = False,
                       options: Mapping[str, str] | None = None) -> Path:
    """The native cache of ``keys`` (modalities and / or ``target``) of ``split``, built on first
    use. Every key of a sample must have the same height and width (registered modalities)."""
    target = _native_dir(spec, split, revision, keys, scale, source_fingerprint(spec, data_dir), options)
    return built_once(spec, split, target, rebuild,
                      lambda tmp: _write_native(spec, task, split, revision, keys, data_dir, scale, options, tmp))


def _write_native(spec: DatasetSpec, task: TaskSpec, split: str, revision: str, keys: Sequence[str],
                  data_dir: str | os.PathLike | None, scale: float, options: Mapping[str, str] | None,
                  tmp: Path) -> None:
    count, samples = _decoded_samples(spec, split, revision, data_dir, options)
    handles = {key: open(tmp / f"{key}.bin", "wb") for key in keys}  # closed below
    extents = np.zeros((count, 2), dtype=np.int64)
    channels: dict[str, int] = {}
    labels: set[int] = set()
    written = first_bytes = 0
    try:
        for index, sample in enumerate(samples):
            _check_sample(spec, sample, index)
            if index == 0:
                check_orientation(spec, task, sample)
            sizes = set()
            for key in keys:
                is_target = key == TARGET
                value = _scaled(np.asarray(sample[key]), scale, nearest=is_target)
                if value.ndim != (2 if is_target else 3):
                    raise MMBenchError(f"dataset '{spec.name}': recipe.resolution=native needs images, row {index} "
                                       f"has {key} of shape {value.shape}; use recipe.resolution=input.")
                sizes.add(tuple(value.shape[-2:]))
                channels.setdefault(key, 1 if is_target else value.shape[0])
                data = np.ascontiguousarray(value, dtype=_storage_dtype(is_target, True))
                if is_target:
                    labels.update(np.unique(data).tolist())
                handles[key].write(data.tobytes())
                if index == 0:
                    first_bytes += data.nbytes
            if len(sizes) != 1:
                raise MMBenchError(f"dataset '{spec.name}' split '{split}': row {index} has modalities of different "
                                   f"sizes {sorted(sizes)}; recipe.resolution=native needs registered modalities.")
            extents[index] = sizes.pop()
            if index == 0 and first_bytes * count * 1.05 > shutil.disk_usage(tmp).free:
                raise _no_space(spec, split, tmp, first_bytes * count)
            written += 1
    finally:
        for handle in handles.values():
            handle.close()
    if written != count:
        raise MMBenchError(f"dataset '{spec.name}' split '{split}': expected {count} rows, read {written}.")
    np.save(tmp / f"{EXTENT}.npy", extents)
    meta = {"native": NATIVE_FORMAT, "dataset": spec.name, "revision": revision, "split": split, "count": count,
            "scale": scale, "channels": channels, "labels": sorted(labels)}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))


class RaggedImages:
    """The samples of one key of a native cache; ``images[rows]`` is ``[B, C, H, W]`` (labels
    ``[B, H, W]``) padded to the split's largest extent — images by repeating their edge, labels
    with ``pad_label``."""

    def __init__(self, file: Path, dtype: Any, channels: int, extents: np.ndarray, label: bool, pad_label: int):
        self.extents, self.label, self.pad_label, self.channels = extents, label, pad_label, channels
        self.dtype = np.dtype(dtype)
        sizes = extents[:, 0] * extents[:, 1] * channels
        self.offsets = np.concatenate([[0], np.cumsum(sizes)])
        self.flat = np.memmap(file, dtype=self.dtype, mode="r", shape=(int(self.offsets[-1]),))
        self.canvas = (int(extents[:, 0].max()), int(extents[:, 1].max()))

    @property
    def ndim(self) -> int:
        return 3 if self.label else 4

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.extents), *(() if self.label else (self.channels,)), *self.canvas)

    def __len__(self) -> int:
        return len(self.extents)

    def sample(self, row: int) -> np.ndarray:
        """Sample ``row`` at its own size (``[C, h, w]``; labels ``[h, w]``)."""
        height, width = (int(v) for v in self.extents[row])
        values = self.flat[self.offsets[row]:self.offsets[row + 1]].reshape(self.channels, height, width)
        return values[0] if self.label else values

    def __getitem__(self, rows: Any) -> np.ndarray:
        rows = np.atleast_1d(np.asarray(rows))
        out = np.empty((len(rows), *self.shape[1:]), dtype=self.dtype)
        for i, row in enumerate(rows):
            values = self.sample(int(row))
            pad_h, pad_w = self.canvas[0] - values.shape[-2], self.canvas[1] - values.shape[-1]
            if self.label:
                out[i] = np.pad(values, ((0, pad_h), (0, pad_w)), constant_values=self.pad_label)
            else:
                out[i] = np.pad(values, ((0, 0), (0, pad_h), (0, pad_w)), mode="edge")
        return out


def open_native_cache(directory: Path, pad_label: int | None) -> tuple[dict[str, RaggedImages], dict[str, Any]]:
    """The keys of a built native cache; a damaged one is one line naming it."""
    try:
        meta = json.loads((directory / "meta.json").read_text())
        extents = np.load(directory / f"{EXTENT}.npy")
        count, channels = int(meta["count"]), dict(meta["channels"])
        if extents.shape != (count, 2):
            raise ValueError("extent.npy does not match the sample count")
        arrays = {}
        for key, channel_count in channels.items():
            is_target = key == TARGET
            dtype = np.dtype(_storage_dtype(is_target, True))
            file = directory / f"{key}.bin"
            expected = int((extents[:, 0] * extents[:, 1]).sum()) * int(channel_count) * dtype.itemsize
            if file.stat().st_size != expected:
                raise ValueError(f"{file.name} holds {file.stat().st_size} bytes, the extents say {expected}")
            arrays[key] = RaggedImages(file, dtype, int(channel_count), extents, is_target,
                                       LABEL_PAD if pad_label is None else pad_label)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MMBenchError(f"the native data cache {directory} is damaged ({type(exc).__name__}: {exc}); "
                           f"{REBUILD_HINT}.") from None
    return arrays, meta
