"""The training loop and the all-subset evaluation. Methods never write their own loop.

Per epoch: ``on_epoch_start`` → shuffled batches (order keyed by seed and epoch) →
``training_step`` → sum of named terms → backward (AMP + GradScaler on CUDA) → optional gradient
clipping → optimiser and per-iteration schedule step → ``on_epoch_end`` → validation on every
deployment subset → best-epoch bookkeeping (validation split only) → atomic checkpoint.
A non-finite loss term stops the run with the epoch and term named.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mmbench.data.arrays import ArrayBatches, TaskData, make_loader
from mmbench.engine.checkpoint import load_checkpoint, save_checkpoint
from mmbench.engine.context import RunContext
from mmbench.engine.module import MethodModule
from mmbench.engine.optim import build_optimizer, build_scheduler
from mmbench.engine.seeding import rng_state, set_rng_state
from mmbench.errors import MMBenchError
from mmbench.metrics import meter_for
from mmbench.specs import Subset, TaskSpec, subset_key


class NonFiniteLoss(Exception):
    """A loss term became NaN or infinite."""

    def __init__(self, term: str, epoch: int, step: int):
        super().__init__(f"loss term '{term}' became non-finite at epoch {epoch + 1}, step {step}")
        self.term, self.epoch, self.step = term, epoch, step


class TrainingInterrupted(Exception):
    """Ctrl-C during training; the last completed epoch is checkpointed."""

    def __init__(self, completed_epochs: int):
        super().__init__(f"interrupted after {completed_epochs} completed epoch(s)")
        self.completed_epochs = completed_epochs


@dataclass
class FitResult:
    curves: list[dict[str, Any]]
    best_epoch: int
    best_val: dict[str, dict[str, float]]
    best_state: dict[str, torch.Tensor]
    train_seconds: float = 0.0
    val_seconds: float = 0.0
    resumed_from: int = 0


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


def selection_score(metrics: Mapping[str, Mapping[str, float]], task: TaskSpec) -> float:
    """Mean of the primary metric over the evaluated subsets, signed so that higher is better."""
    values = [m[task.primary] for m in metrics.values()]
    mean = sum(values) / len(values)
    return mean if task.higher_is_better else -mean


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
) -> dict[str, dict[str, float]]:
    """Metrics of every deployment subset over the whole split (encode-once via ``predict_subsets``)."""
    was_training = module.training
    module.eval()
    meters = {subset: meter_for(task) for subset in subsets}
    for batch in make_loader(batches, batch_size, shuffle=False):
        batch = to_device(batch, device, channels_last)
        with autocast_context(device, amp):
            outputs = module.predict_subsets(batch, list(subsets))
        for subset in subsets:
            meters[subset].update(outputs[subset].float(), batch["target"])
    module.train(was_training)
    return {subset_key(s): meters[s].compute() for s in subsets}


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
class Trainer:
    """Trains one :class:`MethodModule` on :class:`TaskData` under a :class:`RunContext`."""

    module: MethodModule
    data: TaskData
    ctx: RunContext
    method_name: str
    checkpoint: Path | None = None
    resume: bool = False
    fingerprint: str = ""
    progress: Any = None
    on_epoch: Callable[[int, dict[str, float]], None] | None = None
    train_modalities: tuple[str, ...] = field(default=())

    def fit(self) -> FitResult:
        ctx, recipe, module = self.ctx, self.ctx.recipe, self.module
        device = ctx.device
        cuda = device.type == "cuda"
        channels_last = cuda and recipe.channels_last
        module.to(device)
        if channels_last:
            module.to(memory_format=torch.channels_last)
        train = ArrayBatches(self.data.train, self.data.stats, self.data.modalities)
        val = ArrayBatches(self.data.val, self.data.stats, self.data.modalities)
        steps_per_epoch = max(len(train) // recipe.batch_size, 1)
        optimizer = build_optimizer(module, recipe, module.param_groups(recipe))
        scheduler = build_scheduler(optimizer, recipe, steps_per_epoch)
        use_scaler = cuda and recipe.amp and not torch.cuda.is_bf16_supported()
        scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
        curves: list[dict[str, Any]] = []
        best: dict[str, Any] | None = None
        start_epoch = 0
        if self.resume and self.checkpoint is not None and self.checkpoint.exists():
            state = load_checkpoint(self.checkpoint)
            if state.get("fingerprint") != self.fingerprint:
                raise MMBenchError(
                    f"checkpoint {self.checkpoint} was written by a run with a different configuration; "
                    "resume with the same --set options and profile, or delete it to start over."
                )
            module.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state["scaler"])
            set_rng_state(state["rng"])
            start_epoch, curves, best = state["epoch"], state["curves"], state["best"]
        subsets = ctx.subsets
        step = start_epoch * steps_per_epoch
        check_every = 1 if not cuda else 25
        task_bar = None
        if self.progress is not None:
            task_bar = self.progress.add_task(
                f"{self.method_name} seed {ctx.seed}", total=recipe.epochs * steps_per_epoch,
                completed=step, loss=float("nan"), rate=0.0,
            )
        train_seconds = sum(c["train_seconds"] for c in curves)
        val_seconds = sum(c["val_seconds"] for c in curves)
        completed = start_epoch
        try:
            for epoch in range(start_epoch, recipe.epochs):
                module.train()
                module.on_epoch_start(epoch, recipe.epochs)
                sums: dict[str, torch.Tensor] = {}
                seen = 0
                started = time.perf_counter()
                loader = make_loader(
                    train, recipe.batch_size, shuffle=True, seed=ctx.seed, epoch=epoch, drop_last=True,
                    num_workers=recipe.num_workers, pin_memory=cuda,
                )
                for batch in loader:
                    batch = to_device(batch, device, channels_last)
                    if recipe.hflip:
                        batch = _random_hflip(batch, self.data.modalities, self.ctx.task.kind)
                    with autocast_context(device, recipe.amp):
                        terms = module.training_step(batch, step)
                    if step == start_epoch * steps_per_epoch:
                        _check_terms(terms, self.method_name)
                    total = torch.stack([v.float() for v in terms.values()]).sum()
                    if step % check_every == 0 and not bool(torch.isfinite(total)):
                        bad = next(n for n, v in terms.items() if not bool(torch.isfinite(v)))
                        raise NonFiniteLoss(bad, epoch, step)
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(total).backward()
                    if recipe.grad_clip:
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(module.parameters(), recipe.grad_clip)
                    scaler.step(optimizer)
                    scaler.update()
                    scheduler.step()
                    for name, value in terms.items():
                        sums[name] = sums.get(name, 0) + value.detach().float()
                    seen += len(batch["target"])
                    step += 1
                    if task_bar is not None:
                        elapsed = time.perf_counter() - started
                        self.progress.update(
                            task_bar, advance=1, loss=float(total.detach()), rate=seen / max(elapsed, 1e-9)
                        )
                epoch_train = time.perf_counter() - started
                batches_run = max(step - epoch * steps_per_epoch, 1)
                losses = {name: float(value) / batches_run for name, value in sums.items()}
                for name, value in losses.items():
                    if value != value or value in (float("inf"), float("-inf")):
                        raise NonFiniteLoss(name, epoch, step)
                module.on_epoch_end(epoch, recipe.epochs)
                started = time.perf_counter()
                val_metrics = evaluate(module, val, subsets, ctx.task, device, recipe.eval_batch_size, recipe.amp, channels_last)
                epoch_val = time.perf_counter() - started
                train_seconds += epoch_train
                val_seconds += epoch_val
                score = selection_score(val_metrics, ctx.task)
                if best is None or score > best["score"]:
                    best = {
                        "epoch": epoch, "score": score, "val": val_metrics,
                        "state": {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()},
                    }
                curve = {
                    "epoch": epoch + 1,
                    "loss": losses,
                    "lr": optimizer.param_groups[0]["lr"],
                    "val": val_metrics,
                    "train_seconds": epoch_train,
                    "val_seconds": epoch_val,
                    "samples_per_second": seen / max(epoch_train, 1e-9),
                }
                curves.append(curve)
                if self.checkpoint is not None:
                    save_checkpoint(self.checkpoint, {
                        "fingerprint": self.fingerprint, "epoch": epoch + 1, "model": module.state_dict(),
                        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "scaler": scaler.state_dict(), "rng": rng_state(), "curves": curves, "best": best,
                    })
                completed = epoch + 1
                if self.on_epoch is not None:
                    logs = {f"loss/{k}": v for k, v in losses.items()}
                    logs.update({f"val/{s}/{k}": v for s, ms in val_metrics.items() for k, v in ms.items()})
                    logs.update(lr=curve["lr"], train_seconds=epoch_train)
                    self.on_epoch(epoch, logs)
        except KeyboardInterrupt:
            raise TrainingInterrupted(completed) from None
        finally:
            if task_bar is not None:
                self.progress.remove_task(task_bar)
        assert best is not None
        return FitResult(
            curves=curves, best_epoch=best["epoch"] + 1, best_val=best["val"], best_state=best["state"],
            train_seconds=train_seconds, val_seconds=val_seconds, resumed_from=start_epoch,
        )


def _random_hflip(batch: dict[str, torch.Tensor], modalities: Sequence[str], kind: str) -> dict[str, torch.Tensor]:
    """Flip each sample horizontally with probability 0.5, all modalities (and dense labels) alike."""
    flip = torch.rand(batch["target"].shape[0], device=batch["target"].device) < 0.5
    for key in (*modalities, "target"):
        value = batch[key]
        if key == "target" and kind != "segmentation":
            continue
        if value.dim() >= 3:
            batch[key] = torch.where(flip.reshape(-1, *([1] * (value.dim() - 1))), value.flip(-1), value)
    return batch
