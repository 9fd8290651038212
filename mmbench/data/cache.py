"""Decode, resize and store each split once, as memory-mapped ``.npy`` arrays.

The cache directory is keyed by (dataset, revision, split, transform): the task's input size and
the cache format. It is built by streaming rows (one decoded sample in memory at a time) into
pre-sized ``open_memmap`` arrays inside a temp directory that is renamed into place when complete,
so an interrupted build never leaves a usable-looking partial cache. Modalities are stored as
float16, targets as int16 (dense) or int64 (per-sample). Per-channel mean/std of every modality is
accumulated on the way (float64) and stored in ``meta.json``.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.data.sources import (
    REBUILD_HINT,
    generated_dir,
    local_fingerprint,
    local_root,
    split_rows,
)
from mmbench.errors import MMBenchError
from mmbench.files import atomic_directory, describe_os_error, mmbench_home
from mmbench.specs import ArraySource, DatasetSpec, GeneratorSource, LocalSource, TaskSpec

CACHE_FORMAT = 1
TARGET = "target"


def _cache_dir(spec: DatasetSpec, split: str, revision: str, input_size: Any, source_key: str | None = None,
               options: Mapping[str, str] | None = None) -> Path:
    fields = {"format": CACHE_FORMAT, "dataset": spec.name, "revision": revision, "split": split,
              "input_size": input_size, "modalities": dict(spec.modalities)}
    if source_key is not None:
        fields["source"] = source_key
    if options:
        fields["options"] = dict(options)
    return keyed_cache_dir(spec, revision, split, fields)


def keyed_cache_dir(spec: DatasetSpec, revision: str, stem: str, fields: Mapping[str, Any]) -> Path:
    """``$MMBENCH_HOME/cache/<dataset>/<revision>/<stem>-<digest of fields and the dataset's code>``."""
    if spec.code_identity:  # the dataset plugin's version and source hash (see DatasetSpec.code_identity)
        fields = {**fields, "code": spec.code_identity}
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]
    return mmbench_home() / "cache" / spec.name / revision.replace("/", "_") / f"{stem}-{digest}"


class ChannelStats:
    """Running per-channel mean and std (float64) of ``[C, ...]`` samples (vectors: per feature)."""

    def __init__(self) -> None:
        self.sum: np.ndarray | float = 0.0
        self.squares: np.ndarray | float = 0.0
        self.count = 0

    def update(self, value: np.ndarray) -> None:
        flat = value.reshape(value.shape[0], -1) if value.ndim > 1 else value[:, None]
        flat = flat.astype(np.float64)
        self.sum = self.sum + flat.sum(axis=1)
        self.squares = self.squares + (flat**2).sum(axis=1)
        self.count += flat.shape[1]

    def result(self) -> dict[str, list[float]]:
        mean = np.asarray(self.sum) / self.count
        std = np.sqrt(np.maximum(np.asarray(self.squares) / self.count - mean**2, 0.0))
        return {"mean": mean.tolist(), "std": np.where(std < 1e-6, 1.0, std).tolist()}


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


def check_orientation(spec: DatasetSpec, task: TaskSpec, sample: Mapping[str, Any]) -> None:
    """A decoded sample whose aspect ratio is the flip of ``task.input_size`` (which is
    ``(height, width)``) means the size was given as (width, height): resizing would distort
    every image, so it is an error rather than a silent stretch."""
    if task.input_size is None:
        return
    height, width = task.input_size
    for modality in spec.modalities:
        shape = np.shape(sample[modality])
        if len(shape) != 3:
            continue
        native_h, native_w = shape[1], shape[2]
        if height != width and native_h != native_w and (height > width) != (native_h > native_w):
            raise MMBenchError(
                f"task '{task.name}': input_size is (height, width) = ({height}, {width}) but dataset "
                f"'{spec.name}' decodes {modality} as {native_h}×{native_w} (height×width), the other "
                f"orientation; input_size is (H, W): did you mean ({width}, {height})?"
            )


def scaled_side(side: int, scale: float) -> int:
    """``side`` pixels times ``scale`` (``Recipe.input_scale``), at least 8."""
    return side if scale == 1.0 else max(8, int(round(side * scale)))


def scaled_input_size(task: TaskSpec, scale: float = 1.0) -> tuple[int, int] | None:
    """The task's ``input_size`` times ``scale`` (``Recipe.input_scale``), at least 8 px a side."""
    if task.input_size is None:
        return None
    return tuple(scaled_side(side, scale) for side in task.input_size)  # type: ignore[return-value]


_rebuilt: set[Path] = set()  # caches rebuilt by this process (--rebuild-cache rebuilds each once)


def build_split_cache(
    spec: DatasetSpec, task: TaskSpec, split: str, revision: str, data_dir: str | os.PathLike | None = None,
    input_scale: float = 1.0, rebuild: bool = False, options: Mapping[str, str] | None = None,
    size: tuple[int, int] | None = None,
) -> Path:
    """Return the cache directory of ``split``, building it on first use (rows are streamed:
    one decoded sample at a time is held in memory and written with ordinary file writes; an
    :class:`mmbench.ArraySource` is written in chunks straight from its arrays). ``rebuild``
    deletes the cache (and a generator's output) first, once per process; ``options`` are the
    dataset's resolved options (part of the cache key); ``size``: cache at this (H, W) instead of
    the task's scaled input size (the face recipes' training resize)."""
    input_size = size or scaled_input_size(task, input_scale)
    target = _cache_dir(spec, split, revision, input_size, source_fingerprint(spec, data_dir), options)
    if rebuild and target not in _rebuilt and isinstance(spec.source, GeneratorSource):
        if generated_dir(spec, spec.source) not in _rebuilt:  # regenerated once, with the first of its caches
            _rebuilt.add(generated_dir(spec, spec.source))
            shutil.rmtree(generated_dir(spec, spec.source), ignore_errors=True)

    def write(tmp: Path) -> None:
        if isinstance(spec.source, ArraySource):
            count, writers, stats, labels = _write_arrays(spec, task, split, input_size, tmp)
        else:
            count, writers, stats, labels = _write_rows(spec, task, split, revision, data_dir, input_size, tmp,
                                                        options)
        for writer in writers.values():
            writer.close()
        meta = {
            "format": CACHE_FORMAT, "dataset": spec.name, "revision": revision, "split": split,
            **({"options": dict(options)} if options else {}), "count": count, "stats": {key: s.result() for key, s in stats.items()}, "labels": sorted(labels),
            "shapes": {k: list(w.sample_shape) for k, w in writers.items()},
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))

    return built_once(spec, split, target, rebuild, write)


def source_fingerprint(spec: DatasetSpec, data_dir: str | os.PathLike | None) -> str | None:
    """Part of a cache key: a bring-your-own copy's identity (validated on every use), else ``None``."""
    if isinstance(spec.source, LocalSource):
        return local_fingerprint(local_root(spec, spec.source, data_dir))
    return None


def built_once(spec: DatasetSpec, split: str, target: Path, rebuild: bool, write: Callable[[Path], None]) -> Path:
    """``target``, written by ``write(tmp)`` into a temp directory renamed into place unless its
    ``meta.json`` exists (``rebuild``: deleted first, once per process); a full disk or an
    unwritable folder is one line."""
    if rebuild and target not in _rebuilt:
        _rebuilt.add(target)
        shutil.rmtree(target, ignore_errors=True)
    if (target / "meta.json").exists():
        return target
    try:
        with atomic_directory(target) as tmp:
            write(tmp)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise _no_space(spec, split, target.parent) from None
        raise describe_os_error(exc, mmbench_home(), "set MMBENCH_HOME to a writable folder for the data caches.") from None
    return target


class NpyWriter:
    """Appends samples to a ``.npy`` file with ordinary writes: a full disk is an ``OSError``
    (reported as such), never the SIGBUS a memory-mapped write dies of."""

    def __init__(self, path: Path, dtype: Any, count: int, sample_shape: tuple[int, ...]):
        self.dtype, self.count, self.sample_shape, self.written = np.dtype(dtype), count, tuple(sample_shape), 0
        self.handle = open(path, "wb")  # closed in close()
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                  "shape": (count, *self.sample_shape)}
        np.lib.format.write_array_header_2_0(self.handle, header)

    @property
    def nbytes(self) -> int:
        return self.count * self.dtype.itemsize * int(np.prod(self.sample_shape, dtype=np.int64))

    def append(self, values: np.ndarray) -> None:
        """Write one sample (``stacked=False``) or a stack of samples ``[n, *sample_shape]``."""
        values = np.asarray(values)
        stacked = values.shape[1:] == self.sample_shape and values.ndim == len(self.sample_shape) + 1
        self.handle.write(np.ascontiguousarray(values, dtype=self.dtype).tobytes())
        self.written += len(values) if stacked else 1

    def close(self) -> None:
        self.handle.close()
        if self.written != self.count:
            raise MMBenchError(f"internal error: wrote {self.written} of {self.count} samples to {self.handle.name}")


def _no_space(spec: DatasetSpec, split: str, where: Path, need: int | None = None) -> MMBenchError:
    try:
        free = shutil.disk_usage(where).free
    except OSError:
        free = 0
    needed = f"need ~{need / 2**20:.0f} MB, " if need else ""
    return MMBenchError(
        f"not enough space under $MMBENCH_HOME ({mmbench_home()}) for the data cache of dataset '{spec.name}' "
        f"split '{split}' ({needed}have {free / 2**20:.0f} MB); free some space or set MMBENCH_HOME to a larger disk."
    )


def _check_space(spec: DatasetSpec, split: str, tmp: Path, writers: Mapping[str, NpyWriter]) -> None:
    """Refuse before writing a cache that cannot fit (with a 5 % margin)."""
    need = sum(w.nbytes for w in writers.values())
    if need * 1.05 > shutil.disk_usage(tmp).free:
        raise _no_space(spec, split, tmp, need)


_Written = tuple[int, dict[str, "NpyWriter"], dict[str, ChannelStats], set[int]]


def _storage_dtype(is_target: bool, dense_target: bool) -> type:
    return (np.int16 if dense_target else np.int64) if is_target else np.float16


def decoded_rows(spec: DatasetSpec, split: str, revision: str, data_dir: str | os.PathLike | None,
                 options: Mapping[str, str] | None = None) -> tuple[int, Iterator[Mapping[str, Any]]]:
    """(count, the split's decoded samples, one at a time) of a row source (hub, generator, local)."""
    rows = split_rows(spec, split, revision, data_dir, options)
    if rows.count == 0:
        raise MMBenchError(f"dataset '{spec.name}' split '{split}' is empty.")
    assert spec.decode is not None
    decode = spec.decode
    return rows.count, (decode(row) for row in itertools.islice(rows.rows, rows.count))


def _write_rows(
    spec: DatasetSpec, task: TaskSpec, split: str, revision: str, data_dir: str | os.PathLike | None,
    input_size: tuple[int, int] | None, tmp: Path, options: Mapping[str, str] | None = None,
) -> _Written:
    """Decode the split row by row into pre-sized memory maps under ``tmp``."""
    count, samples = decoded_rows(spec, split, revision, data_dir, options)
    dense_target = task.kind == "segmentation"
    writers: dict[str, NpyWriter] = {}
    stats = {key: ChannelStats() for key in spec.modalities}
    labels: set[int] = set()
    written = 0
    for index, sample in enumerate(samples):
        _check_sample(spec, sample, index)
        if index == 0:
            check_orientation(spec, task, sample)
        values = {}
        for key in (*spec.modalities, TARGET):
            is_target = key == TARGET
            value = np.asarray(sample[key])
            values[key] = _resize(value, input_size if (not is_target or dense_target) else None, nearest=is_target)
        if not writers:
            writers = {key: NpyWriter(tmp / f"{key}.npy", _storage_dtype(key == TARGET, dense_target), count,
                                      value.shape) for key, value in values.items()}
            _check_space(spec, split, tmp, writers)
        for key, value in values.items():
            if value.shape != writers[key].sample_shape:
                raise MMBenchError(
                    f"dataset '{spec.name}' split '{split}': row {index} has {key} of shape "
                    f"{value.shape}, earlier rows {writers[key].sample_shape}; set the task's input_size."
                )
            writers[key].append(value)
            if key == TARGET:
                labels.update(np.unique(value).tolist())
            else:
                stats[key].update(value)
        written += 1
    if written != count:
        raise MMBenchError(f"dataset '{spec.name}' split '{split}': expected {count} rows, read {written}.")
    return count, writers, stats, labels


ARRAY_CHUNK = 256  # samples resized and written at a time from an ArraySource


def _generated_arrays(spec: DatasetSpec, split: str) -> tuple[int, dict[str, np.ndarray]]:
    """The arrays an :class:`ArraySource` generates for ``split``, checked for completeness."""
    source = spec.source
    assert isinstance(source, ArraySource)
    if split not in spec.splits:
        raise MMBenchError(f"dataset '{spec.name}' has no split '{split}' (splits: {', '.join(spec.splits)}).")
    generated = source.generate(split)
    if not isinstance(generated, Mapping):
        raise MMBenchError(
            f"dataset '{spec.name}': ArraySource.generate('{split}') must return a dict of arrays "
            f"{{modality: [N, ...], '{TARGET}': [N, ...]}}, got {type(generated).__name__}."
        )
    missing = [k for k in (*spec.modalities, TARGET) if k not in generated]
    if missing:
        raise MMBenchError(
            f"dataset '{spec.name}': ArraySource.generate('{split}') returned no {', '.join(missing)}; "
            f"it must return every modality ({', '.join(spec.modalities)}) and '{TARGET}'."
        )
    arrays = {k: np.asarray(generated[k]) for k in (*spec.modalities, TARGET)}
    counts = {k: (len(a) if a.ndim else 0) for k, a in arrays.items()}
    count = counts[TARGET]
    if count == 0:
        raise MMBenchError(f"dataset '{spec.name}' split '{split}' is empty.")
    uneven = {k: n for k, n in counts.items() if n != count}
    if uneven:
        raise MMBenchError(
            f"dataset '{spec.name}' split '{split}': every array needs {count} samples (as '{TARGET}'); "
            + ", ".join(f"{k} has {n}" for k, n in uneven.items()) + "."
        )
    return count, arrays


def _write_arrays(
    spec: DatasetSpec, task: TaskSpec, split: str, input_size: tuple[int, int] | None, tmp: Path,
) -> _Written:
    """Write an :class:`ArraySource` split into memory maps under ``tmp``, chunk by chunk."""
    count, generated = _generated_arrays(spec, split)
    first = {k: a[0] for k, a in generated.items()}
    _check_sample(spec, first, 0)
    check_orientation(spec, task, first)
    dense_target = task.kind == "segmentation"
    stats = {key: ChannelStats() for key in spec.modalities}
    labels: set[int] = set()
    sizes = {key: input_size if (key != TARGET or dense_target) else None for key in generated}
    writers = {key: NpyWriter(tmp / f"{key}.npy", _storage_dtype(key == TARGET, dense_target), count,
                              _resize(np.asarray(source[0]), sizes[key], nearest=key == TARGET).shape)
               for key, source in generated.items()}
    _check_space(spec, split, tmp, writers)
    for key, source in generated.items():
        is_target, writer = key == TARGET, writers[key]
        for start in range(0, count, ARRAY_CHUNK):
            chunk = np.stack([_resize(np.asarray(v), sizes[key], nearest=is_target)
                              for v in source[start:start + ARRAY_CHUNK]])
            if chunk.shape[1:] != writer.sample_shape:
                raise MMBenchError(
                    f"dataset '{spec.name}' split '{split}': {key} samples have different shapes "
                    f"({chunk.shape[1:]} vs {writer.sample_shape}); set the task's input_size."
                )
            writer.append(chunk)
            if is_target:
                labels.update(np.unique(chunk).tolist())
            else:
                stats[key].update(np.moveaxis(chunk, 0, 1))  # [C, n, ...]: per-channel statistics
    return count, writers, stats, labels


def open_split_cache(directory: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Memory-map the arrays of a built split cache. A damaged file (unreadable, truncated, of the
    wrong length, per-sample labels the cache's own metadata does not list) is one line naming it."""
    meta_file = directory / "meta.json"
    try:
        meta = json.loads(meta_file.read_text())
        shapes, count, labels = dict(meta["shapes"]), int(meta["count"]), set(meta["labels"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MMBenchError(f"the data cache file {meta_file} is damaged ({type(exc).__name__}); "
                           f"{REBUILD_HINT}.") from None
    arrays = {}
    for key, shape in shapes.items():
        file = directory / f"{key}.npy"
        try:
            array = np.load(file, mmap_mode="r")
        except (OSError, ValueError, EOFError) as exc:
            raise MMBenchError(f"the data cache file {file} is damaged ({type(exc).__name__}: {exc}); "
                               f"{REBUILD_HINT}.") from None
        if array.shape != (count, *shape):
            raise MMBenchError(f"the data cache file {file} holds {array.shape}, its metadata says "
                               f"{(count, *shape)}; {REBUILD_HINT}.")
        arrays[key] = array
    target = arrays.get(TARGET)
    if target is not None and target.ndim == 1 and not set(np.unique(target).tolist()) <= labels:
        raise MMBenchError(f"the data cache file {directory / (TARGET + '.npy')} holds labels its metadata does not "
                           f"list (the file is damaged); {REBUILD_HINT}.")
    return arrays, meta
