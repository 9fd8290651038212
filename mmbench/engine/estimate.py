"""How long the runs of a sweep will take on this device (``mmbench sweep FILE --estimate``).

Each distinct network of the sweep (its runs differ only by seed) is built untrained from the
specs — its dependencies too, as in a run — put in its late-training state (every epoch's
``on_epoch_start`` called in turn, so MMANet's distillation terms, DKD's warm-up and the like are
on), and timed on synthetic batches of the recipe's batch sizes: a few training steps (forward,
backward, optimiser step) and a few evaluations of every deployment subset. A run's time is then

    epochs × (steps per epoch × step time + validation batches × evaluation time)
    + 2 × test batches × evaluation time

with the split sizes the dataset spec declares (the validation carve and the recipe's limits
applied). Data loading, checkpoints and the first epoch's cache building are not counted; a
dataset that declares no sizes (bring-your-own data) gives no estimate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from mmbench.data.arrays import carved_validation_count
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
    step_seconds: float
    eval_seconds: float
    sizes: SplitSizes | None

    @property
    def steps_per_epoch(self) -> int | None:
        return None if self.sizes is None else max(self.sizes.train // self.plan.recipe.batch_size, 1)

    @property
    def hours_per_run(self) -> float | None:
        if self.sizes is None:
            return None
        recipe = self.plan.recipe
        val_batches = math.ceil(self.sizes.val / recipe.eval_batch_size)
        test_batches = math.ceil(self.sizes.test / recipe.eval_batch_size)
        seconds = recipe.epochs * (self.steps_per_epoch * self.step_seconds + val_batches * self.eval_seconds)
        return (seconds + 2 * test_batches * self.eval_seconds) / 3600


def split_sizes(plan: RunPlan) -> SplitSizes | None:
    """The split sizes a run trains and evaluates on, from the dataset spec (``None``: undeclared)."""
    task, declared = plan.task, plan.dataset.expected_sizes or {}
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


def time_network(plan: RunPlan, device: torch.device) -> tuple[float, float]:
    """(seconds per training step, seconds per evaluation batch of every deployment subset)."""
    built: dict[str, nn.Module] = {}
    module = build_untrained(plan, built)
    for dependency in built.values():
        dependency.to(device)
    module.to(device).train()  # the dependencies it holds (TrainedModel) wrap the modules of ``built``, moved above
    for epoch in range(plan.recipe.epochs):  # the method's late-training state (warm-ups over, extra terms on)
        module.on_epoch_start(epoch, plan.recipe.epochs)
    optimizer = build_optimizer(module, plan.recipe, module.param_groups(plan.recipe))
    batch = synthetic_batch(plan, plan.recipe.batch_size, device)
    if module.extra_views:
        batch["views"] = {name: dict(batch) for name in module.extra_views}
    if not module.paired_modalities:
        batch["targets"] = {m: batch["target"] for m in plan.trained_modalities}

    def step() -> None:
        terms = module.training_step(batch, 0)
        optimizer.zero_grad(set_to_none=True)
        torch.stack([t.float() for t in terms.values()]).sum().backward()
        optimizer.step()

    eval_batch = synthetic_batch(plan, plan.recipe.eval_batch_size, device)

    @torch.inference_mode()
    def evaluate() -> None:
        module.predict_subsets(eval_batch, list(plan.subsets))

    step_seconds = _timed(step, device, TIMED_STEPS)
    module.eval()
    eval_seconds = _timed(evaluate, device, TIMED_STEPS)
    return step_seconds, eval_seconds


def estimate_runs(plans: Iterable[RunPlan], device: torch.device) -> list[RunEstimate]:
    """One estimate per distinct network among ``plans`` (runs that differ only by seed share it)."""
    groups: dict[tuple, list[RunPlan]] = {}
    for plan in plans:
        key = (plan.method.name, plan.task.name, tuple(sorted(plan.overrides.items())), plan.profile)
        groups.setdefault(key, []).append(plan)
    estimates = []
    for members in groups.values():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            step_seconds, eval_seconds = time_network(members[0], device)
        estimates.append(RunEstimate(members[0], len(members), step_seconds, eval_seconds, split_sizes(members[0])))
    return estimates
