"""What a method's ``build`` receives besides the task and its config."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from mmbench.distillation import DistillationSetup
from mmbench.specs import DatasetSpec, Recipe, Subset, TaskSpec

if TYPE_CHECKING:  # pragma: no cover
    from mmbench.engine.module import MethodModule


@dataclass
class RunContext:
    """The run a method is built for.

    * ``modalities`` — the task's modalities (in order); ``shapes`` — per-sample shape of each
      (``[C, H, W]`` or ``[D]``); ``subsets`` — the deployment subsets that will be evaluated.
    * ``recipe`` — the resolved training recipe (backbone, width, epochs, ...).
    * ``trained_model(method, overrides)`` — another method trained on the same task, data and
      seed (e.g. a teacher), loaded from the content-addressed artifact cache or trained once and
      cached. The returned module is in eval mode with gradients disabled.
    * ``validation_batches()`` — the validation split as device batches (unaugmented), for methods
      that adapt to validation behaviour during training (e.g. MMANet's weak-combination mining in
      ``on_epoch_end``). Never the test split.
    * ``distillation`` — for distillation methods, the resolved teacher / student modality sets
      (:class:`mmbench.distillation.DistillationSetup`); ``None`` otherwise.
    """

    task: TaskSpec
    dataset: DatasetSpec
    recipe: Recipe
    profile: str
    seed: int
    device: torch.device
    modalities: tuple[str, ...]
    shapes: Mapping[str, tuple[int, ...]]
    subsets: tuple[Subset, ...] = ()
    revision: str = ""
    distillation: DistillationSetup | None = None
    _trainer: Callable[[str, Mapping[str, str]], MethodModule] | None = field(default=None, repr=False)
    _validation: Callable[[], Iterator[dict[str, torch.Tensor]]] | None = field(default=None, repr=False)

    def trained_model(self, method: str, overrides: Mapping[str, str] | None = None) -> MethodModule:
        if self._trainer is None:
            raise RuntimeError("this context cannot train other models (no trainer attached)")
        return self._trainer(method, dict(overrides or {}))

    def validation_batches(self) -> Iterator[dict[str, torch.Tensor]]:
        if self._validation is None:
            raise RuntimeError("this context has no validation data attached")
        return self._validation()
