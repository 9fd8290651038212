"""Conformance kit for plugin authors: ``check_method(spec)`` and ``check_task(task, dataset)``.

``check_method`` runs a method through the real pipeline on tiny generated tasks of every kind it
supports (two modalities; three for anti-spoofing): plan → build → one training step with
backward → ``predict`` on every deployment subset (output shapes checked; ``predict`` gets only
the subset's modalities, and ``predict_subsets``' output of a subset must not change when an
absent modality is replaced by noise or NaN) → one short engine run → a validated run record.
Each failure is a :class:`ConformanceFailure` (an ``AssertionError``) that names the conformance
task and kind it ran on and what the plugin got wrong. It takes seconds. Records and checkpoints
go under ``out`` (a temp dir by default); the tiny conformance datasets are generated and cached
once under ``$MMBENCH_HOME`` like every other dataset.

``check_task`` loads a task's splits through the real data path (a few samples each) and checks
them against the spec. ``write_hub_fixture`` (parquet) and ``write_hub_files`` (raw files, for a
:class:`mmbench.HubFilesSource`) write a dataset repository into the local hub cache so that a hub
dataset's loading code can be tested offline.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.hookspecs import hookimpl
from mmbench.plugins import Registry
from mmbench.specs import DatasetSpec, GeneratorSource, MethodSpec, Recipe, TaskSpec, subset_key

__all__ = ["ConformanceFailure", "check_method", "check_task", "conformance_specs", "write_hub_files",
           "write_hub_fixture"]

SIZE = 16
CONFORMANCE_RECIPE = Recipe(epochs=1, batch_size=8, eval_batch_size=16, lr=0.01, width=8, scheduler="none")
_SHAPES = {"rgb": 3, "depth": 1, "ir": 1}
_SPLITS = {"train": 32, "val": 16, "test": 16}


def _generate(kind: str, modalities: tuple[str, ...], out_dir: Path) -> None:
    import datasets
    from PIL import Image

    datasets.disable_progress_bars()
    classes = 2 if kind == "anti-spoofing" else 3
    (out_dir / "data").mkdir(parents=True)
    for split_index, (split, count) in enumerate(_SPLITS.items()):
        rng = np.random.default_rng(split_index)
        rows: dict[str, list[Any]] = {m: [] for m in modalities}
        rows["label"] = []
        for _ in range(count):
            label = int(rng.integers(classes))
            for m in modalities:
                shape = (SIZE, SIZE, 3) if _SHAPES[m] == 3 else (SIZE, SIZE)
                pixels = rng.integers(0, 256, size=shape).astype(np.uint8) // 2 + 60 * label
                rows[m].append(Image.fromarray(pixels.astype(np.uint8)))
            if kind == "segmentation":
                mask = rng.integers(0, classes, size=(SIZE, SIZE)).astype(np.uint8)
                mask[0] = 255
                rows["label"].append(Image.fromarray(mask))
            else:
                rows["label"].append(label)
        features = datasets.Features({
            **{m: datasets.Image() for m in modalities},
            "label": datasets.Image() if kind == "segmentation" else datasets.Value("int64"),
        })
        datasets.Dataset.from_dict(rows, features=features).to_parquet(str(out_dir / "data" / f"{split}.parquet"))


def _decode(row: dict[str, Any]) -> dict[str, np.ndarray]:
    sample = {"target": np.asarray(row["label"], dtype=np.int64)}
    for key, value in row.items():
        if key != "label":
            array = np.asarray(value, dtype=np.float32) / 255.0
            sample[key] = array.transpose(2, 0, 1) if array.ndim == 3 else array[None]
    return sample


def conformance_specs(kind: str, modalities: tuple[str, ...]) -> tuple[TaskSpec, DatasetSpec]:
    """A tiny generated task of ``kind`` over ``modalities`` (names from rgb, depth, ir)."""
    from functools import partial

    name = f"conformance-{kind}-{'-'.join(modalities)}"
    dataset = DatasetSpec(
        name=name, description="mmbench.testing conformance data",
        modalities={m: _SHAPES[m] for m in modalities},
        source=GeneratorSource(partial(_generate, kind, modalities), version="1",
                               data_files={s: f"data/{s}.parquet" for s in _SPLITS}),
        decode=_decode, splits=tuple(_SPLITS),
    )
    task = TaskSpec(
        name=name, description="mmbench.testing conformance task", dataset=name, kind=kind,  # type: ignore[arg-type]
        num_classes=2 if kind == "anti-spoofing" else 3, input_size=(SIZE, SIZE),
        ignore_index=255 if kind == "segmentation" else None, recipes={"smoke": CONFORMANCE_RECIPE},
    )
    return task, dataset


@dataclass
class _SpecPlugin:
    datasets: list[DatasetSpec]
    tasks: list[TaskSpec]
    methods: list[MethodSpec]

    @hookimpl
    def mmbench_datasets(self) -> list[DatasetSpec]:
        return self.datasets

    @hookimpl
    def mmbench_tasks(self) -> list[TaskSpec]:
        return self.tasks

    @hookimpl
    def mmbench_methods(self) -> list[MethodSpec]:
        return self.methods


def _setups(spec: MethodSpec) -> list[tuple[str, tuple[str, ...]]]:
    setups = []
    for kind in sorted(spec.kinds):
        modalities = ("rgb", "depth", "ir") if kind == "anti-spoofing" else ("rgb", "depth")
        setups.append((kind, modalities))
    return setups


def _absent_modality_reads(module: Any, batch: dict[str, Any], subsets: list[tuple[str, ...]],
                           reference: dict[tuple[str, ...], Any]) -> str | None:
    """Replace each modality with noise, then NaN, and check that the output of every subset
    lacking it is unchanged; returns what leaked (subset, modality, perturbation) or ``None``."""
    import torch

    modalities = [k for k in batch if k not in ("target", "index")]
    for modality in modalities:
        lacking = [s for s in subsets if modality not in s]
        if not lacking:
            continue
        original = batch[modality]
        generator = torch.Generator().manual_seed(0)
        noise = torch.randn(original.shape, generator=generator, dtype=original.dtype) * 10 + 5
        for label, value in (("noise", noise), ("NaN", torch.full_like(original, float("nan")))):
            outputs = module.predict_subsets({**batch, modality: value}, subsets)
            for subset in lacking:
                out, ref = outputs[subset], reference[subset]
                if not (torch.isfinite(out).all() and torch.allclose(out, ref, rtol=1e-4, atol=1e-5)):
                    return (f"the output for subset {subset_key(subset)} changes when the absent modality "
                            f"'{modality}' is replaced by {label}: it reads a modality the subset says is missing")
    return None


def _check_outputs(spec: MethodSpec, module: Any, batch: dict[str, Any], plan: Any) -> None:
    import torch

    from mmbench.engine.module import AbsentModalityError, restrict_batch

    module.eval()
    subsets = list(plan.subsets)
    with torch.inference_mode():
        try:
            outputs = module.predict_subsets(batch, subsets)
            singles = {subset: module.predict(restrict_batch(batch, subset), subset) for subset in subsets}
        except AbsentModalityError as exc:
            raise AssertionError(f"{spec.name}: predict read a modality its subset lacks: {exc}") from None
        for subset in subsets:
            assert subset in outputs, f"{spec.name}: predict_subsets returned no output for subset {subset_key(subset)}"
            for name, out in (("predict_subsets", outputs[subset]), ("predict", singles[subset])):
                batch_size = batch["target"].shape[0]
                expected = (batch_size, plan.task.num_classes, *batch["target"].shape[1:])
                assert isinstance(out, torch.Tensor) and tuple(out.shape) == expected, (
                    f"{spec.name}: {name} for subset {subset_key(subset)} must return logits of shape "
                    f"{expected} ([B, C] or [B, C, H, W]); got {getattr(out, 'shape', type(out).__name__)}"
                )
                assert torch.isfinite(out).all(), f"{spec.name}: {name} returned non-finite logits"
        leak = _absent_modality_reads(module, batch, subsets, outputs)
        assert leak is None, f"{spec.name}: predict_subsets: {leak}"
    module.train()


class ConformanceFailure(AssertionError):
    """A conformance check failed on one of the kit's tiny tasks; the message names the task and
    its kind, then what the plugin got wrong (the original error is chained as ``__cause__``)."""

    def __init__(self, task: TaskSpec, message: str):
        super().__init__(f"on conformance task '{task.name}' ({task.kind}): {message}")
        self.task, self.kind = task.name, task.kind


def check_method(spec: MethodSpec, overrides: dict[str, str] | None = None, out: str | Path | None = None) -> list[dict[str, Any]]:
    """Run ``spec`` through build → step → backward → predict on every subset → record on a tiny
    task of every kind it supports. Returns the records (as dicts); raises AssertionError naming
    what is wrong."""
    from mmbench.engine.runner import Runner
    from mmbench.errors import MMBenchError

    assert isinstance(spec, MethodSpec), f"check_method needs a MethodSpec, got {type(spec).__name__}"
    setups = _setups(spec)
    assert setups, f"{spec.name}: MethodSpec.kinds is empty; list the task kinds the method supports"
    tasks, datasets_ = zip(*(conformance_specs(k, m) for k, m in setups), strict=True)
    registry = Registry()
    # the installed methods the one under test may depend on: the protocol's TEACHER / STUDENT
    # references (``MethodSpec.reference``) and the methods its ``requires`` names
    installed = [r.spec for r in Registry.load().all("method") if r.spec.name != spec.name]
    registry.register_object("conformance", _SpecPlugin(list(datasets_), list(tasks), [spec, *installed]))
    out_dir = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="mmbench-conformance-"))
    runner = Runner(registry, out=out_dir, device="cpu")
    records = []
    for task in tasks:
        try:
            records.append(_check_on_task(spec, registry, runner, task, overrides or {}))
        except (AssertionError, MMBenchError) as exc:
            raise ConformanceFailure(task, str(exc)) from exc
        except Exception as exc:  # plugin code under test may raise anything
            raise ConformanceFailure(task, f"{type(exc).__name__}: {exc}") from exc
    return records


def _check_on_task(spec: MethodSpec, registry: Registry, runner: Any, task: TaskSpec,
                   overrides: dict[str, str]) -> dict[str, Any]:
    """build → step → backward → predict (absent modalities checked) → engine run → record."""
    import torch

    from mmbench.data.arrays import ArrayBatches, load_task_data, make_loader
    from mmbench.engine.loop import check_views, training_views
    from mmbench.engine.module import MethodModule
    from mmbench.errors import MMBenchError
    from mmbench.plan import plan_run
    from mmbench.records import RunRecord

    plan = plan_run(registry, spec.name, task.name, seed=0, overrides=overrides)
    data = load_task_data(plan.task, plan.dataset, plan.recipe, plan.revision, options=plan.dataset_options)
    ctx = runner.context(plan, data)
    torch.manual_seed(0)
    module = plan.method.builder()(plan.task, plan.config, ctx)
    assert isinstance(module, MethodModule), (
        f"{spec.name}: build() must return an mmbench.engine.MethodModule, got {type(module).__name__}"
    )
    train = ArrayBatches(data.train, data.stats, data.modalities)
    raw = next(iter(make_loader(train, 8, shuffle=False)))
    try:
        check_views(module, spec.name)
    except MMBenchError as exc:
        raise AssertionError(str(exc)) from None
    batch = training_views(module, raw, data.modalities, plan.recipe, plan.task, train.stats)
    terms = module.training_step(batch, 0)
    assert isinstance(terms, dict) and terms, (
        f"{spec.name}: training_step must return a non-empty dict of named loss tensors, got {type(terms).__name__}"
    )
    for name, value in terms.items():
        assert isinstance(value, torch.Tensor) and value.dim() == 0, (
            f"{spec.name}: loss term '{name}' must be a scalar tensor, got {getattr(value, 'shape', type(value).__name__)}"
        )
        assert torch.isfinite(value), f"{spec.name}: loss term '{name}' is not finite on the first batch"
    sum(terms.values()).backward()
    trainable = [p for p in module.parameters() if p.requires_grad]
    assert trainable, f"{spec.name}: the module has no trainable parameters"
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable), (
        f"{spec.name}: backward of the loss terms gives no gradient to any parameter"
    )
    _check_outputs(spec, module, raw, plan)
    record, _ = runner.run(plan)
    assert isinstance(record, RunRecord) and record.status == "completed"
    for selection in ("best", "last"):
        got = set(record.metrics[selection])
        assert got == set(plan.subset_names), (
            f"{spec.name}: record lacks metrics for subsets {sorted(set(plan.subset_names) - got)}"
        )
    if plan.distillation is not None:
        roles = {r.role for r in record.references}
        assert "student" in roles and (plan.distillation.teacher is None or "teacher" in roles), (
            f"{spec.name}: a distillation run must report its TEACHER and STUDENT references"
        )
    return record.model_dump(mode="json")


def check_task(task: TaskSpec, dataset: DatasetSpec, limit: int = 16, data_dir: str | Path | None = None,
               options: dict[str, str] | None = None) -> dict[str, Any]:
    """Load ``limit`` samples of each split through the real data path (``data_dir``: the root of a
    bring-your-own dataset, as ``--data-dir``; ``options``: dataset options, as ``--set
    dataset.<name>=``) and check them against the task spec: modalities, shapes, label range,
    subsets, metrics. Returns a summary."""
    import dataclasses

    import torch

    from mmbench.data.arrays import ArrayBatches, load_task_data, make_loader
    from mmbench.data.cache import scaled_input_size
    from mmbench.metrics import meter_for
    from mmbench.models import FusionNet, subset_mask

    assert isinstance(task, TaskSpec), f"check_task needs a TaskSpec, got {type(task).__name__}"
    assert task.dataset == dataset.name, f"task '{task.name}' names dataset '{task.dataset}', got '{dataset.name}'"
    recipe = dataclasses.replace(task.recipe("smoke"), limit_train=limit, limit_eval=limit, width=8)
    data = load_task_data(task, dataset, recipe, data_dir=data_dir, options=options)
    modalities = task.modality_names(dataset)
    for m in modalities:
        shape = data.shapes[m]
        assert shape[0] == dataset.modalities[m] or len(shape) == 1, (
            f"task '{task.name}': modality {m} has shape {shape}, dataset declares {dataset.modalities[m]} channels"
        )
        expected = scaled_input_size(task, recipe.input_scale)
        if expected is not None and len(shape) == 3:
            assert tuple(shape[1:]) == tuple(expected), (
                f"task '{task.name}': {m} is {tuple(shape[1:])}, not resized to input_size × input_scale {expected}"
            )
    batch = next(iter(make_loader(ArrayBatches(data.test, data.stats, modalities), limit, shuffle=False)))
    net = FusionNet(modalities, data.shapes, task.kind, task.num_classes, width=8)
    meter = meter_for(task)
    with torch.inference_mode():
        net.eval()
        for subset in task.protocol_subsets(dataset):
            logits = net(batch, subset_mask(modalities, subset, batch["target"].shape[0], "cpu"))
            meter.update(logits, batch["target"])
    scores = meter.compute()
    assert set(task.metric_names) <= set(scores), f"task '{task.name}': metrics {task.metric_names} not computed"
    return {"task": task.name, "shapes": data.shapes, "subsets": [subset_key(s) for s in task.protocol_subsets(dataset)],
            "sizes": {"train": len(data.train), "val": len(data.val), "test": len(data.test)}}


def write_hub_fixture(repo: str, revision: str, files: dict[str, dict[str, list[Any]]], features: Any,
                      extra_files: dict[str, str] | None = None, row_group_size: int | None = None) -> Path:
    """Write a dataset repository into the local Hugging Face hub cache exactly as
    ``snapshot_download`` leaves it (``refs/main`` + ``snapshots/<revision>/...``), so a hub
    dataset's real loading code runs offline (``HF_HUB_OFFLINE=1``) on a tiny fixture.

    ``files`` maps a parquet path in the repo to its columns (``datasets`` values, e.g. PIL
    images for ``Image`` features); ``extra_files`` maps paths to text (README with the card's
    configs, ``id2label.json``); ``row_group_size`` sets the parquet row groups (default: what
    ``datasets`` writes, as ``push_to_hub`` does). Returns the snapshot folder."""
    import datasets

    snapshot = write_hub_files(repo, revision, {})
    for name, columns in files.items():
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        table = datasets.Dataset.from_dict(columns, features=features)
        table.to_parquet(str(snapshot / name), **({"batch_size": row_group_size} if row_group_size else {}))
    for name, text in (extra_files or {}).items():
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / name).write_text(text)
    return snapshot


def write_hub_files(repo: str, revision: str, files: dict[str, bytes | str]) -> Path:
    """Write raw files (archives, lists) of a dataset repository into the local Hugging Face hub
    cache as ``snapshot_download`` leaves them (``refs/main`` + ``snapshots/<revision>/<path>``),
    for a :class:`mmbench.HubFilesSource` fixture. Returns the snapshot folder."""
    from huggingface_hub import constants

    root = Path(constants.HF_HUB_CACHE) / f"datasets--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / revision
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(revision)
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        (snapshot / name).write_bytes(data)
    return snapshot
