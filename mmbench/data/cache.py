"""Decode, resize and store each split once, as memory-mapped ``.npy`` arrays.

The cache directory is keyed by (dataset, revision, split, transform): the task's input size and
the cache format. It is built by streaming rows (one decoded sample in memory at a time) into
pre-sized ``open_memmap`` arrays inside a temp directory that is renamed into place when complete,
so an interrupted build never leaves a usable-looking partial cache. Modalities are stored as
float16, targets as int16 (dense) or int64 (per-sample). Per-channel mean/std of every modality is
accumulated on the way (float64) and stored in ``meta.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.data.sources import split_rows
from mmbench.errors import MMBenchError
from mmbench.io import atomic_directory, mmbench_home
from mmbench.specs import DatasetSpec, TaskSpec

CACHE_FORMAT = 1
TARGET = "target"


def _cache_dir(spec: DatasetSpec, split: str, revision: str, input_size: Any) -> Path:
    key = json.dumps(
        {"format": CACHE_FORMAT, "dataset": spec.name, "revision": revision, "split": split,
         "input_size": input_size, "modalities": dict(spec.modalities)},
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    safe_revision = revision.replace("/", "_")
    return mmbench_home() / "cache" / spec.name / safe_revision / f"{split}-{digest}"


def _resize(array: np.ndarray, size: tuple[int, int] | None, nearest: bool) -> np.ndarray:
    if size is None or array.ndim < 2 or tuple(array.shape[-2:]) == tuple(size):
        return array
    import torch
    import torch.nn.functional as F

    tensor = torch.from_numpy(np.ascontiguousarray(array)).float()
    if array.ndim == 2:
        tensor = tensor[None]
    mode = "nearest" if nearest else "bilinear"
    kwargs = {} if nearest else {"align_corners": False, "antialias": True}
    resized = F.interpolate(tensor[None], size=tuple(size), mode=mode, **kwargs)[0]
    if array.ndim == 2:
        resized = resized[0]
    return resized.numpy().astype(array.dtype if nearest else np.float32)


def _check_sample(spec: DatasetSpec, sample: Mapping[str, Any], index: int) -> None:
    missing = [k for k in (*spec.modalities, TARGET) if k not in sample]
    if missing:
        raise MMBenchError(
            f"dataset '{spec.name}': decode() returned no {', '.join(missing)} for row {index}; "
            f"it must return every modality ({', '.join(spec.modalities)}) and '{TARGET}'."
        )
    for modality, channels in spec.modalities.items():
        shape = np.shape(sample[modality])
        if not shape or (len(shape) == 3 and shape[0] != channels):
            raise MMBenchError(
                f"dataset '{spec.name}': row {index} has {modality} of shape {shape}, "
                f"expected [{channels}, H, W] (or a vector)."
            )


def build_split_cache(
    spec: DatasetSpec, task: TaskSpec, split: str, revision: str, data_dir: str | os.PathLike | None = None
) -> Path:
    """Return the cache directory of ``split``, building it on first use."""
    target = _cache_dir(spec, split, revision, task.input_size)
    if (target / "meta.json").exists():
        return target
    rows = split_rows(spec, split, revision, data_dir)
    if rows.count == 0:
        raise MMBenchError(f"dataset '{spec.name}' split '{split}' is empty.")
    dense_target = task.kind == "segmentation"
    with atomic_directory(target) as tmp:
        arrays: dict[str, np.ndarray] = {}
        sums: dict[str, np.ndarray] = {}
        squares: dict[str, np.ndarray] = {}
        counts: dict[str, int] = {}
        labels: set[int] = set()
        written = 0
        for index, row in enumerate(rows.rows):
            if index >= rows.count:
                break
            sample = spec.decode(row)
            _check_sample(spec, sample, index)
            for key in (*spec.modalities, TARGET):
                is_target = key == TARGET
                value = np.asarray(sample[key])
                value = _resize(value, task.input_size if (not is_target or dense_target) else None, nearest=is_target)
                if key not in arrays:
                    dtype = (np.int16 if dense_target else np.int64) if is_target else np.float16
                    arrays[key] = np.lib.format.open_memmap(
                        tmp / f"{key}.npy", mode="w+", dtype=dtype, shape=(rows.count, *value.shape)
                    )
                elif value.shape != arrays[key].shape[1:]:
                    raise MMBenchError(
                        f"dataset '{spec.name}' split '{split}': row {index} has {key} of shape "
                        f"{value.shape}, earlier rows {arrays[key].shape[1:]}; set the task's input_size."
                    )
                arrays[key][index] = value
                if is_target:
                    labels.update(np.unique(value).tolist())
                else:
                    flat = value.reshape(value.shape[0], -1).astype(np.float64) if value.ndim > 1 else value[:, None].astype(np.float64)
                    sums[key] = sums.get(key, 0) + flat.sum(axis=1)
                    squares[key] = squares.get(key, 0) + (flat**2).sum(axis=1)
                    counts[key] = counts.get(key, 0) + flat.shape[1]
            written += 1
        if written != rows.count:
            raise MMBenchError(
                f"dataset '{spec.name}' split '{split}': expected {rows.count} rows, read {written}."
            )
        for array in arrays.values():
            array.flush()
        stats = {}
        for key in spec.modalities:
            mean = sums[key] / counts[key]
            std = np.sqrt(np.maximum(squares[key] / counts[key] - mean**2, 0.0))
            stats[key] = {"mean": mean.tolist(), "std": np.where(std < 1e-6, 1.0, std).tolist()}
        meta = {
            "format": CACHE_FORMAT, "dataset": spec.name, "revision": revision, "split": split,
            "count": rows.count, "stats": stats, "labels": sorted(labels),
            "shapes": {k: list(a.shape[1:]) for k, a in arrays.items()},
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    return target


def open_split_cache(directory: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Memory-map the arrays of a built split cache; a damaged cache is a clear error."""
    try:
        meta = json.loads((directory / "meta.json").read_text())
        arrays = {
            key: np.load(directory / f"{key}.npy", mmap_mode="r") for key in meta["shapes"]
        }
    except (OSError, ValueError, KeyError) as exc:
        raise MMBenchError(
            f"the data cache at {directory} is damaged ({exc}); delete that directory to rebuild it."
        ) from None
    return arrays, meta
