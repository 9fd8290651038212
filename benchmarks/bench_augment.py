"""On-device augmentation of the full segmentation recipes against one ESANet training step, on the
best available device: ESANet's random rescale + crop, HSV jitter and flip of a 480×640 RGB-D
batch of 8 (labels included), as ``recipe_view`` runs it, relative to one forward / backward of
ESANet-R34-NBt1D on the same batch (goal ≤ 0.10: augmenting on the device is never what a step
waits on)."""

import time

import torch
from sizing import sized

from mmbench.data.augment import recipe_view
from mmbench.models import ESANetwork, deep_supervision_loss
from mmbench.specs import Recipe

SIZE, BATCH, CLASSES, ROUNDS = sized((480, 640), (96, 128)), sized(8, 2), 40, sized(2, 1)
RECIPE = Recipe(scale_range=(1.0, 1.4), hsv_jitter=0.1, hflip=True)


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _timed(function, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    function()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def test_augmentation_vs_esanet_step(benchmark, report):
    device = _device()
    torch.manual_seed(0)
    batch = {"rgb": torch.randn(BATCH, 3, *SIZE, device=device), "depth": torch.randn(BATCH, 1, *SIZE, device=device),
             "target": torch.randint(0, CLASSES, (BATCH, *SIZE), device=device)}
    stats = {"rgb": (torch.full((3, 1, 1), 110.0).numpy(), torch.full((3, 1, 1), 60.0).numpy())}
    net = ESANetwork(("rgb", "depth"), {"rgb": (3, *SIZE), "depth": (1, *SIZE)}, CLASSES, "resnet34-nbt1d", 64,
                     "esanet").to(device).train()
    mask = torch.ones(BATCH, 2, device=device)
    task = type("Task", (), {"ignore_index": 255})()

    def augment() -> None:
        recipe_view(batch, ("rgb", "depth"), RECIPE, dense_target=True, ignore_index=255, stats=stats)

    def step() -> None:
        view = recipe_view(batch, ("rgb", "depth"), Recipe(), dense_target=True)
        deep_supervision_loss(task, net.training_outputs(view, mask), view["target"]).backward()

    augment()  # warm-up
    augmented = min(_timed(augment, device) for _ in range(ROUNDS))
    stepped = min(_timed(step, device) for _ in range(ROUNDS))
    benchmark.pedantic(augment, rounds=1, iterations=1)
    benchmark.extra_info["device"] = str(device)
    report(benchmark, "augmentation_vs_esanet_r34_step", augmented / stepped, "<= 0.10",
           augmentation_seconds=augmented, step_seconds=stepped)
