"""mmbench: a plugin-based benchmark suite for multimodal learning with missing modalities and
cross-modal knowledge distillation.

The public API is small and importing it never imports torch:

* specs a plugin returns — :class:`TaskSpec`, :class:`DatasetSpec`, :class:`MethodSpec`,
  :class:`Recipe` and the dataset sources;
* :data:`hookimpl`, the marker plugin hook implementations are decorated with;
* :class:`MMBenchError`, the error type whose message is shown to users as one line.

``MethodModule`` (the base class of a trained model) lives in :mod:`mmbench.engine` because it
needs torch.
"""

from mmbench.errors import MMBenchError
from mmbench.hookspecs import hookimpl
from mmbench.specs import (
    ALL_KINDS,
    ArraySource,
    DatasetSpec,
    GeneratorSource,
    HubSource,
    LocalSource,
    MethodSpec,
    Recipe,
    TaskSpec,
)

__version__ = "0.1.0"

__all__ = [
    "ALL_KINDS",
    "ArraySource",
    "DatasetSpec",
    "GeneratorSource",
    "HubSource",
    "LocalSource",
    "MMBenchError",
    "MethodSpec",
    "Recipe",
    "TaskSpec",
    "__version__",
    "hookimpl",
]
