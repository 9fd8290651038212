"""The training engine: methods supply a :class:`MethodModule`; the engine owns the loop.

Public names for plugins: :class:`MethodModule` (the base class of a method's model),
:class:`Features` (what a trained model offers, :meth:`MethodModule.features`),
:class:`RunContext` (what ``build`` receives), :class:`TrainedModel` (a frozen dependency,
``ctx.models[role]``), :class:`SubsetBatch` / :func:`restrict_batch` (a batch restricted to a
deployment subset) and :class:`AbsentModalityError`. Importing this package imports torch.
"""

from mmbench.engine.context import RunContext
from mmbench.engine.module import (
    AbsentModalityError,
    Features,
    MethodModule,
    SubsetBatch,
    restrict_batch,
)
from mmbench.engine.trained import TrainedModel

__all__ = ["AbsentModalityError", "Features", "MethodModule", "RunContext", "SubsetBatch", "TrainedModel", "restrict_batch"]
