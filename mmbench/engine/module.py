"""The contract between a method and the engine."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

Batch = Mapping[str, torch.Tensor]

NON_MODALITY_KEYS = frozenset({"target", "index"})
"""Batch entries that are not modalities: they are kept when a batch is restricted to a subset."""


class AbsentModalityError(KeyError):
    """A ``predict`` read a modality that its deployment subset says is missing."""

    def __str__(self) -> str:
        return str(self.args[0])


class SubsetBatch(dict):
    """A batch restricted to one deployment subset: the absent modalities are not in it, and
    reading one raises a ``KeyError`` that names the modality and the subset (so a ``predict``
    that forgets to mask fails loudly instead of silently scoring on data it may not see)."""

    def __init__(self, batch: Batch, subset: Sequence[str]):
        self.subset = tuple(subset)
        self.absent = tuple(k for k in batch if k not in NON_MODALITY_KEYS and k not in self.subset)
        super().__init__((k, v) for k, v in batch.items() if k not in self.absent)

    def __missing__(self, key: str) -> Any:
        if key in self.absent:
            raise AbsentModalityError(
                f"modality '{key}' is absent in deployment subset '{'+'.join(self.subset)}'; "
                f"predict() may read only {', '.join(self.subset)} (and target/index)"
            )
        raise KeyError(key)


def restrict_batch(batch: Batch, subset: Sequence[str]) -> SubsetBatch:
    """``batch`` without the modalities that ``subset`` says are missing (see :class:`SubsetBatch`)."""
    return SubsetBatch(batch, subset)


class Features(NamedTuple):
    """What a trained model offers another method (:meth:`MethodModule.features`): its
    representation of a batch per encoder scale (shallow → deep; one entry for vector data),
    fused over the given modalities as the model fuses them, the logits computed from it and, for
    a segmentation network, its decoder's intermediate maps (coarsest first; empty otherwise)."""

    scales: list[torch.Tensor]
    logits: torch.Tensor
    decoder: Sequence[torch.Tensor] = ()


class MethodModule(nn.Module):
    """Base class of every method's trained model.

    Required:

    * ``training_step(batch, step) -> {term: scalar loss}`` — the named loss terms of one step
      (the engine sums them, back-propagates, steps the optimiser and logs each term). ``batch``
      is ``{modality: float tensor, "target": long tensor, "index": sample ids}`` on the device.
    * ``predict(batch, modalities) -> logits`` — the output when only ``modalities`` (a tuple in
      task order) are present: ``[B, C]`` or ``[B, C, H, W]``. The engine passes a batch that
      holds only those modalities (plus ``target`` and ``index``): reading an absent one is a
      ``KeyError`` naming it (:class:`SubsetBatch`).

    A method implements ``predict`` or ``predict_subsets`` (the default of each calls the other).

    Optional:

    * ``predict_subsets(batch, subsets)`` — all deployment subsets at once; override to encode
      each modality once and fuse per subset (the default calls ``predict`` per subset with the
      restricted batch). An override necessarily receives every modality: the output of a subset
      must not depend on the modalities it lacks (``mmbench.testing.check_method`` verifies this
      by replacing each absent modality with noise, then NaN);
    * the **trained-model contract**, what a frozen dependency offers the method that needs it
      (``ctx.models[role]``, a :class:`mmbench.engine.TrainedModel`): ``features(batch, modalities)
      -> Features(scales, logits)`` and ``encoder(modality) -> nn.Module`` (the modality's
      encoder, e.g. to initialise another network from it). A method that others may depend on
      implements them; nothing else of a dependency is reachable;
    * ``param_groups(recipe)`` — optimiser parameter groups (dicts with ``params`` and optional
      ``lr_scale`` / ``weight_decay``); default: every trainable parameter in one group;
    * ``extra_views`` — names of additional augmented views of each training batch (from
      :data:`mmbench.data.augment.VIEWS`, e.g. ``("strong",)`` for MLKD); the engine puts each,
      independently augmented from the same samples, in ``batch["views"][name]`` (a dict with the
      modalities and ``target``), next to the recipe-augmented batch itself;
    * ``paired_modalities = False`` — feed each modality from its own independently shuffled
      (and independently augmented) loader, as methods that do not need registered samples train
      (DisCoM-KD's official script): ``batch[m]`` then holds other samples for every modality and
      ``batch["targets"][m]`` their labels (``batch["target"]`` is the first modality's);
    * ``report()`` — JSON-able facts about the model at the end of training for the run record's
      ``extra["method"]`` (e.g. MMANet's mined weak combination, CTKD's final temperature);
    * ``on_epoch_start(epoch, num_epochs)`` / ``on_epoch_end(epoch, num_epochs)`` — warm-ups,
      schedules, memory banks. Keep any state that must survive ``--resume`` in parameters or
      buffers (it is checkpointed with the state dict).
    """

    extra_views: tuple[str, ...] = ()
    paired_modalities: bool = True

    def training_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} must implement training_step(batch, step)")

    def predict(self, batch: Batch, modalities: Sequence[str]) -> torch.Tensor:
        if type(self).predict_subsets is MethodModule.predict_subsets:
            raise NotImplementedError(f"{type(self).__name__} must implement predict(batch, modalities) or predict_subsets")
        subset = tuple(modalities)
        return self.predict_subsets(batch, [subset])[subset]

    def features(self, batch: Batch, modalities: Sequence[str]) -> Features:
        raise NotImplementedError(
            f"{type(self).__name__} does not offer features(batch, modalities), which a method that depends on it needs"
        )

    def encoder(self, modality: str) -> nn.Module:
        raise NotImplementedError(
            f"{type(self).__name__} does not offer encoder(modality), which a method that depends on it needs"
        )

    def predict_subsets(self, batch: Batch, subsets: Sequence[tuple[str, ...]]) -> dict[tuple[str, ...], torch.Tensor]:
        return {subset: self.predict(restrict_batch(batch, subset), subset) for subset in subsets}

    def param_groups(self, recipe: Any) -> Iterable[dict[str, Any]] | None:
        return None

    def report(self) -> dict[str, Any]:
        return {}

    def on_epoch_start(self, epoch: int, num_epochs: int) -> None:
        """Called before each training epoch (0-based)."""

    def on_epoch_end(self, epoch: int, num_epochs: int) -> None:
        """Called after each training epoch (0-based), before validation."""
