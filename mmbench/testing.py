"""Conformance kit for plugin authors: ``check_method(spec)`` and ``check_task(task, dataset)``.

``check_method`` runs a method through the real pipeline on tiny generated tasks of every kind it
supports (two modalities; three for anti-spoofing): plan → build → one training step with
backward → ``predict`` on every deployment subset (output shapes checked) → one short engine run
→ a validated run record. Each failure is an ``AssertionError`` that says what the plugin got
wrong. It takes seconds and writes only under ``out`` (a temp dir by default).
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


def _check_outputs(spec: MethodSpec, module: Any, batch: dict[str, Any], plan: Any) -> None:
    import torch

    module.eval()
    with torch.inference_mode():
        outputs = module.predict_subsets(batch, list(plan.subsets))
        for subset in plan.subsets:
            assert subset in outputs, f"{spec.name}: predict_subsets returned no output for subset {subset_key(subset)}"
            single = module.predict(batch, subset)
            for name, out in (("predict_subsets", outputs[subset]), ("predict", single)):
                batch_size = batch["target"].shape[0]
                expected = (batch_size, plan.task.num_classes, *batch["target"].shape[1:])
                assert isinstance(out, torch.Tensor) and tuple(out.shape) == expected, (
                    f"{spec.name}: {name} for subset {subset_key(subset)} must return logits of shape "
                    f"{expected} ([B, C] or [B, C, H, W]); got {getattr(out, 'shape', type(out).__name__)}"
                )
                assert torch.isfinite(out).all(), f"{spec.name}: {name} returned non-finite logits"
    module.train()


def check_method(spec: MethodSpec, overrides: dict[str, str] | None = None, out: str | Path | None = None) -> list[dict[str, Any]]:
    """Run ``spec`` through build → step → backward → predict on every subset → record on a tiny
    task of every kind it supports. Returns the records (as dicts); raises AssertionError naming
    what is wrong."""
    import torch

    from mmbench.data.arrays import ArrayBatches, load_task_data, make_loader
    from mmbench.engine.loop import check_views, training_views
    from mmbench.engine.module import MethodModule
    from mmbench.engine.runner import Runner
    from mmbench.errors import MMBenchError
    from mmbench.plan import plan_run
    from mmbench.records import RunRecord

    assert isinstance(spec, MethodSpec), f"check_method needs a MethodSpec, got {type(spec).__name__}"
    setups = _setups(spec)
    assert setups, f"{spec.name}: MethodSpec.kinds is empty; list the task kinds the method supports"
    tasks, datasets_ = zip(*(conformance_specs(k, m) for k, m in setups), strict=True)
    registry = Registry()
    # the baselines are the TEACHER / STUDENT references of the distillation protocol
    from mmbench_baselines import mmbench_methods as baseline_methods

    references = [m for m in baseline_methods() if m.name != spec.name]
    registry.register_object("conformance", _SpecPlugin(list(datasets_), list(tasks), [spec, *references]))
    out_dir = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="mmbench-conformance-"))
    runner = Runner(registry, out=out_dir, device="cpu")
    records = []
    for task in tasks:
        plan = plan_run(registry, spec.name, task.name, seed=0, overrides=overrides or {})
        data = load_task_data(plan.task, plan.dataset, plan.recipe)
        ctx = runner.context(plan, data)
        torch.manual_seed(0)
        module = plan.method.build(plan.task, plan.config, ctx)
        assert isinstance(module, MethodModule), (
            f"{spec.name}: build() must return an mmbench.engine.MethodModule, got {type(module).__name__}"
        )
        raw = next(iter(make_loader(ArrayBatches(data.train, data.stats, data.modalities), 8, shuffle=False)))
        try:
            check_views(module, spec.name)
        except MMBenchError as exc:
            raise AssertionError(str(exc)) from None
        batch = training_views(module, raw, data.modalities, plan.recipe, plan.task)
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
        records.append(record.model_dump(mode="json"))
    return records


def check_task(task: TaskSpec, dataset: DatasetSpec, limit: int = 16) -> dict[str, Any]:
    """Load ``limit`` samples of each split through the real data path and check them against the
    task spec: modalities, shapes, label range, subsets, metrics. Returns a summary."""
    import dataclasses

    import torch

    from mmbench.data.arrays import ArrayBatches, load_task_data, make_loader
    from mmbench.metrics import meter_for
    from mmbench.models import FusionNet, subset_mask

    assert isinstance(task, TaskSpec), f"check_task needs a TaskSpec, got {type(task).__name__}"
    assert task.dataset == dataset.name, f"task '{task.name}' names dataset '{task.dataset}', got '{dataset.name}'"
    recipe = dataclasses.replace(task.recipe("smoke"), limit_train=limit, limit_eval=limit, width=8)
    data = load_task_data(task, dataset, recipe)
    modalities = task.modality_names(dataset)
    for m in modalities:
        shape = data.shapes[m]
        assert shape[0] == dataset.modalities[m] or len(shape) == 1, (
            f"task '{task.name}': modality {m} has shape {shape}, dataset declares {dataset.modalities[m]} channels"
        )
        if task.input_size is not None and len(shape) == 3:
            assert tuple(shape[1:]) == tuple(task.input_size), f"task '{task.name}': {m} not resized to input_size"
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
    from huggingface_hub import constants

    root = Path(constants.HF_HUB_CACHE) / f"datasets--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / revision
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(revision)
    for name, columns in files.items():
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        table = datasets.Dataset.from_dict(columns, features=features)
        table.to_parquet(str(snapshot / name), **({"batch_size": row_group_size} if row_group_size else {}))
    for name, text in (extra_files or {}).items():
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / name).write_text(text)
    return snapshot
