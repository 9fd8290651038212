"""mmbench: a plugin-based benchmark suite for multimodal learning with missing modalities and
cross-modal knowledge distillation.

The public API — every name a plugin or a script may use — is re-exported from four modules;
everything else in the package is internal and may change:

* ``mmbench`` (this module; importing it never imports torch): the specs a plugin registers —
  :class:`TaskSpec`, :class:`DatasetSpec`, :class:`MethodSpec`, :class:`Recipe`, the dataset
  sources, :class:`Reference` (a declared dependency on a protocol reference model); the
  :data:`hookimpl` marker; :class:`MMBenchError` (shown to users as one line); subset helpers;
  the distillation protocol's setups; the image decoding helpers and the DisCoM-KD per-class
  split (:func:`per_class_split`) for dataset plugins; and the
  Python entry points :func:`run`, :func:`sweep` and :func:`reproduce`, with exactly the CLI's
  semantics;
* :mod:`mmbench.engine`: ``MethodModule`` (a method's model), ``RunContext``, ``TrainedModel``,
  ``Features`` and the subset-batch types;
* :mod:`mmbench.models`: the shared building blocks (encoders, fusion, decoders, losses, masks);
* :mod:`mmbench.testing`: the conformance kit (``check_method``, ``check_task``).
"""

from __future__ import annotations

from typing import Any

from mmbench.distillation import DistillationSetup, resolve_setup, teacher_free_setup
from mmbench.errors import MMBenchError
from mmbench.hookspecs import hookimpl
from mmbench.loggers import enabled_loggers
from mmbench.specs import (
    ALL_KINDS,
    CPU_SMOKE,
    ArraySource,
    DatasetSpec,
    Deviation,
    GeneratorSource,
    HubFilesSource,
    HubRepo,
    HubSource,
    LocalSource,
    MethodSpec,
    ProfileRecipe,
    Recipe,
    Reference,
    Subset,
    TaskSpec,
    all_subsets,
    parse_subset,
    subset_key,
)

__version__ = "0.2.0"

_LAZY = {
    "LazyRows": "mmbench.data.images", "open_image": "mmbench.data.images", "depth_metres": "mmbench.data.images",
    "rgb_array": "mmbench.data.images", "per_class_split": "mmbench.data.splits", "run": "mmbench.api", "reproduce": "mmbench.reproduction",
    "sweep": "mmbench.api",
}

__all__ = [
    "ALL_KINDS",
    "ArraySource",
    "CPU_SMOKE",
    "DatasetSpec",
    "Deviation",
    "DistillationSetup",
    "GeneratorSource",
    "HubFilesSource",
    "HubRepo",
    "HubSource",
    "LazyRows",
    "LocalSource",
    "MMBenchError",
    "MethodSpec",
    "ProfileRecipe",
    "Recipe",
    "Reference",
    "Subset",
    "TaskSpec",
    "__version__",
    "all_subsets",
    "depth_metres",
    "enabled_loggers",
    "hookimpl",
    "open_image",
    "parse_subset",
    "per_class_split",
    "reproduce",
    "resolve_setup",
    "rgb_array",
    "run",
    "subset_key",
    "sweep",
    "teacher_free_setup",
]


def __getattr__(name: str) -> Any:
    """Names whose modules import numpy / torch are imported on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mmbench' has no attribute {name!r}")
