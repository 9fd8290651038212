"""(5) The preprocessed cache on NYUv2-shaped data (640×480 RGB, 16-bit depth, 8-bit labels, in
the hub layout at the pinned revision of ``seg-nyuv2``).

Cold epoch: decode + resize every row from parquet into the memory-mapped cache, then one pass
of the training loader. Warm epoch: the same pass over the existing cache. Ratio cold / warm,
goal ≥ 5. Also reported: loader throughput against the step time of the ``fusion`` model on the
same batches, and the peak Python allocation while building the cache against the size of the
split's arrays (goal ≤ 0.25: rows are streamed one parquet row group at a time, the split is
never materialised; the fixture's random-noise PNGs are ~1.7 MB a row, ~9× a real NYUv2 row)."""

from __future__ import annotations

import shutil
import time
import tracemalloc
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from sizing import sized

import mmbench_rgbdseg as plugin
from mmbench.data.arrays import ArrayBatches, make_loader
from mmbench.data.cache import build_split_cache, open_split_cache
from mmbench.files import mmbench_home
from mmbench.plugins import Registry
from mmbench.testing import write_hub_fixture

SAMPLES = sized(160, 32)
ROW_GROUP = 16  # rows are streamed one parquet row group at a time


@pytest.fixture(scope="module")
def nyu_shaped(tmp_path_factory):
    import datasets

    rng = np.random.default_rng(0)
    columns = {"image": [], "depth": [], "label": []}
    for _ in range(SAMPLES):
        columns["image"].append(Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)))
        columns["depth"].append(Image.fromarray(rng.integers(500, 9000, (480, 640)).astype(np.uint16)))
        columns["label"].append(Image.fromarray(rng.integers(0, 41, (480, 640)).astype(np.uint8)))
    features = datasets.Features({"image": datasets.Image(), "depth": datasets.Image(), "label": datasets.Image()})
    write_hub_fixture(plugin.NYU_REPO, plugin.NYU_REVISION, {"data/train-00000-of-00001.parquet": columns}, features,
                      row_group_size=ROW_GROUP)
    registry = Registry.load()
    task = registry.task("seg-nyuv2")
    dataset = replace(registry.dataset_of(task), expected_sizes=None)
    return registry, task, dataset


def loader_pass(directory, batch_size: int = 8) -> float:
    arrays, meta = open_split_cache(directory)
    stats = {m: (np.asarray(s["mean"]), np.asarray(s["std"])) for m, s in meta["stats"].items()}
    from mmbench.data.arrays import SplitData

    batches = ArrayBatches(SplitData(arrays, np.arange(meta["count"])), stats, ("rgb", "depth"))
    start = time.perf_counter()
    for _ in make_loader(batches, batch_size, shuffle=True, seed=0):
        pass
    return time.perf_counter() - start


def test_cache_cold_vs_warm_epoch(benchmark, report, nyu_shaped):
    _, task, dataset = nyu_shaped
    shutil.rmtree(mmbench_home() / "cache" / dataset.name, ignore_errors=True)
    tracemalloc.start()
    start = time.perf_counter()
    directory = build_split_cache(dataset, task, "train", plugin.NYU_REVISION)
    build = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    cold = build + loader_pass(directory)
    benchmark.pedantic(loader_pass, args=(directory,), rounds=sized(3, 1), iterations=1)
    warm = min(benchmark.stats.stats.data)
    arrays, _ = open_split_cache(directory)
    split_bytes = sum(a.nbytes for a in arrays.values())
    report(benchmark, "cache_cold_over_warm_epoch", cold / warm, ">= 5", cold_seconds=cold, warm_seconds=warm,
           samples_per_second_warm=SAMPLES / warm)
    report(benchmark, "cache_build_peak_alloc_over_split_bytes", peak / split_bytes, "<= 0.25",
           peak_mb=peak / 2**20, split_mb=split_bytes / 2**20)


def test_loader_throughput_vs_model_step(benchmark, report, nyu_shaped):
    """Seconds per batch of the warm loader vs one fusion training step on the smoke profile's
    quarter-resolution input (the step a CPU user runs)."""
    import torch

    from mmbench.plan import plan_run

    registry, task, dataset = nyu_shaped
    small = build_split_cache(dataset, task, "train", plugin.NYU_REVISION, input_scale=0.25)
    per_batch_loader = loader_pass(small, batch_size=16) / (SAMPLES / 16)
    arrays, meta = open_split_cache(small)
    batch = {"rgb": torch.randn(16, 3, 120, 160), "depth": torch.randn(16, 1, 120, 160),
             "target": torch.randint(0, 40, (16, 120, 160))}
    plan = plan_run(registry, "fusion", "seg-nyuv2", 0, {})
    from mmbench.engine.runner import Runner

    runner = Runner(registry, out=mmbench_home() / "bench-runs", device="cpu")
    ctx = runner.context(plan, SimpleNamespace(shapes={k: tuple(v) for k, v in meta["shapes"].items()},
                                               class_weights=None))
    module = plan.method.builder()(plan.task, plan.config, ctx)
    optimiser = torch.optim.AdamW(module.parameters(), lr=1e-3)

    def step() -> None:
        losses = module.training_step(batch, 0)
        sum(losses.values()).backward()
        optimiser.step()
        optimiser.zero_grad()

    step()
    benchmark.pedantic(step, rounds=sized(3, 1), iterations=1)
    per_step = min(benchmark.stats.stats.data)
    report(benchmark, "loader_batch_over_model_step", per_batch_loader / per_step, "<= 0.2",
           loader_seconds_per_batch=per_batch_loader, step_seconds=per_step)
