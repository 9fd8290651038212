"""Execute a :class:`RunPlan`: data → build → train → test on every subset → run record.

The test split is evaluated twice, with the last-epoch weights and with the weights of the epoch
that scored best on the **validation** split; the record holds both and which epoch was selected.
Nothing is ever selected on the test split.
"""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import torch

from mmbench import interrupts
from mmbench.artifacts import ArtifactCache
from mmbench.config import to_jsonable
from mmbench.data.arrays import ArrayBatches, load_task_data, make_loader
from mmbench.engine.build import build_method
from mmbench.engine.checkpoint import checkpoint_epochs
from mmbench.engine.context import RunContext
from mmbench.engine.distributed import SINGLE, World
from mmbench.engine.locks import run_lock
from mmbench.engine.loop import (
    NonFiniteLoss,
    NonFinitePrediction,
    Trainer,
    TrainingInterrupted,
    evaluate,
    to_device,
)
from mmbench.engine.module import MethodModule, restrict_batch
from mmbench.engine.seeding import rng_state, seed_everything, set_rng_state
from mmbench.engine.trained import TrainedModel
from mmbench.errors import MMBenchError
from mmbench.files import ensure_writable
from mmbench.gallery import save_gallery
from mmbench.plan import RunPlan
from mmbench.plugins import Registry
from mmbench.provenance import collect
from mmbench.records import (
    DatasetInfo,
    DependencyInfo,
    DistillationInfo,
    Failure,
    MethodInfo,
    NewerSchemaError,
    PretrainedInfo,
    ReferenceResult,
    Resources,
    RunRecord,
    Selection,
    TaskInfo,
    Timings,
    read_record,
    record_path,
    write_record,
)
from mmbench.specs import Subset, subset_key


class _WeightsSink:
    """Where a run's selected weights go: the artifact cache (``--save-weights``, dependencies)
    and / or the caller."""

    def __init__(self, artifacts: ArtifactCache | None, plan: RunPlan,
                 callback: Callable[[dict[str, torch.Tensor]], None] | None):
        self.artifacts, self.plan, self.callback = artifacts, plan, callback

    def __call__(self, state: dict[str, torch.Tensor]) -> None:
        if self.artifacts is not None:
            self.artifacts.store(self.plan.run_id, state, meta=self.plan.identity)
        if self.callback is not None:
            self.callback(state)


class RunInterrupted(MMBenchError):
    """Ctrl-C or SIGTERM: the checkpoint of the last completed epoch is kept for ``--resume``."""

    @property
    def exit_code(self) -> int:
        return interrupts.exit_code()


class RunFailed(MMBenchError):
    """The run stopped (e.g. non-finite loss); a record marked failed was written."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise MMBenchError(f"invalid --device '{name}': use auto, cpu, cuda or cuda:N.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MMBenchError(f"--device {name} requested but no CUDA device is available; use --device cpu.")
    if device.type not in ("cpu", "cuda"):
        raise MMBenchError(f"unsupported --device '{name}': use auto, cpu, cuda or cuda:N.")
    return device


def _criterion(recipe: Any, primary: str, per_subset: bool) -> str:
    metric = recipe.selection_metric or primary
    subsets = "the full-modality subset" if recipe.selection_subsets == "full" else "deployment subsets"
    if per_subset:
        text = f"validation {metric} of each deployment subset at its own best epoch"
    elif recipe.selection == "paper":
        text = f"mean test {metric} over {subsets} (selected on the test split, as the paper)"
    else:
        text = f"mean validation {metric} over {subsets}"
    return text + (f", from epoch {recipe.select_from_epoch}" if recipe.select_from_epoch > 1 else "")


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@torch.inference_mode()
def _inference_ms(module: MethodModule, batches: ArrayBatches, subset: tuple[str, ...], device: torch.device, batch_size: int) -> float:
    """Wall time per sample of one deployment-subset forward pass over up to 256 test samples."""
    module.eval()
    count, elapsed = 0, 0.0
    for batch in make_loader(batches, batch_size, shuffle=False):
        batch = to_device(batch, device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        module.predict(restrict_batch(batch, subset), subset)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed += time.perf_counter() - start
        count += len(batch["target"])
        if count >= 256:
            break
    return 1000 * elapsed / max(count, 1)


def _read_existing(path: Path) -> RunRecord | None:
    """The record at ``path``, or ``None`` if there is none or it is unreadable (it will be
    replaced); a record of a newer schema is an error (never read as ours, never overwritten)."""
    if not path.exists():
        return None
    try:
        return read_record(path)
    except NewerSchemaError:
        raise
    except MMBenchError:
        return None


class Runner:
    """Runs plans against one registry, output directory, device and artifact cache."""

    def __init__(
        self,
        registry: Registry,
        out: Path | str = "runs",
        device: str = "auto",
        data_dir: str | None = None,
        progress: Any = None,
        artifacts: ArtifactCache | None = None,
        log: Any = None,
        epoch_log: Any = None,
        world: World = SINGLE,
        rebuild_cache: bool = False,
    ):
        self.registry = registry
        self.rebuild_cache = rebuild_cache
        self.out = Path(out)
        self.world = world
        self.device = resolve_device(device)
        if world.active and self.device.type == "cuda":  # torchrun: one GPU per local rank
            self.device = torch.device("cuda", world.local_rank)
        self.data_dir = data_dir
        self.progress = progress
        self.artifacts = artifacts or ArtifactCache()
        self.log = log or (lambda message: None)
        self.epoch_log = epoch_log
        self._loaded: dict[str, MethodModule] = {}  # the current run's dependencies, by run id
        self._depth = 0  # nesting of runs: a dependency is trained as a run inside its dependent's

    # -- helpers -------------------------------------------------------------------------------------
    def context(self, plan: RunPlan, data: Any, models: dict[str, TrainedModel] | None = None) -> RunContext:
        """What ``build`` receives for ``plan``; without ``models``, the plan's dependencies are
        resolved (trained or taken from the artifact cache) first."""
        if models is None:
            models = self._dependencies(plan, data)[0] if plan.dependencies else {}
        return RunContext(
            task=plan.task, dataset=plan.dataset, recipe=plan.recipe, profile=plan.profile, seed=plan.seed,
            device=self.device, modalities=plan.modalities, shapes=data.shapes, subsets=plan.subsets,
            revision=plan.revision, distillation=plan.distillation, models=models,
            class_weights=None if data.class_weights is None else torch.as_tensor(data.class_weights, dtype=torch.float32),
            _validation=lambda: self._validation_batches(plan, data),
        )

    def _validation_batches(self, plan: RunPlan, data: Any) -> Iterator[dict[str, torch.Tensor]]:
        batches = ArrayBatches(data.val, data.stats, data.modalities)
        for batch in make_loader(batches, plan.recipe.eval_batch_size, shuffle=False):
            yield to_device(batch, self.device)

    def _build(self, plan: RunPlan, ctx: RunContext) -> MethodModule:
        return build_method(plan, ctx)

    # -- dependencies --------------------------------------------------------------------------------
    def dependency_status(self, plan: RunPlan) -> str:
        """``cached`` (weights in the artifact cache), ``checkpointed`` (an interrupted run to
        resume) or ``to train``."""
        if self.artifacts.status(plan.run_id) == "cached":
            return "cached"
        checkpoint = record_path(self.out, plan.task.name, plan.method.name, plan.run_id).with_suffix(".ckpt")
        return "checkpointed" if checkpoint_epochs(checkpoint) else "to train"

    def _dependencies(self, plan: RunPlan, data: Any) -> tuple[dict[str, TrainedModel], list[DependencyInfo]]:
        """The trained models ``plan`` needs, by role, loaded frozen; each is trained first as an
        ordinary run (record, per-epoch checkpoint, resumed if interrupted) unless cached. The
        parent's random state is untouched, so its result never depends on what was cached."""
        saved_rng = rng_state()
        models: dict[str, TrainedModel] = {}
        infos = []
        for dependency in plan.dependencies:
            dep = dependency.plan
            if dep.run_id not in self._loaded:
                self._loaded[dep.run_id] = self._load_dependency(dep, plan, data)
            module = self._loaded[dep.run_id]
            models[dependency.role] = TrainedModel(module, dep.method.name, dep.run_id, dep.trained_modalities)
            infos.append(DependencyInfo(
                role=dependency.role, method=dep.method.name, overrides=dict(dependency.options), run_id=dep.run_id,
                weights_sha256=self.artifacts.digest(dep.run_id),
            ))
        set_rng_state(saved_rng)
        return models, infos

    def _load_dependency(self, plan: RunPlan, parent: RunPlan, parent_data: Any) -> MethodModule:
        state = self.artifacts.load(plan.run_id)
        if state is not None:
            self.log(f"using cached {plan.method.name} ({plan.run_id}), needed by {parent.method.name}")
        else:
            waiting = f"waiting for {plan.method.name} (run {plan.run_id}), training in another process"
            with (self.artifacts.lock(plan.run_id, on_wait=lambda: self.log(waiting)) if self.world.main
                  else contextlib.nullcontext()):
                state = self.artifacts.load(plan.run_id)  # another process may have trained it meanwhile
                if state is None:
                    checkpoint = record_path(self.out, plan.task.name, plan.method.name, plan.run_id).with_suffix(".ckpt")
                    resume = bool(checkpoint_epochs(checkpoint))
                    self.log(f"{'resuming' if resume else 'training'} {plan.method.name} (run {plan.run_id}), needed by "
                             f"{parent.method.name}; its weights are cached for later runs")
                    trained: dict[str, Any] = {}
                    self.run(plan, resume=resume, save_weights=True, on_weights=trained.update)
                    state = trained
        same_data = (plan.recipe == parent.recipe and plan.revision == parent.revision
                     and plan.dataset_options == parent.dataset_options)
        data = parent_data if same_data else load_task_data(
            plan.task, plan.dataset, plan.recipe, plan.revision, self.data_dir, self.rebuild_cache, plan.dataset_options)
        models, _ = self._dependencies(plan, data)
        module = self._build(plan, self.context(plan, data, models))
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:  # weights of another network under this run id (code changed, same version)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MMBenchError(
                f"the cached weights of {plan.method.name} (run {plan.run_id}), needed by {parent.method.name}, do not "
                f"fit the network this code builds ({first[:200]}); delete {self.artifacts.path(plan.run_id)} to "
                "retrain it (and bump the plugin's version when its network changes).") from None
        return module.to(self.device).eval().requires_grad_(False)

    def _references(self, plan: RunPlan, test: ArrayBatches) -> list[ReferenceResult]:
        """TEACHER / STUDENT reference models of a distillation run, evaluated on the test split
        with all of their own modalities (as the papers' TEACHER / STUDENT rows)."""
        results = []
        for dependency in plan.dependencies:
            if dependency.reference is None:
                continue
            ref = dependency.plan
            results.append(ReferenceResult(
                role=dependency.reference, method=ref.method.name, overrides=dict(dependency.options), run_id=ref.run_id,
                trained_modalities=list(ref.trained_modalities),
                metrics=evaluate(self._loaded[ref.run_id], test, [ref.trained_modalities], ref.task, self.device,
                                 ref.recipe.eval_batch_size, ref.recipe.amp, world=self.world),
            ))
        return results

    # -- a run -----------------------------------------------------------------------------------------
    def existing(self, plan: RunPlan) -> Path | None:
        """The record of a completed identical run, if one is already in the output directory."""
        path = record_path(self.out, plan.task.name, plan.method.name, plan.run_id)
        record = _read_existing(path)
        return path if record is not None and record.status == "completed" else None

    def run(
        self, plan: RunPlan, resume: bool = False, force: bool = False, save_weights: bool = False,
        on_weights: Callable[[dict[str, torch.Tensor]], None] | None = None,
    ) -> tuple[RunRecord, Path]:
        """Train, test and record ``plan`` (its dependencies first). ``resume`` continues from its
        checkpoint; without it an existing checkpoint is kept until this run has completed more
        epochs, unless ``force``. ``save_weights`` stores the selected (best-validation) weights in
        the artifact cache, where runs that depend on this one find them."""
        path = record_path(self.out, plan.task.name, plan.method.name, plan.run_id)
        weights = _WeightsSink(self.artifacts if save_weights and self.world.main else None, plan, on_weights)
        self._depth += 1
        try:
            if not self.world.main:
                return self._run(plan, path, resume, keep_epochs=0, weights=weights)
            ensure_writable(self.out)
            with run_lock(self.out, plan.run_id):
                _read_existing(path)  # a record of a newer schema is never overwritten
                keep = self._checkpoint_notice(plan, path, resume, force)
                return self._run(plan, path, resume, keep_epochs=keep, weights=weights)
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._loaded.clear()

    @staticmethod
    def _interrupted_message(checkpoint: Path) -> str:
        """What an interrupted run left: the epochs its checkpoint file holds (a re-run without
        --resume keeps an older, longer checkpoint until it has completed more epochs)."""
        epochs = checkpoint_epochs(checkpoint)
        if not epochs:
            return f"{interrupts.describe()} before an epoch completed; nothing is checkpointed. Re-run the same command."
        return (f"{interrupts.describe()}; the checkpoint at {checkpoint} holds {epochs} completed epoch(s). "
                "Re-run the same command with --resume to continue.")

    def _checkpoint_notice(self, plan: RunPlan, path: Path, resume: bool, force: bool) -> int:
        """Say what happens to an existing checkpoint; returns the epochs it must not be replaced
        below (0: it may be replaced)."""
        checkpoint = path.with_suffix(".ckpt")
        if resume:
            if not checkpoint.exists():
                self.log(f"no checkpoint for run {plan.run_id}; starting from scratch")
            return 0
        epochs = checkpoint_epochs(checkpoint)
        if not epochs:
            return 0
        if force:
            self.log(f"--force: starting from scratch; the checkpoint with {epochs} completed epoch(s) at "
                     f"{checkpoint} will be replaced")
            return 0
        self.log(f"a checkpoint of this run with {epochs} completed epoch(s) exists at {checkpoint}; starting from "
                 "scratch without replacing it until this run has completed more epochs (Ctrl-C and re-run with "
                 "--resume to continue it, or with --force to replace it)")
        return epochs

    def _run(self, plan: RunPlan, path: Path, resume: bool, keep_epochs: int,
             weights: _WeightsSink) -> tuple[RunRecord, Path]:
        checkpoint = path.with_suffix(".ckpt")
        main = self.world.main
        started = time.perf_counter()
        seed_everything(plan.seed)
        data = load_task_data(plan.task, plan.dataset, plan.recipe, plan.revision, self.data_dir, self.rebuild_cache,
                              plan.dataset_options)
        data_seconds = time.perf_counter() - started
        models, dependencies = self._dependencies(plan, data)
        ctx = self.context(plan, data, models)
        seed_everything(plan.seed)
        module = self._build(plan, ctx)
        run_info = {
            "run_id": plan.run_id, "task": plan.task.name, "method": plan.method.name, "seed": plan.seed,
            "profile": plan.profile, "config": to_jsonable(plan.config), "recipe": asdict(plan.recipe),
            "record_path": str(path), "main": main,
        }
        self.registry.notify("mmbench_run_start", run=run_info)
        with self._aborts_reported(run_info):
            trainer = Trainer(
                module, data, ctx, plan.method.name, checkpoint=checkpoint, resume=resume, keep_epochs=keep_epochs,
                fingerprint=plan.run_id, progress=self.progress if main else None,
                on_epoch=lambda epoch, logs: self._epoch_end(run_info, epoch, logs), world=self.world,
            )
            sizes = {"train": len(data.train), "val": len(data.val), "test": len(data.test)}
            base = dict(plan=plan, data_seconds=data_seconds, started=started, sizes=sizes, dependencies=dependencies,
                        class_weights=data.class_weights)
            try:
                fit = trainer.fit()
            except NonFiniteLoss as exc:
                self._fail(base, run_info, path, Failure(message=str(exc), epoch=exc.epoch + 1, term=exc.term), str(exc))
            except TrainingInterrupted:
                raise RunInterrupted(self._interrupted_message(checkpoint)) from None
            weights(fit.best_state)

            report = module.report()  # the method's facts after training, before best-epoch weights are loaded
            test = ArrayBatches(data.test, data.stats, data.modalities)
            t0 = time.perf_counter()
            last_epoch = len(fit.curves)
            try:
                metrics = {"last": self._test(module, test, plan)}
                if fit.subset_best is not None:
                    metrics["best"] = self._test_each_subset(module, test, plan, fit, metrics["last"])
                    module.load_state_dict(fit.best_state)  # the gallery and timing use the best mean epoch
                else:
                    if fit.best_epoch != last_epoch:
                        module.load_state_dict(fit.best_state)
                    metrics["best"] = metrics["last"] if fit.best_epoch == last_epoch else self._test(module, test, plan)
            except NonFinitePrediction as exc:
                message = f"{exc} on the test split"
                self._fail(base, run_info, path, Failure(message=message, epoch=last_epoch, term="predictions"), message)
            test_seconds = time.perf_counter() - t0
            gallery = save_gallery(module, test, plan.task, plan.subsets[0], self.device,
                                   path.parent / plan.run_id / "gallery", relative_to=path.parent) if main else []
            references = self._references(plan, test)
            params = sum(p.numel() for p in module.parameters())
            trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
            resources = Resources(
                peak_memory_mb=_peak_memory_mb(self.device), parameters=params, trainable_parameters=trainable,
                inference_ms_per_sample=_inference_ms(module, test, plan.subsets[0], self.device, plan.recipe.eval_batch_size),
            )
            per_subset = fit.subset_best is not None
            record = self._record(
                **base, status="completed", metrics=metrics,
                val_metrics={name: best.val for name, best in fit.subset_best.items()} if fit.subset_best else fit.best_val,
                selection=Selection(
                    criterion=_criterion(plan.recipe, plan.task.primary, per_subset),
                    split="test" if plan.recipe.selection == "paper" else "validation",
                    best_epoch=fit.best_epoch, last_epoch=last_epoch,
                    subset_epochs={name: best.epoch for name, best in fit.subset_best.items()} if fit.subset_best else None,
                ),
                curves=fit.curves, resources=resources,
                timings_extra={"train_seconds": fit.train_seconds, "val_seconds": fit.val_seconds, "test_seconds": test_seconds},
                extra={**self._extra(report, fit), **({"world_size": self.world.size} if self.world.active else {})},
                references=references, gallery=gallery,
            )
            if main:
                write_record(path, record)
                with contextlib.suppress(FileNotFoundError):
                    checkpoint.unlink()
            self.registry.notify("mmbench_run_end", run=run_info, record=record.model_dump(mode="json"))
            return record, path

    @contextlib.contextmanager
    def _aborts_reported(self, run_info: dict[str, Any]) -> Iterator[None]:
        """Tell the lifecycle hooks (``mmbench_run_abort``) when a started run stops without a
        record — interrupted, or an error — so what ``mmbench_run_start`` opened is closed; a run
        recorded as failed has had its ``mmbench_run_end`` already."""
        try:
            yield
        except RunFailed:
            raise
        except BaseException as exc:
            reason = "interrupted" if isinstance(exc, RunInterrupted | KeyboardInterrupt) else (
                f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")
            self.registry.notify("mmbench_run_abort", run=run_info, reason=reason)
            raise

    def _fail(self, base: dict[str, Any], run_info: dict[str, Any], path: Path, failure: Failure, what: str) -> NoReturn:
        """Record the run as failed (never as completed with broken weights) and stop."""
        record = self._record(**base, status="failed", failure=failure)
        if self.world.main:
            write_record(path, record)
        self.registry.notify("mmbench_run_end", run=run_info, record=record.model_dump(mode="json"))
        raise RunFailed(
            f"run stopped: {what}. The record at {path} is marked failed; lower recipe.lr or set recipe.grad_clip."
        )

    @staticmethod
    def _extra(report: dict[str, Any], fit: Any) -> dict[str, Any]:
        extra: dict[str, Any] = {"resumed_from_epoch": fit.resumed_from} if fit.resumed_from else {}
        if report:
            extra["method"] = report
        return extra

    def _epoch_end(self, run_info: dict[str, Any], epoch: int, logs: dict[str, float]) -> None:
        if self.epoch_log is not None:
            self.epoch_log(run_info, epoch, logs)
        self.registry.notify("mmbench_epoch_end", run=run_info, epoch=epoch, logs=logs)

    def _test(self, module: MethodModule, test: ArrayBatches, plan: RunPlan,
              subsets: Sequence[Subset] | None = None) -> dict[str, dict[str, float]]:
        return evaluate(module, test, subsets or plan.subsets, plan.task, self.device, plan.recipe.eval_batch_size,
                        plan.recipe.amp, world=self.world)

    def _test_each_subset(self, module: MethodModule, test: ArrayBatches, plan: RunPlan, fit: Any,
                          last: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        """Per-subset selection: every subset tested with the weights of its own best epoch
        (subsets that share an epoch are tested together; the last epoch's are reused)."""
        by_epoch: dict[int, list[Subset]] = {}
        for subset in plan.subsets:
            by_epoch.setdefault(fit.subset_best[subset_key(subset)].epoch, []).append(subset)
        results: dict[str, dict[str, float]] = {}
        for epoch, subsets in sorted(by_epoch.items()):
            if epoch == len(fit.curves):
                results.update({subset_key(s): last[subset_key(s)] for s in subsets})
                continue
            module.load_state_dict(fit.subset_best[subset_key(subsets[0])].state)
            results.update(self._test(module, test, plan, subsets))
        return {subset_key(s): results[subset_key(s)] for s in plan.subsets}

    def _record(
        self, plan: RunPlan, data_seconds: float, started: float, status: str, sizes: dict[str, int],
        timings_extra: dict[str, float] | None = None, class_weights: Any = None, **fields: Any,
    ) -> RunRecord:
        task, dataset = plan.task, plan.dataset
        timings = Timings(data_seconds=data_seconds, total_seconds=time.perf_counter() - started, **(timings_extra or {}))
        return RunRecord(
            run_id=plan.run_id, status=status, created=datetime.now(UTC).isoformat(timespec="seconds"),
            task=TaskInfo(
                name=task.name, version=task.version, kind=task.kind, primary_metric=task.primary,
                higher_is_better=task.higher_is_better, modalities=list(plan.modalities), num_classes=task.num_classes,
                class_weights=None if class_weights is None else [float(w) for w in class_weights],
            ),
            dataset=DatasetInfo(
                name=dataset.name, source=dataset.source.kind, repo=getattr(dataset.source, "repo", None),
                revision=plan.revision, revision_overridden=plan.revision_overridden,
                options=dict(plan.dataset_options), sizes=sizes,
            ),
            method=MethodInfo(
                name=plan.method.name, plugin=plan.plugin.name, version=plan.plugin.version,
                paper=plan.method.paper, repo=plan.method.repo, family=plan.method.family,
                source_hash=plan.plugin.source_hash,
            ),
            config=to_jsonable(plan.config), recipe=asdict(plan.recipe), profile=plan.profile, seed=plan.seed,
            overrides=dict(plan.overrides),
            pretrained=None if plan.pretrained is None else PretrainedInfo(
                name=plan.pretrained.name, file=plan.pretrained.path.name, sha256=plan.pretrained.sha256),
            trained_modalities=list(plan.trained_modalities), subsets=plan.subset_names,
            distillation=None if plan.distillation is None else DistillationInfo(
                scenario=plan.distillation.scenario,
                teacher=None if plan.distillation.teacher is None else list(plan.distillation.teacher),
                students=[list(s) for s in plan.distillation.students],
            ),
            timings=timings, provenance=collect(self.device, self.registry.plugin_versions(), self.registry.plugin_sources()),
            **fields,
        )
