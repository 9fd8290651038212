"""mmbench_loggers — experiment loggers on the lifecycle hooks (built-in plugins).

* ``mmbench_loggers.tensorboard`` — TensorBoard event files in each run's folder
  (``<out>/<task>/<method>/<run_id>/tensorboard/``): every loss term, the learning rate, the
  validation metrics of every deployment subset and the epoch times per epoch; the test metrics
  and the record at the end. ``pip install 'mmbench[tensorboard]'``; ``--logger tensorboard``.
* ``mmbench_loggers.mlflow`` — one MLflow run per mmbench run in the experiment ``mmbench/<task>``
  of ``$MLFLOW_TRACKING_URI`` (MLflow's default otherwise: a local sqlite store): the config and
  recipe as parameters, the same per-epoch metrics, the test metrics, and the record as
  ``record.json``. ``pip install 'mmbench[mlflow]'``; ``--logger mlflow``.

Both stay idle unless named (:mod:`mmbench.loggers`). Metric names are the epoch logs' keys
(``loss/ce``, ``lr``, ``val/rgb+depth/miou``, ...), with characters MLflow does not accept in a
key replaced by ``_``.
"""

from __future__ import annotations

from typing import Any

from mmbench import enabled_loggers

__version__ = "0.2.0"


def active(name: str, run: dict[str, Any]) -> bool:
    """Whether logger ``name`` is enabled, on the main process of the run."""
    return name in enabled_loggers() and run.get("main", True) and "run_id" in run


def test_metrics(record: dict[str, Any]) -> dict[str, float]:
    """``test/<selection>/<subset>/<metric>`` of a record (``best`` and ``last``)."""
    return {f"test/{selection}/{subset}/{metric}": float(value)
            for selection, subsets in record.get("metrics", {}).items()
            for subset, values in subsets.items() for metric, value in values.items()}
