"""The mmbench hook vocabulary: the whole contract between mmbench and its plugins.

A plugin is a module (or object) with functions decorated by :data:`hookimpl` whose names are the
hooks below. It is registered through the ``mmbench`` entry-point group of a distribution::

    [project.entry-points.mmbench]
    my_method = "my_package.mmbench_plugin"

or, without packaging, with ``mmbench --plugin my_plugin.py`` / ``MMBENCH_PLUGINS=mod1,path/to/p.py``.

*Registration hooks* return lists of plain specs; they are called once per process and must be
cheap (no torch import: give ``MethodSpec.build`` as an import string, ``"pkg.models:MyMethod"``,
or import inside it). *Lifecycle hooks* observe runs (loggers for TensorBoard, MLflow, W&B, ...);
they never change a run's result and nothing requires them. Every hook is optional.

The whole contract a plugin sees, besides these hooks (every name re-exported from the four
public modules; the rest of the package is internal):

* ``mmbench`` — the specs (:class:`~mmbench.MethodSpec`, :class:`~mmbench.TaskSpec`,
  :class:`~mmbench.DatasetSpec`, :class:`~mmbench.Recipe` and ``CPU_SMOKE``, the four dataset
  sources, :class:`~mmbench.Reference`, :class:`~mmbench.Deviation`), ``MMBenchError``,
  ``enabled_loggers``, the subset helpers, the distillation
  setups (``resolve_setup``, ``teacher_free_setup``), the image readers and ``run`` / ``sweep``;
* ``mmbench.engine`` — ``MethodModule`` (``training_step``, ``predict`` / ``predict_subsets``, the
  trained-model contract ``features`` / ``encoder``, optional epoch hooks), ``RunContext`` (what
  ``build(task, config, ctx)`` receives: recipe, modalities, shapes, subsets, validation batches,
  the distillation setup and ``models`` — the declared dependencies by role), ``TrainedModel`` (a
  frozen dependency), ``Features``, ``SubsetBatch``, ``restrict_batch``, ``AbsentModalityError``;
* ``mmbench.models`` — the shared building blocks (encoders, fusion, decoders, losses, masks);
* ``mmbench.testing`` — the conformance kit (``check_method``, ``check_task``).

A method declares the trained models it needs (``MethodSpec.requires``); a method that can serve
as the distillation protocol's TEACHER / STUDENT reference declares it (``MethodSpec.reference``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from mmbench.specs import DatasetSpec, MethodSpec, TaskSpec

PROJECT_NAME = "mmbench"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def mmbench_datasets() -> list[DatasetSpec]:
    """Return the datasets this plugin provides, as :class:`mmbench.DatasetSpec` objects.

    A dataset says where samples come from (a hub repo pinned to a full commit sha, a
    user-supplied directory, or a local generator), which modalities it has with their channel
    counts, and how one raw row decodes into arrays. Names must be unique across all plugins.
    """


@hookspec
def mmbench_tasks() -> list[TaskSpec]:
    """Return the tasks this plugin provides, as :class:`mmbench.TaskSpec` objects.

    A task names a dataset (from any plugin), its kind (``classification``, ``segmentation``,
    ``anti-spoofing``), classes, input size, metrics, evaluation protocol (deployment subsets),
    and one :class:`mmbench.Recipe` per profile (``smoke`` is required). Bump ``version`` whenever
    results would change.
    """


@hookspec
def mmbench_methods() -> list[MethodSpec]:
    """Return the methods this plugin provides, as :class:`mmbench.MethodSpec` objects.

    ``MethodSpec.build(task, config, ctx)`` returns an :class:`mmbench.engine.MethodModule`: an
    ``nn.Module`` with ``training_step(batch, step) -> {term: loss}`` and
    ``predict(batch, modalities) -> output``. The engine owns the loop; a method never does.
    """


@hookspec
def mmbench_run_start(run: dict[str, Any]) -> None:
    """Called when a run starts training. ``run`` holds ``run_id``, ``task``, ``method``,
    ``seed``, ``profile``, ``config`` and ``recipe`` (plain JSON-able values), ``record_path``
    (where its record will be written; ``<record_path without .json>/`` is the run's folder of
    extra files) and ``main`` (``False`` on the other ranks of a distributed run: log on the main
    one only)."""


@hookspec
def mmbench_epoch_end(run: dict[str, Any], epoch: int, logs: dict[str, float]) -> None:
    """Called after every epoch with the epoch number (1-based, as the console and the record's
    curves count) and the epoch's logs: mean loss terms (``loss/<term>``), the learning rate,
    validation metrics (``val/<subset>/<metric>``) and timing."""


@hookspec
def mmbench_run_end(run: dict[str, Any], record: dict[str, Any]) -> None:
    """Called once a run's record is written (also for failed runs: ``record["status"]``)."""


@hookspec
def mmbench_run_abort(run: dict[str, Any], reason: str) -> None:
    """Called instead of ``mmbench_run_end`` when a started run stops without a record: Ctrl-C
    (``reason`` ``"interrupted"``; the run can be resumed) or an error (its type and first line).
    Close here what ``mmbench_run_start`` opened."""
