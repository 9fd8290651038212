"""Batches from the memory-mapped split caches.

:class:`ArrayBatches` is a map-style dataset indexed by a *list* of positions (used with
``batch_size=None`` and a ``BatchSampler``), so one batch is one fancy-indexed read per array
instead of B ``__getitem__`` calls and a collate: the loader is never what training waits on.
Batches are dicts ``{modality: float32 [B, C, H, W] normalised per channel, "target": int64,
"index": int64 sample ids}``. Shuffling is keyed by (seed, epoch) so a resumed run sees exactly
the batches an uninterrupted one would.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler

from mmbench.data.cache import TARGET, build_split_cache, open_split_cache, scaled_side
from mmbench.data.class_weights import training_class_weights
from mmbench.data.native import EXTENT, RaggedImages, build_native_cache, open_native_cache
from mmbench.errors import MMBenchError
from mmbench.specs import DatasetSpec, HubSource, Recipe, TaskSpec

VAL_CARVE_SEED = 20240917  # fixed: the carved validation split is the same for every run
NATIVE_TARGET, NATIVE_EXTENT = "native_target", "native_extent"


@dataclass
class SplitData:
    """Arrays of one split plus the row indices that belong to it."""

    arrays: dict[str, Any]
    """``{key: [N, ...] array}`` — memory-mapped ``np.ndarray`` or, for a native training split,
    :class:`mmbench.data.native.RaggedImages`."""
    indices: np.ndarray
    native_labels: RaggedImages | None = None
    """``recipe.resolution=native``, evaluation splits: the labels as decoded, scored against."""

    def __len__(self) -> int:
        return len(self.indices)


@dataclass
class TaskData:
    """The three splits of a task, the normalisation statistics and the modality shapes."""

    train: SplitData
    val: SplitData
    test: SplitData
    stats: dict[str, tuple[np.ndarray, np.ndarray]]
    shapes: dict[str, tuple[int, ...]]
    modalities: tuple[str, ...]
    revision: str = ""
    class_weights: np.ndarray | None = None
    """Per-class loss weights of the training samples (``recipe.class_weighting``), else ``None``."""


class ArrayBatches(torch.utils.data.Dataset):
    """Normalised tensor batches of one split; ``batches[[i, j, ...]]`` is one batch."""

    def __init__(self, split: SplitData, stats: dict[str, tuple[np.ndarray, np.ndarray]], modalities: tuple[str, ...]):
        self.split = split
        self.modalities = modalities
        self.stats = {}
        for m in modalities:
            mean, std = (np.asarray(v, dtype=np.float32) for v in stats[m])
            extra = split.arrays[m].ndim - 2  # broadcast over spatial dims: [C] -> [C, 1, 1]
            self.stats[m] = (mean.reshape(-1, *([1] * extra)), std.reshape(-1, *([1] * extra)))

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, positions: Any) -> dict[str, torch.Tensor]:
        rows = np.sort(self.split.indices[np.asarray(positions)])
        batch = {}
        for m in self.modalities:
            mean, std = self.stats[m]
            values = self.split.arrays[m][rows].astype(np.float32)
            batch[m] = torch.from_numpy((values - mean) / std)
        batch[TARGET] = torch.from_numpy(self.split.arrays[TARGET][rows].astype(np.int64))
        batch["index"] = torch.from_numpy(rows.astype(np.int64))
        extents = getattr(self.split.arrays[TARGET], "extents", None)
        if extents is not None:  # a native training split: each sample's size within the padded batch
            batch[EXTENT] = torch.from_numpy(extents[rows])
        if self.split.native_labels is not None:
            batch[NATIVE_TARGET] = torch.from_numpy(self.split.native_labels[rows].astype(np.int64))
            batch[NATIVE_EXTENT] = torch.from_numpy(self.split.native_labels.extents[rows])
        return batch


def make_loader(
    batches: ArrayBatches,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    epoch: int = 0,
    drop_last: bool = False,
    num_workers: int = 0,
    pin_memory: bool = False,
    shard: tuple[int, int] = (0, 1),
) -> DataLoader:
    """A loader over ``batches``; the shuffle order depends only on (seed, epoch).

    ``shard = (rank, world)`` for a distributed run: training (``shuffle``) batches are the same
    global batches on every rank, each rank taking every ``world``-th sample of each; evaluation
    splits the samples themselves, so every sample is seen by exactly one rank."""
    rank, world = shard
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    if shuffle:
        base = RandomSampler(batches, generator=generator)
        sampler: Any = BatchSampler(base, batch_size=batch_size, drop_last=drop_last and len(batches) > batch_size)
        if world > 1:
            sampler = _ShardedBatches(sampler, rank, world)
    else:
        positions = list(range(len(batches)))[rank::world]
        sampler = BatchSampler(positions, batch_size=batch_size, drop_last=False)
    return DataLoader(
        batches,
        sampler=sampler,
        batch_size=None,
        num_workers=num_workers,
        pin_memory=pin_memory,
        generator=generator,
        persistent_workers=False,
    )


class _ShardedBatches:
    """Every ``world``-th sample (from ``rank``) of each global batch."""

    def __init__(self, batches: BatchSampler, rank: int, world: int):
        self.batches, self.rank, self.world = batches, rank, world

    def __iter__(self):
        for batch in self.batches:
            yield batch[self.rank::self.world]

    def __len__(self) -> int:
        return len(self.batches)


def carved_validation_count(task: TaskSpec, train_count: int) -> int:
    """How many of ``train_count`` training samples become the validation split of a task without one."""
    return max(1, int(round(task.val_fraction * train_count)))


def _limit(indices: np.ndarray, limit: int | None) -> np.ndarray:
    if limit is None or limit >= len(indices):
        return indices
    chosen = np.random.default_rng(VAL_CARVE_SEED + 1).permutation(len(indices))[:limit]
    return np.sort(indices[chosen])


def _validate_labels(task: TaskSpec, meta: dict[str, Any], split: str) -> None:
    allowed = set(range(task.num_classes)) | ({task.ignore_index} if task.ignore_index is not None else set())
    bad = sorted(set(meta["labels"]) - allowed)
    if bad:
        raise MMBenchError(
            f"task '{task.name}' split '{split}' has labels {bad[:5]} outside 0..{task.num_classes - 1}"
            + (f" and ignore index {task.ignore_index}" if task.ignore_index is not None else "")
            + "; the dataset does not match the task spec."
        )


def load_task_data(
    task: TaskSpec,
    dataset: DatasetSpec,
    recipe: Recipe,
    revision: str | None = None,
    data_dir: str | os.PathLike | None = None,
    rebuild: bool = False,
    options: Mapping[str, str] | None = None,
) -> TaskData:
    """Build (once) and open the caches of the task's splits, carving validation if needed;
    ``rebuild`` (``--rebuild-cache``) deletes and rebuilds them first; ``options``: the dataset's
    resolved options (``RunPlan.dataset_options``; default: every option at its default)."""
    options = dataset.resolve_options(options or {})
    revision = revision or dataset.revision
    modalities = task.modality_names(dataset)
    missing = [m for m in modalities if m not in dataset.modalities]
    if missing:
        raise MMBenchError(
            f"task '{task.name}' uses modalities {missing} that dataset '{dataset.name}' does not have."
        )

    directories: dict[str, Path] = {}

    def open_split(split: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if split not in dataset.splits:
            raise MMBenchError(
                f"task '{task.name}' needs split '{split}', dataset '{dataset.name}' has {', '.join(dataset.splits)}."
            )
        directories[split] = build_split_cache(dataset, task, split, revision, data_dir, recipe.input_scale,
                                               rebuild=rebuild, options=options)
        arrays, meta = open_split_cache(directories[split])
        expected = (dataset.expected_sizes or {}).get(split)
        if expected is not None and expected != meta["count"]:
            remedy = ("check the revision (--set dataset.revision)" if isinstance(dataset.source, HubSource)
                      else "check the dataset's files")
            if options:
                remedy = f"options {', '.join(f'{k}={v}' for k, v in options.items())}; {remedy}"
            raise MMBenchError(
                f"dataset '{dataset.name}' split '{split}' has {meta['count']} samples at revision "
                f"{revision[:12]}, the spec expects {expected}; {remedy}."
            )
        _validate_labels(task, meta, split)
        return arrays, meta

    native = recipe.resolution == "native"

    def open_native(split: str, keys: tuple[str, ...]) -> dict[str, RaggedImages]:
        directories[f"{split}-native"] = build_native_cache(dataset, task, split, revision, keys, data_dir,
                                                            recipe.input_scale, rebuild, options)
        arrays, meta = open_native_cache(directories[f"{split}-native"], task.ignore_index)
        _validate_labels(task, meta, split)
        return arrays

    train_arrays, train_meta = open_split(task.train_split)
    train_idx = np.arange(train_meta["count"])
    native_train = open_native(task.train_split, (*modalities, TARGET)) if native else None
    own_val = recipe.selection != "paper" and task.val_split and task.val_split in dataset.splits
    if own_val:
        val_arrays, val_meta = open_split(task.val_split)
    test_arrays, test_meta = open_split(task.test_split)
    test_labels = open_native(task.test_split, (TARGET,))[TARGET] if native else None
    test = SplitData(test_arrays, _limit(np.arange(test_meta["count"]), recipe.limit_eval), test_labels)
    if recipe.selection == "paper":  # the papers' protocol: the whole training split, selected on test
        val = SplitData(test.arrays, test.indices, test_labels)
    elif own_val:
        val_labels = open_native(task.val_split, (TARGET,))[TARGET] if native else None
        val = SplitData(val_arrays, _limit(np.arange(val_meta["count"]), recipe.limit_eval), val_labels)
    else:
        order = np.random.default_rng(VAL_CARVE_SEED).permutation(len(train_idx))
        n_val = carved_validation_count(task, len(train_idx))
        val = SplitData(train_arrays, _limit(np.sort(train_idx[order[:n_val]]), recipe.limit_eval),
                        native_train[TARGET] if native_train else None)
        train_idx = np.sort(train_idx[order[n_val:]])
    if native_train is not None:
        augmented_from = native_train
    elif recipe.face_augmentation:  # the face code's resize of every training image, before its augmentation
        side = scaled_side(recipe.face_augmentation[0], recipe.input_scale)
        resized = build_split_cache(dataset, task, task.train_split, revision, data_dir, rebuild=rebuild,
                                    options=options, size=(side, side))
        augmented_from = open_split_cache(resized)[0]
    else:
        augmented_from = train_arrays
    train = SplitData(augmented_from, _limit(train_idx, recipe.limit_train))
    stats = {
        m: (np.asarray(train_meta["stats"][m]["mean"]), np.asarray(train_meta["stats"][m]["std"]))
        for m in modalities
    }
    if not dataset.standardize:  # served as decoded: the dataset scales its inputs itself
        stats = {m: (np.zeros_like(mean), np.ones_like(std)) for m, (mean, std) in stats.items()}
    if recipe.input_scaling:  # one (mean, std) for every channel, as the recipe's official code
        stats = {m: (np.full_like(mean, recipe.input_scaling[0]), np.full_like(std, recipe.input_scaling[1]))
                 for m, (mean, std) in stats.items()}
    shapes = {m: tuple(train_meta["shapes"][m]) for m in modalities}
    class_weights = None
    if recipe.class_weighting != "none":
        weights_dir = directories[f"{task.train_split}-native" if native else task.train_split]
        class_weights = training_class_weights(train.arrays[TARGET], train.indices, task.num_classes,
                                               recipe.class_weighting, weights_dir, task.class_names or ())
    return TaskData(train, val, test, stats, shapes, modalities, revision, class_weights)
