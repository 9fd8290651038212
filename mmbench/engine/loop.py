"""The training loop and the all-subset evaluation. Methods never write their own loop.

Per epoch: ``on_epoch_start`` → shuffled batches (order keyed by seed and epoch) →
``training_step`` → sum of named terms → backward (AMP + GradScaler on CUDA) → optional gradient
clipping → optimiser and schedule step (per iteration, or per epoch with
``recipe.scheduler_interval=epoch``) → ``on_epoch_end`` → validation on every
deployment subset → best-epoch bookkeeping (validation split only, from
``recipe.select_from_epoch``) → atomic checkpoint.
A non-finite loss term stops the run with the epoch and term named.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mmbench.data.arrays import NATIVE_EXTENT, NATIVE_TARGET, ArrayBatches, TaskData, make_loader
from mmbench.data.augment import VIEWS, Stats, recipe_view
from mmbench.data.cache import scaled_input_size
from mmbench.engine.checkpoint import load_checkpoint, save_checkpoint
from mmbench.engine.context import RunContext
from mmbench.engine.distributed import (
    SINGLE,
    World,
    all_reduce_sum,
    average_gradients,
    broadcast_module,
)
from mmbench.engine.module import AbsentModalityError, MethodModule
from mmbench.engine.optim import build_optimizer, build_scheduler
from mmbench.engine.seeding import rng_state, set_rng_state
from mmbench.errors import MMBenchError
from mmbench.metrics import meter_for
from mmbench.specs import METRIC_DIRECTIONS, Recipe, Subset, TaskSpec, subset_key


class NonFiniteLoss(Exception):
    """A loss term became NaN or infinite."""

    def __init__(self, term: str, epoch: int, step: int, what: str = "loss term"):
        super().__init__(f"{what} '{term}' became non-finite at epoch {epoch + 1}, step {step}")
        self.term, self.epoch, self.step = term, epoch, step


class NonFinitePrediction(Exception):
    """A model's output on an evaluation split has NaN or infinite values."""

    def __init__(self, subset: str):
        super().__init__(f"predictions for subset {subset} became non-finite")
        self.subset = subset


class TrainingInterrupted(Exception):
    """Ctrl-C during training; the last completed epoch is checkpointed."""

    def __init__(self, completed_epochs: int):
        super().__init__(f"interrupted after {completed_epochs} completed epoch(s)")
        self.completed_epochs = completed_epochs


@dataclass
class SubsetBest:
    """One deployment subset's own best validation epoch (``recipe.selection = "per-subset"``)."""

    epoch: int
    """1-based."""
    val: dict[str, float]
    state: dict[str, torch.Tensor]


@dataclass
class FitResult:
    curves: list[dict[str, Any]]
    best_epoch: int
    best_val: dict[str, dict[str, float]]
    best_state: dict[str, torch.Tensor]
    train_seconds: float = 0.0
    val_seconds: float = 0.0
    resumed_from: int = 0
    subset_best: dict[str, SubsetBest] | None = None
    """Per-subset selection: each subset's best epoch and weights (keyed by subset name)."""


def to_device(batch: Mapping[str, torch.Tensor], device: torch.device, channels_last: bool = False) -> dict[str, torch.Tensor]:
    moved = {}
    for key, value in batch.items():
        value = value.to(device, non_blocking=True)
        if channels_last and value.dim() == 4 and value.is_floating_point():
            value = value.contiguous(memory_format=torch.channels_last)
        moved[key] = value
    return moved


def autocast_context(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA where supported, else fp16 (with a GradScaler); nothing on CPU."""
    if device.type != "cuda" or not enabled:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def selection_score(metrics: Mapping[str, Mapping[str, float]], task: TaskSpec, recipe: Recipe | None = None) -> float:
    """Mean of the selection metric (``recipe.selection_metric``, default the primary) over the
    evaluated subsets — or over those with the most modalities (``recipe.selection_subsets=full``) —
    signed so that higher is better."""
    metric = recipe.selection_metric if recipe is not None and recipe.selection_metric else task.primary
    if recipe is not None and recipe.selection_subsets == "full":
        most = max(name.count("+") for name in metrics)
        metrics = {name: m for name, m in metrics.items() if name.count("+") == most}
    values = [m[metric] for m in metrics.values()]
    mean = sum(values) / len(values)
    return mean if METRIC_DIRECTIONS[metric] else -mean


@torch.inference_mode()
def evaluate(
    module: MethodModule,
    batches: ArrayBatches,
    subsets: Sequence[Subset],
    task: TaskSpec,
    device: torch.device,
    batch_size: int,
    amp: bool = False,
    channels_last: bool = False,
    world: World = SINGLE,
) -> dict[str, dict[str, float]]:
    """Metrics of every deployment subset over the whole split (encode-once via ``predict_subsets``);
    in a distributed run each rank evaluates its share and the confusion matrices are summed."""
    was_training = module.training
    module.eval()
    meters = {subset: meter_for(task) for subset in subsets}
    finite = {subset: torch.ones((), dtype=torch.bool, device=device) for subset in subsets}
    for batch in make_loader(batches, batch_size, shuffle=False, shard=(world.rank, world.size)):
        batch = to_device(batch, device, channels_last)
        with autocast_context(device, amp):
            try:
                outputs = module.predict_subsets(batch, list(subsets))
            except AbsentModalityError as exc:
                raise MMBenchError(f"{type(module).__name__}.predict read an absent modality: {exc}; "
                                   "predict must use only the modalities it is given.") from None
        for subset in subsets:
            logits = outputs[subset].float()
            finite[subset] &= torch.isfinite(logits).all()  # on the device: no host sync per batch
            if NATIVE_TARGET in batch:  # recipe.resolution=native: scored against the labels as decoded
                meters[subset].update_native(logits, batch[NATIVE_TARGET], batch[NATIVE_EXTENT])
            else:
                meters[subset].update(logits, batch["target"])
    module.train(was_training)
    broken = next((s for s in subsets if not bool(finite[s])), None)
    if broken is not None:
        raise NonFinitePrediction(subset_key(broken))
    if world.active:
        for meter in meters.values():
            meter.all_reduce()
    return {subset_key(s): meters[s].compute() for s in subsets}


def check_views(module: MethodModule, method: str) -> None:
    unknown = [v for v in module.extra_views if v not in VIEWS]
    if unknown:
        raise MMBenchError(f"method '{method}' asks for unknown view(s) {unknown}; available: {', '.join(VIEWS)}.")
    if module.extra_views and not module.paired_modalities:
        raise MMBenchError(f"method '{method}' asks for extra views of unpaired modalities; extra views need "
                           "paired_modalities = True.")


def unpaired_batch(batch: dict[str, Any], modalities: Sequence[str], others: Sequence[Mapping[str, torch.Tensor]],
                   recipe: Any, task: TaskSpec, stats: Stats | None = None) -> dict[str, Any]:
    """``batch`` (the first modality's loader, augmented) with each further modality taken from
    its own loader's batch in ``others`` (augmented on its own draws); ``batch["targets"]`` holds
    the labels of each modality's samples."""
    targets = {modalities[0]: batch["target"]}
    for modality, raw in zip(modalities[1:], others, strict=True):
        view = recipe_view(dict(raw), [modality], recipe, task.kind == "segmentation", task.ignore_index, stats,
                           scaled_input_size(task, recipe.input_scale))
        batch[modality], targets[modality] = view[modality], view["target"]
    batch["targets"] = targets
    return batch


def training_views(
    module: MethodModule, raw: Mapping[str, torch.Tensor], modalities: Sequence[str], recipe: Any, task: TaskSpec,
    stats: Stats | None = None,
) -> dict[str, Any]:
    """The batch a ``training_step`` receives: the recipe-augmented batch, plus
    ``batch["views"][name]`` — an independently augmented copy of the same samples — for each
    extra view the method asks for (e.g. MLKD's strong view)."""
    args = (modalities, recipe, task.kind == "segmentation", task.ignore_index, stats,
            scaled_input_size(task, recipe.input_scale))
    batch: dict[str, Any] = recipe_view(dict(raw), *args)
    if module.extra_views:
        batch["views"] = {name: VIEWS[name](dict(raw), *args) for name in module.extra_views}
    return batch


def _check_terms(terms: Any, method: str) -> None:
    if not isinstance(terms, Mapping) or not terms:
        raise MMBenchError(
            f"method '{method}': training_step must return a non-empty dict of named loss terms "
            f"{{'ce': tensor, ...}}, got {type(terms).__name__}."
        )
    for name, value in terms.items():
        if not isinstance(value, torch.Tensor) or value.dim() != 0 or not value.requires_grad:
            raise MMBenchError(
                f"method '{method}': loss term '{name}' must be a scalar tensor that requires grad, "
                f"got {type(value).__name__}{tuple(value.shape) if isinstance(value, torch.Tensor) else ''}."
            )


@dataclass
class _State:
    """What a checkpoint restores: where training stands and the best epoch so far."""

    epoch: int = 0
    curves: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None
    best_by_subset: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-subset selection: subset name → {"epoch", "score", "val", "state"} (0-based epoch)."""


@dataclass
class Trainer:
    """Trains one :class:`MethodModule` on :class:`TaskData` under a :class:`RunContext`."""

    module: MethodModule
    data: TaskData
    ctx: RunContext
    method_name: str
    checkpoint: Path | None = None
    resume: bool = False
    keep_epochs: int = 0
    """An existing checkpoint with this many completed epochs is not replaced until training has
    completed more (a run restarted without ``--resume`` never loses a longer one)."""
    fingerprint: str = ""
    progress: Any = None
    on_epoch: Callable[[int, dict[str, float]], None] | None = None
    world: World = SINGLE

    def fit(self) -> FitResult:
        recipe, device = self.ctx.recipe, self.ctx.device
        if self.world.active and recipe.batch_size % self.world.size:
            raise MMBenchError(f"recipe.batch_size {recipe.batch_size} is the global batch and must divide by the "
                               f"{self.world.size} processes; set recipe.batch_size to a multiple of {self.world.size}.")
        self.cuda = device.type == "cuda"
        self.channels_last = self.cuda and recipe.channels_last
        self.module.to(device)
        if self.channels_last:
            self.module.to(memory_format=torch.channels_last)
        self.train_batches = ArrayBatches(self.data.train, self.data.stats, self.data.modalities)
        self.val_batches = ArrayBatches(self.data.val, self.data.stats, self.data.modalities)
        self.steps_per_epoch = max(len(self.train_batches) // recipe.batch_size, 1)
        check_views(self.module, self.method_name)
        self.optimizer = build_optimizer(self.module, recipe, self.module.param_groups(recipe))
        self.scheduler = build_scheduler(self.optimizer, recipe, self.steps_per_epoch)
        use_scaler = self.cuda and recipe.amp and not torch.cuda.is_bf16_supported()
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
        self.training_step = self.module.training_step
        if recipe.compile:
            self.training_step = torch.compile(self.module.training_step)
        state = self._restore()
        if self.world.active:
            broadcast_module(self.module)  # identical start on every rank
        resumed_from = state.epoch
        self.step = state.epoch * self.steps_per_epoch
        self.bar = None
        if self.progress is not None:
            self.bar = self.progress.add_task(
                f"{self.method_name} seed {self.ctx.seed}", total=recipe.epochs * self.steps_per_epoch,
                completed=self.step, loss=float("nan"), rate=0.0,
            )
        try:
            for epoch in range(state.epoch, recipe.epochs):
                losses, seen, train_seconds = self._train_epoch(epoch, first=epoch == resumed_from)
                lr = self.optimizer.param_groups[0]["lr"]  # the epoch's (last) learning rate
                if recipe.scheduler_interval == "epoch":
                    self.scheduler.step()
                self.module.on_epoch_end(epoch, recipe.epochs)
                if self.world.active:
                    broadcast_module(self.module, buffers_only=True)  # rank 0's BatchNorm statistics
                self._check_state(epoch)
                started = time.perf_counter()
                try:
                    val_metrics = evaluate(
                        self.module, self.val_batches, self.ctx.subsets, self.ctx.task, device,
                        recipe.eval_batch_size, recipe.amp, self.channels_last, self.world,
                    )
                except NonFinitePrediction as exc:
                    raise NonFiniteLoss(exc.subset, epoch, self.step, what="validation predictions of subset") from None
                curve = {
                    "epoch": epoch + 1, "loss": losses, "lr": lr,
                    "val": val_metrics, "train_seconds": train_seconds,
                    "val_seconds": time.perf_counter() - started,
                    "samples_per_second": seen / max(train_seconds, 1e-9),
                }
                self._end_epoch(state, epoch, curve)
        except KeyboardInterrupt:
            raise TrainingInterrupted(state.epoch) from None
        finally:
            if self.bar is not None:
                self.progress.remove_task(self.bar)
        assert state.best is not None
        subset_best = {
            name: SubsetBest(epoch=best["epoch"] + 1, val=best["val"], state=best["state"])
            for name, best in state.best_by_subset.items()
        } if recipe.selection == "per-subset" else None
        return FitResult(
            curves=state.curves, best_epoch=state.best["epoch"] + 1, best_val=state.best["val"],
            best_state=state.best["state"], train_seconds=sum(c["train_seconds"] for c in state.curves),
            val_seconds=sum(c["val_seconds"] for c in state.curves), resumed_from=resumed_from,
            subset_best=subset_best,
        )

    def _restore(self) -> _State:
        if not (self.resume and self.checkpoint is not None and self.checkpoint.exists()):
            return _State()
        saved = load_checkpoint(self.checkpoint)
        if saved.get("fingerprint") != self.fingerprint:
            raise MMBenchError(
                f"checkpoint {self.checkpoint} was written by a run with a different configuration; "
                "resume with the same --set options and profile, or delete it to start over."
            )
        self.module.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.scaler.load_state_dict(saved["scaler"])
        set_rng_state(saved["rng"])
        return _State(epoch=saved["epoch"], curves=saved["curves"], best=saved["best"],
                      best_by_subset=saved.get("best_by_subset", {}))

    def _train_epoch(self, epoch: int, first: bool) -> tuple[dict[str, float], int, float]:
        """One pass over the training split; returns mean loss terms, samples seen, seconds."""
        recipe, module = self.ctx.recipe, self.module
        module.train()
        module.on_epoch_start(epoch, recipe.epochs)
        check_every = 25 if self.cuda else 1  # a finiteness check syncs the GPU
        sums: dict[str, torch.Tensor] = {}
        seen, batches = 0, 0
        started = time.perf_counter()
        modalities, trained = self.data.modalities, tuple(self.ctx.modalities)
        streams = 1 if module.paired_modalities else len(trained)
        loaders = [make_loader(  # unpaired: one independently shuffled loader per modality
            self.train_batches, recipe.batch_size, shuffle=True, seed=self.ctx.seed + 7919 * stream, epoch=epoch,
            drop_last=True, num_workers=recipe.num_workers, pin_memory=self.cuda, shard=(self.world.rank, self.world.size),
        ) for stream in range(streams)]
        for raw, *others in zip(*loaders, strict=True):
            device = self.ctx.device
            batch = training_views(module, to_device(raw, device, self.channels_last), modalities, recipe, self.ctx.task,
                                   self.train_batches.stats)
            if others:
                others = [to_device(o, device, self.channels_last) for o in others]
                batch = unpaired_batch(batch, trained, others, recipe, self.ctx.task, self.train_batches.stats)
            with autocast_context(self.ctx.device, recipe.amp):
                terms = self.training_step(batch, self.step)
            if first and batches == 0:
                _check_terms(terms, self.method_name)
            total = torch.stack([v.float() for v in terms.values()]).sum()
            if self.step % check_every == 0 and not self._finite(total):
                bad = next((n for n, v in terms.items() if not bool(torch.isfinite(v))), next(iter(terms)))
                raise NonFiniteLoss(bad, epoch, self.step)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(total).backward()
            if self.world.active:
                average_gradients(module.parameters(), self.world)
            if recipe.grad_clip:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(module.parameters(), recipe.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if recipe.scheduler_interval == "step":
                self.scheduler.step()
            for name, value in terms.items():
                sums[name] = sums.get(name, 0) + value.detach().float()
            seen += len(batch["target"])
            batches += 1
            self.step += 1
            if self.bar is not None:  # the displayed loss syncs the device only every check_every steps
                rate = seen / max(time.perf_counter() - started, 1e-9)
                shown = {"loss": float(total.detach())} if self.step % check_every == 0 else {}
                self.progress.update(self.bar, advance=1, rate=rate, **shown)
        if self.world.active:  # the logged loss is the mean over ranks
            sums = {name: all_reduce_sum(torch.as_tensor(value, dtype=torch.float32)) / self.world.size
                    for name, value in sums.items()}
        losses = {name: float(value) / max(batches, 1) for name, value in sums.items()}
        for name, value in losses.items():
            if not math.isfinite(value):
                raise NonFiniteLoss(name, epoch, self.step)
        return losses, seen, time.perf_counter() - started

    def _check_state(self, epoch: int) -> None:
        """Parameters and buffers must be finite after an epoch: a finite loss computed *before*
        the last update (e.g. a single step with an infinite learning rate) does not say so."""
        for name, value in self.module.state_dict().items():
            if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                raise NonFiniteLoss(name, epoch, self.step, what="weights")

    def _finite(self, total: torch.Tensor) -> bool:
        """Whether the loss is finite — on every rank (all ranks stop together)."""
        finite = torch.isfinite(total.detach()).to(torch.float32)
        if self.world.active:
            finite = all_reduce_sum(finite.cpu()) / self.world.size
        return bool(finite >= 1)

    def _end_epoch(self, state: _State, epoch: int, curve: dict[str, Any]) -> None:
        """Best-epoch bookkeeping (validation only), checkpoint, observers."""
        snapshot: dict[str, torch.Tensor] | None = None

        def weights() -> dict[str, torch.Tensor]:  # one CPU copy per epoch, shared by every selection
            nonlocal snapshot
            if snapshot is None:
                snapshot = {k: v.detach().to("cpu", copy=True) for k, v in self.module.state_dict().items()}
            return snapshot

        candidate = epoch + 1 >= self.ctx.recipe.select_from_epoch
        score = selection_score(curve["val"], self.ctx.task, self.ctx.recipe)
        if candidate and (state.best is None or score > state.best["score"]):
            state.best = {"epoch": epoch, "score": score, "val": curve["val"], "state": weights()}
        if candidate and self.ctx.recipe.selection == "per-subset":
            for name, metrics in curve["val"].items():
                subset_score = selection_score({name: metrics}, self.ctx.task, self.ctx.recipe)
                best = state.best_by_subset.get(name)
                if best is None or subset_score > best["score"]:
                    state.best_by_subset[name] = {"epoch": epoch, "score": subset_score, "val": metrics, "state": weights()}
        state.curves.append(curve)
        state.epoch = epoch + 1
        if self.checkpoint is not None and self.world.main and state.epoch >= self.keep_epochs:
            save_checkpoint(self.checkpoint, {
                "fingerprint": self.fingerprint, "epoch": state.epoch, "model": self.module.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(), "rng": rng_state(), "curves": state.curves, "best": state.best,
                "best_by_subset": state.best_by_subset,
            })
        if self.on_epoch is not None and self.world.main:
            logs = {f"loss/{k}": v for k, v in curve["loss"].items()}
            logs.update({f"val/{s}/{k}": v for s, ms in curve["val"].items() for k, v in ms.items()})
            logs.update(lr=curve["lr"], train_seconds=curve["train_seconds"])
            self.on_epoch(epoch + 1, logs)  # 1-based, as the console and the record count

