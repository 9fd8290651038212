"""The contract between a method and the engine."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

Batch = Mapping[str, torch.Tensor]


class MethodModule(nn.Module):
    """Base class of every method's trained model.

    Required:

    * ``training_step(batch, step) -> {term: scalar loss}`` — the named loss terms of one step
      (the engine sums them, back-propagates, steps the optimiser and logs each term). ``batch``
      is ``{modality: float tensor, "target": long tensor, "index": sample ids}`` on the device.
    * ``predict(batch, modalities) -> logits`` — the output when only ``modalities`` (a tuple in
      task order) are present: ``[B, C]`` or ``[B, C, H, W]``.

    Optional:

    * ``predict_subsets(batch, subsets)`` — all deployment subsets at once; override to encode
      each modality once and fuse per subset (the default calls ``predict`` per subset);
    * ``param_groups(recipe)`` — optimiser parameter groups (dicts with ``params`` and optional
      ``lr_scale`` / ``weight_decay``); default: every trainable parameter in one group;
    * ``extra_views`` — names of additional augmented views of each training batch (from
      :data:`mmbench.data.augment.VIEWS`, e.g. ``("strong",)`` for MLKD); the engine puts each,
      independently augmented from the same samples, in ``batch["views"][name]`` (a dict with the
      modalities and ``target``), next to the recipe-augmented batch itself;
    * ``report()`` — JSON-able facts about the model at the end of training for the run record's
      ``extra["method"]`` (e.g. MMANet's mined weak combination, CTKD's final temperature);
    * ``on_epoch_start(epoch, num_epochs)`` / ``on_epoch_end(epoch, num_epochs)`` — warm-ups,
      schedules, memory banks. Keep any state that must survive ``--resume`` in parameters or
      buffers (it is checkpointed with the state dict).
    """

    extra_views: tuple[str, ...] = ()

    def training_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} must implement training_step(batch, step)")

    def predict(self, batch: Batch, modalities: Sequence[str]) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement predict(batch, modalities)")

    def predict_subsets(self, batch: Batch, subsets: Sequence[tuple[str, ...]]) -> dict[tuple[str, ...], torch.Tensor]:
        return {subset: self.predict(batch, subset) for subset in subsets}

    def param_groups(self, recipe: Any) -> Iterable[dict[str, Any]] | None:
        return None

    def report(self) -> dict[str, Any]:
        return {}

    def on_epoch_start(self, epoch: int, num_epochs: int) -> None:
        """Called before each training epoch (0-based)."""

    def on_epoch_end(self, epoch: int, num_epochs: int) -> None:
        """Called after each training epoch (0-based), before validation."""
