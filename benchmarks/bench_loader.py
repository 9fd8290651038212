"""The memory-mapped loader at native resolution against the training step it feeds, on the CPU:
samples per second of a warm epoch of ``make_loader`` (per-channel normalisation and int64 labels
included) with 0, 1 and 2 workers, relative to the samples per second of one ESANet-R34 training
step at batch 8 at 640×480 on the same machine (goal ≥ 5: loading is never what training waits
for). Over NYUv2's native 640×480 (an input-size cache, float16 images as stored), and over
native caches (:mod:`mmbench.data.native`) of Cityscapes' 2048×1024 and of SUN RGB-D's four sensor
sizes, read as padded batches — against the 640×480 step, a lower bound of the Cityscapes step
(1024×512 input)."""

import time

import numpy as np
import pytest
import torch
from sizing import sized

from mmbench.data.arrays import ArrayBatches, SplitData, make_loader
from mmbench.data.native import RaggedImages
from mmbench.models import ESANetwork, deep_supervision_loss

SIZE, SAMPLES, BATCH, CLASSES = sized((480, 640), (96, 128)), sized(96, 16), sized(8, 4), 40
NATIVE_SIZES = sized({"cityscapes": ((1024, 2048),), "sunrgbd": ((427, 561), (530, 730), (441, 591), (480, 640))},
                     {"cityscapes": ((128, 256),), "sunrgbd": ((53, 70), (66, 91), (55, 74), (60, 80))})
NATIVE_SAMPLES = sized(32, 8)
STATS = {"rgb": (np.full(3, 110.0), np.full(3, 60.0)), "depth": (np.full(1, 2.5), np.full(1, 1.2))}


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


def _native_cache(folder, sizes) -> dict[str, RaggedImages]:
    rng = np.random.default_rng(0)
    extents = np.array([sizes[i % len(sizes)] for i in range(NATIVE_SAMPLES)])
    arrays = {}
    for name, channels, dtype in (("rgb", 3, np.float16), ("depth", 1, np.float16), ("target", 1, np.int16)):
        path = folder / f"{name}.bin"
        with open(path, "wb") as handle:
            for height, width in extents:
                handle.write(rng.integers(0, CLASSES if name == "target" else 255, (channels, height, width))
                             .astype(dtype).tobytes())
        arrays[name] = RaggedImages(path, dtype, channels, extents, label=name == "target", pad_label=255)
    return arrays


_step: dict[str, float] = {}


def _esanet_step_rate(batches: ArrayBatches) -> float:
    """Samples per second of one ESANet-R34-NBt1D training step at batch 8, 640×480 (measured once)."""
    if "rate" not in _step:
        torch.manual_seed(0)
        net = ESANetwork(("rgb", "depth"), {"rgb": (3, *SIZE), "depth": (1, *SIZE)}, CLASSES, "resnet34-nbt1d", 64,
                         "esanet").train()
        batch = next(iter(make_loader(batches, BATCH, shuffle=True)))
        mask = torch.ones(BATCH, 2)
        task = type("Task", (), {"ignore_index": 255})()
        start = time.perf_counter()
        deep_supervision_loss(task, net.training_outputs(batch, mask), batch["target"]).backward()
        _step["rate"] = BATCH / (time.perf_counter() - start)
    return _step["rate"]


def test_loader_vs_esanet_step(benchmark, report, tmp_path):
    arrays = _cache(tmp_path)
    batches = ArrayBatches(SplitData(arrays, np.arange(SAMPLES)), STATS, ("rgb", "depth"))
    rates = {workers: _loader_rate(batches, workers) for workers in (0, 1, 2)}
    step_rate = _esanet_step_rate(batches)
    benchmark.pedantic(lambda: _loader_rate(batches, 0), rounds=1, iterations=1)
    report(benchmark, "loader_vs_esanet_r34_step", max(rates.values()) / step_rate, ">= 5",
           step_samples_per_second=step_rate, **{f"loader_samples_per_second_{w}_workers": r for w, r in rates.items()})


@pytest.mark.parametrize("dataset", sorted(NATIVE_SIZES))
def test_native_loader_vs_esanet_step(dataset, benchmark, report, tmp_path):
    batches = ArrayBatches(SplitData(_native_cache(tmp_path, NATIVE_SIZES[dataset]), np.arange(NATIVE_SAMPLES)),
                           STATS, ("rgb", "depth"))
    rates = {workers: _loader_rate(batches, workers) for workers in (0, 1, 2)}
    step_rate = _esanet_step_rate(ArrayBatches(SplitData(_cache(tmp_path), np.arange(SAMPLES)), STATS, ("rgb", "depth")))
    benchmark.pedantic(lambda: _loader_rate(batches, 0), rounds=1, iterations=1)
    report(benchmark, f"native_{dataset}_loader_vs_esanet_r34_step", max(rates.values()) / step_rate, ">= 5",
           step_samples_per_second=step_rate, **{f"loader_samples_per_second_{w}_workers": r for w, r in rates.items()})
