"""Data path: source → ``datasets`` → decoded, resized arrays → memory-mapped cache → batches.

* :mod:`mmbench.data.sources` resolves a dataset's source to a local directory (hub snapshot
  pinned to a sha, user directory, or generated parquet);
* :mod:`mmbench.data.cache` decodes each split **once** into memory-mapped ``.npy`` arrays keyed
  by (dataset, revision, split, transform);
* :mod:`mmbench.data.arrays` serves normalised batches from those arrays to a ``DataLoader``.
"""

from typing import Any

__all__ = ["ArrayBatches", "TaskData", "load_task_data", "make_loader"]


def __getattr__(name: str) -> Any:  # lazy: dataset plugins import mmbench.data.images without torch
    if name in __all__:
        from mmbench.data import arrays

        return getattr(arrays, name)
    raise AttributeError(f"module 'mmbench.data' has no attribute {name!r}")
