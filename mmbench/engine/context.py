"""What a method's ``build`` receives besides the task and its config."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import torch

from mmbench.distillation import DistillationSetup
from mmbench.engine.trained import TrainedModel
from mmbench.specs import DatasetSpec, Recipe, Subset, TaskSpec


@dataclass
class RunContext:
    """The run a method is built for.

    * ``modalities`` — the task's modalities (in order); ``shapes`` — per-sample shape of each
      (``[C, H, W]`` or ``[D]``); ``subsets`` — the deployment subsets that will be evaluated.
    * ``recipe`` — the resolved training recipe (backbone, width, epochs, ...).
    * ``models`` — the trained models the method declared (``MethodSpec.requires``) and, for a
      distillation method, the protocol's references (``"teacher"``, ``"student"``), by role:
      frozen :class:`mmbench.engine.TrainedModel` objects, trained on the same task, data and
      seed before this run was built (or taken from the artifact cache).
    * ``validation_batches()`` — the validation split as device batches (unaugmented), for methods
      that adapt to validation behaviour during training (e.g. MMANet's weak-combination mining in
      ``on_epoch_end``). Never the test split — except under ``recipe.selection=paper``, where the
      test split is the validation split, as in the papers' code.
    * ``class_weights`` — the cross-entropy's per-class weights (``[num_classes]``, on the CPU)
      when ``recipe.class_weighting`` asks for them, else ``None``; a segmentation method passes
      them to :func:`mmbench.models.deep_supervision_loss` / :func:`mmbench.models.task_loss`.
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
    models: Mapping[str, TrainedModel] = field(default_factory=dict)
    class_weights: torch.Tensor | None = None
    _validation: Callable[[], Iterator[dict[str, torch.Tensor]]] | None = field(default=None, repr=False)

    def validation_batches(self) -> Iterator[dict[str, torch.Tensor]]:
        if self._validation is None:
            raise RuntimeError("this context has no validation data attached")
        return self._validation()
