"""The memory-mapped loader at NYUv2's native 640×480 against the training step it feeds, on the
CPU: samples per second of a warm epoch of ``make_loader`` over a 640×480 RGB-D cache (float16
images, as the cache stores them; per-channel normalisation and int64 labels included) with 0, 1
and 2 workers, relative to the samples per second of one ESANet-R34 training step at batch 8 on
the same machine (goal ≥ 5: loading is never what training waits for)."""

import time

import numpy as np
import torch

from mmbench.data.arrays import ArrayBatches, SplitData, make_loader
from mmbench.models import ESANetwork, deep_supervision_loss

SIZE, SAMPLES, BATCH, CLASSES = (480, 640), 96, 8, 40


def _cache(folder) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {}
    for name, shape, dtype in (("rgb", (3, *SIZE), np.float16), ("depth", (1, *SIZE), np.float16),
                               ("target", SIZE, np.uint8)):
        path = folder / f"{name}.npy"
        array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(SAMPLES, *shape))
        array[:] = rng.integers(0, CLASSES if name == "target" else 255, (SAMPLES, *shape)).astype(dtype)
        array.flush()
        arrays[name] = np.load(path, mmap_mode="r")
    return arrays


def _loader_rate(batches: ArrayBatches, workers: int) -> float:
    for _ in make_loader(batches, BATCH, shuffle=True, num_workers=workers):  # warm: pages cached, workers forked
        pass
    start = time.perf_counter()
    seen = sum(len(b["target"]) for b in make_loader(batches, BATCH, shuffle=True, epoch=1, num_workers=workers))
    return seen / (time.perf_counter() - start)


def test_loader_vs_esanet_step(benchmark, report, tmp_path):
    arrays = _cache(tmp_path)
    stats = {"rgb": (np.full(3, 110.0), np.full(3, 60.0)), "depth": (np.full(1, 2.5), np.full(1, 1.2))}
    batches = ArrayBatches(SplitData(arrays, np.arange(SAMPLES)), stats, ("rgb", "depth"))
    rates = {workers: _loader_rate(batches, workers) for workers in (0, 1, 2)}
    torch.manual_seed(0)
    net = ESANetwork(("rgb", "depth"), {"rgb": (3, *SIZE), "depth": (1, *SIZE)}, CLASSES, "resnet34-nbt1d", 64,
                     "esanet").train()
    batch = next(iter(make_loader(batches, BATCH, shuffle=True)))
    mask = torch.ones(BATCH, 2)
    task = type("Task", (), {"ignore_index": 255})()
    start = time.perf_counter()
    deep_supervision_loss(task, net.training_outputs(batch, mask), batch["target"]).backward()
    step_rate = BATCH / (time.perf_counter() - start)
    benchmark.pedantic(lambda: _loader_rate(batches, 0), rounds=1, iterations=1)
    report(benchmark, "loader_vs_esanet_r34_step", max(rates.values()) / step_rate, ">= 5",
           step_samples_per_second=step_rate, **{f"loader_samples_per_second_{w}_workers": r for w, r in rates.items()})
