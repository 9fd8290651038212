"""(1) Engine throughput vs a hand-written PyTorch loop on the same model and data (goal ≥ 0.95),
on the best available device (a GPU user runs the same file; the device is reported), and the
data path's throughput vs the model's step time."""

import dataclasses
import time

import torch
from sizing import sized

from mmbench.data.arrays import ArrayBatches, load_task_data, make_loader
from mmbench.engine.loop import Trainer
from mmbench.engine.runner import Runner
from mmbench.engine.seeding import seed_everything
from mmbench.plan import plan_run
from mmbench.plugins import Registry

STEPS = sized(40, 5)


def setup():
    registry = Registry.load()
    plan = plan_run(registry, "fusion", "synth-rgbd-cls", 0, {"recipe.epochs": "1"})
    runner = Runner(registry, out="/tmp/mmbench-bench-runs", device="auto")
    limit = STEPS * plan.recipe.batch_size
    # the same optimiser on both sides: this measures the harness, not SGD vs AdamW
    recipe = dataclasses.replace(plan.recipe, limit_train=limit, limit_eval=64, scheduler="none", optimizer="sgd")
    plan = dataclasses.replace(plan, recipe=recipe)
    data = load_task_data(plan.task, plan.dataset, recipe)
    return registry, plan, runner, data


def plain_loop(module, data, recipe, device) -> float:
    """What a user would write by hand: tensors on the device, randperm batches, SGD. Samples/s."""
    train = ArrayBatches(data.train, data.stats, data.modalities)
    everything = {k: v.to(device) for k, v in train[list(range(len(train)))].items()}
    module.to(device)
    optimizer = torch.optim.SGD(module.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    module.train()
    order = torch.randperm(len(train))
    start = time.perf_counter()
    for step in range(len(train) // recipe.batch_size):
        idx = order[step * recipe.batch_size:(step + 1) * recipe.batch_size]
        batch = {k: v[idx] for k, v in everything.items()}
        loss = sum(module.training_step(batch, step).values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return len(train) // recipe.batch_size * recipe.batch_size / (time.perf_counter() - start)


def engine_epoch(runner, plan, data) -> float:
    ctx = runner.context(plan, data)
    seed_everything(0)
    module = plan.method.builder()(plan.task, plan.config, ctx)
    fit = Trainer(module, data, ctx, plan.method.name).fit()
    return fit.curves[0]["samples_per_second"]


def test_engine_vs_plain_loop(benchmark, report):
    registry, plan, runner, data = setup()
    ctx = runner.context(plan, data)
    plain, engine = [], []
    for _ in range(sized(3, 1)):  # interleaved so both see the same machine state
        seed_everything(0)
        plain.append(plain_loop(plan.method.builder()(plan.task, plan.config, ctx), data, plan.recipe, runner.device))
        engine.append(engine_epoch(runner, plan, data))
    benchmark.pedantic(engine_epoch, args=(runner, plan, data), rounds=1, iterations=1)
    benchmark.extra_info["device"] = str(runner.device)
    report(benchmark, "engine_vs_plain_throughput", max(engine) / max(plain), ">= 0.95",
           engine_samples_per_s=max(engine), plain_samples_per_s=max(plain))


def test_data_path_vs_model_step(benchmark, report):
    registry, plan, runner, data = setup()
    train = ArrayBatches(data.train, data.stats, data.modalities)

    def read_epoch():
        count = 0
        for batch in make_loader(train, plan.recipe.batch_size, shuffle=True, seed=0, epoch=0):
            count += len(batch["target"])
        return count

    benchmark.pedantic(read_epoch, rounds=sized(5, 1), iterations=1)
    loader_rate = len(train) / benchmark.stats.stats.min
    model_rate = engine_epoch(runner, plan, data)
    report(benchmark, "loader_vs_training_throughput", loader_rate / model_rate, ">> 1 (loader never the bottleneck)",
           loader_samples_per_s=loader_rate, training_samples_per_s=model_rate)
