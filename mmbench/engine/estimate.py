"""How long the runs of a sweep will take (``mmbench sweep FILE --estimate``).

Each distinct network of the sweep (its runs differ only by seed) is built untrained from the
specs — its dependencies too, as in a run — put in its late-training state (every epoch's
``on_epoch_start`` called in turn, so MMANet's distillation terms, DKD's warm-up and the like are
on), and run on synthetic batches of the recipe's batch sizes, under the recipe's mixed precision:
a few training steps (forward, backward, optimiser step) and a few evaluations of every deployment
subset are timed on the device, and one of each is counted in floating-point operations
(``torch.utils.flop_counter``: matrix products and convolutions, forward and backward; counted on
a batch of two and scaled to the recipe's batch sizes, to which they are proportional). A run's
time (its compute likewise) is then

    epochs × (steps per epoch × step time + validation batches × evaluation time)
    + 2 × test batches × evaluation time

with the split sizes the dataset spec declares (the validation carve and the recipe's limits
applied; a bring-your-own dataset's release sizes). ``--sustained-tflops X`` skips the timing
and projects the hours of a device that sustains X TFLOP/s on these networks — how the
``leaderboards/reproduce`` files state their GPU-hours without a GPU. Data loading, checkpoints
and the first epoch's cache building are not counted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from mmbench.data.arrays import carved_validation_count
from mmbench.engine.loop import autocast_context
from mmbench.engine.optim import build_optimizer
from mmbench.engine.summary import build_untrained, spec_shapes
from mmbench.plan import RunPlan

TIMED_STEPS = 3


@dataclass(frozen=True)
class SplitSizes:
    train: int
    val: int
    test: int


@dataclass(frozen=True)
class RunEstimate:
    plan: RunPlan
    """One of the runs (the first seed); the others cost the same."""
    runs: int
    step_seconds: float | None
    """``None``: not timed (``--sustained-tflops``)."""
    eval_seconds: float | None
    sizes: SplitSizes | None
    step_flops: float = 0.0
    """Floating-point operations of one training step at the recipe's batch size."""
    eval_flops: float = 0.0
    """The same for one evaluation batch of every deployment subset."""

    @property
    def steps_per_epoch(self) -> int | None:
        return None if self.sizes is None else max(self.sizes.train // self.plan.recipe.batch_size, 1)

    def _per_run(self, per_step: float, per_eval: float) -> float:
        assert self.sizes is not None and self.steps_per_epoch is not None
        recipe = self.plan.recipe
        val_batches = math.ceil(self.sizes.val / recipe.eval_batch_size)
        test_batches = math.ceil(self.sizes.test / recipe.eval_batch_size)
        return recipe.epochs * (self.steps_per_epoch * per_step + val_batches * per_eval) + 2 * test_batches * per_eval

    @property
    def hours_per_run(self) -> float | None:
        """Measured: the timed step and evaluation on the device."""
        if self.sizes is None or self.step_seconds is None or self.eval_seconds is None:
            return None
        return self._per_run(self.step_seconds, self.eval_seconds) / 3600

    @property
    def flops_per_run(self) -> float | None:
        return None if self.sizes is None else self._per_run(self.step_flops, self.eval_flops)

    def projected_hours(self, sustained_tflops: float) -> float | None:
        """Hours of one run on a device sustaining ``sustained_tflops`` TFLOP/s on its operations."""
        flops = self.flops_per_run
        return None if flops is None else flops / (sustained_tflops * 1e12) / 3600


def split_sizes(plan: RunPlan) -> SplitSizes | None:
    """The split sizes a run trains and evaluates on, from the dataset spec (``None``: undeclared)."""
    task, declared = plan.task, plan.dataset.expected_sizes or plan.dataset.release_sizes or {}
    if task.train_split not in declared or task.test_split not in declared:
        return None
    train = declared[task.train_split]
    if plan.recipe.selection == "paper":
        val = declared[task.test_split]
    elif task.val_split and task.val_split in plan.dataset.splits:
        if task.val_split not in declared:
            return None
        val = declared[task.val_split]
    else:
        val = carved_validation_count(task, train)
        train -= val

    def limit(count: int, limit: int | None) -> int:
        return count if limit is None else min(count, limit)

    recipe = plan.recipe
    return SplitSizes(limit(train, recipe.limit_train), limit(val, recipe.limit_eval),
                      limit(declared[task.test_split], recipe.limit_eval))


def synthetic_batch(plan: RunPlan, size: int, device: torch.device) -> dict[str, torch.Tensor]:
    """A batch of ``size`` random samples of the plan's shapes, on ``device``."""
    shapes = spec_shapes(plan)
    batch = {m: torch.randn(size, *shape, device=device) for m, shape in shapes.items()}
    image = next((s for s in shapes.values() if len(s) == 3), None)
    dense = plan.task.kind == "segmentation" and image is not None
    batch["target"] = torch.randint(0, plan.task.num_classes, (size, *image[-2:]) if dense else (size,), device=device)
    batch["index"] = torch.arange(size, device=device)
    return batch


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(function, device: torch.device, repeats: int) -> float:
    function()  # warm-up: kernels chosen, caches allocated
    _synchronise(device)
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    _synchronise(device)
    return (time.perf_counter() - started) / repeats


FLOP_BATCH = 2  # counted on two samples (BatchNorm needs more than one), scaled to the batch size


def _counted(function) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        function()
    return float(counter.get_total_flops())


def time_network(plan: RunPlan, device: torch.device, timed: bool = True) -> tuple[float | None, float | None, float, float]:
    """(seconds per training step, seconds per evaluation batch of every deployment subset — both
    ``None`` unless ``timed`` —, operations per training step, per evaluation batch)."""
    built: dict[str, nn.Module] = {}
    module = build_untrained(plan, built)
    for dependency in built.values():
        dependency.to(device)
    module.to(device).train()  # the dependencies it holds (TrainedModel) wrap the modules of ``built``, moved above
    for epoch in range(plan.recipe.epochs):  # the method's late-training state (warm-ups over, extra terms on)
        module.on_epoch_start(epoch, plan.recipe.epochs)
    optimizer = build_optimizer(module, plan.recipe, module.param_groups(plan.recipe))
    amp = plan.recipe.amp

    def training_batch(size: int) -> dict:
        batch = synthetic_batch(plan, size, device)
        if module.extra_views:
            batch["views"] = {name: dict(batch) for name in module.extra_views}
        if not module.paired_modalities:
            batch["targets"] = {m: batch["target"] for m in plan.trained_modalities}
        return batch

    def step(batch: dict) -> None:
        with autocast_context(device, amp):
            terms = module.training_step(batch, 0)
        optimizer.zero_grad(set_to_none=True)
        torch.stack([t.float() for t in terms.values()]).sum().backward()
        optimizer.step()

    @torch.inference_mode()
    def evaluate(batch: dict) -> None:
        with autocast_context(device, amp):
            module.predict_subsets(batch, list(plan.subsets))

    recipe = plan.recipe
    step_flops = _counted(lambda: step(training_batch(FLOP_BATCH))) * recipe.batch_size / FLOP_BATCH
    step_seconds = eval_seconds = None
    if timed:
        batch = training_batch(recipe.batch_size)
        step_seconds = _timed(lambda: step(batch), device, TIMED_STEPS)
    module.eval()
    eval_flops = _counted(lambda: evaluate(synthetic_batch(plan, FLOP_BATCH, device))) * recipe.eval_batch_size / FLOP_BATCH
    if timed:
        eval_batch = synthetic_batch(plan, recipe.eval_batch_size, device)
        eval_seconds = _timed(lambda: evaluate(eval_batch), device, TIMED_STEPS)
    return step_seconds, eval_seconds, step_flops, eval_flops


def estimate_runs(plans: Iterable[RunPlan], device: torch.device, timed: bool = True) -> list[RunEstimate]:
    """One estimate per distinct network among ``plans`` (runs that differ only by seed share it);
    ``timed=False``: operations counted, nothing timed."""
    groups: dict[tuple, list[RunPlan]] = {}
    for plan in plans:
        key = (plan.method.name, plan.task.name, tuple(sorted(plan.overrides.items())), plan.profile)
        groups.setdefault(key, []).append(plan)
    estimates = []
    for members in groups.values():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            step_seconds, eval_seconds, step_flops, eval_flops = time_network(members[0], device, timed)
        estimates.append(RunEstimate(members[0], len(members), step_seconds, eval_seconds, split_sizes(members[0]),
                                     step_flops, eval_flops))
    return estimates
