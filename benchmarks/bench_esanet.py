"""ESANet training step at 480×640, batch 2, on the best available device: the time of one
forward / backward of mmbench's ``ESANetwork`` (ESANet-R34-NBt1D and MMANet's ESANet-R50, deep
supervision included) and its ratio to a bare PyTorch module calling the same layers directly, as
the official ``ESANet.forward`` does (goal ≥ 0.95: the presence masks and stream bookkeeping
cost nothing measurable)."""

import time

import pytest
import torch
import torch.nn.functional as F
from sizing import sized
from torch import nn

from mmbench.models import ESANetwork, deep_supervision_loss

SIZE, BATCH, CLASSES, ROUNDS = sized((480, 640), (96, 128)), 2, 40, sized(3, 1)


class BareESANet(nn.Module):
    """The official two-stream forward, written out over ``net``'s own layers."""

    def __init__(self, net: ESANetwork):
        super().__init__()
        self.net = net

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> list[torch.Tensor]:
        net = self.net
        er, ed, se = net.encoders["rgb"], net.encoders["depth"], net.se
        r, d = er.first_conv(rgb), ed.first_conv(depth)
        fuse = se[0]["rgb"](r) + se[0]["depth"](d)
        r, d = er.maxpool(fuse), ed.maxpool(d)
        skips = []
        for stage in range(4):
            r, d = er.stage(stage, r), ed.stage(stage, d)
            fuse = se[stage + 1]["rgb"](r) + se[stage + 1]["depth"](d)
            skips.append(fuse)
            r = fuse
        out = net.decoder.outputs(net.projection(skips), net.input_size, sides=True)
        return [out.logits, *out.sides]


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _step_seconds(forward, batch, target, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        outputs = forward(batch)
        loss = sum(F.cross_entropy(o.float(), F.interpolate(target[:, None].float(), size=o.shape[-2:],
                                                               mode="nearest")[:, 0].long()) for o in outputs)
    loss.backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


@pytest.mark.parametrize("arch", ["resnet34-nbt1d", "resnet50"])
def test_esanet_step_vs_bare_module(arch, benchmark, report):
    device = _device()
    torch.manual_seed(0)
    net = ESANetwork(("rgb", "depth"), {"rgb": (3, *SIZE), "depth": (1, *SIZE)}, CLASSES, arch, 64, "esanet").to(device)
    net.train()
    bare = BareESANet(net)
    batch = {"rgb": torch.randn(BATCH, 3, *SIZE, device=device), "depth": torch.randn(BATCH, 1, *SIZE, device=device)}
    target = torch.randint(0, CLASSES, (BATCH, *SIZE), device=device)
    mask = torch.ones(BATCH, 2, device=device)
    ours, plain = [], []
    _step_seconds(lambda b: net.training_outputs(b, mask), batch, target, device)  # warm-up
    for _ in range(ROUNDS):  # interleaved so both see the same machine state
        ours.append(_step_seconds(lambda b: net.training_outputs(b, mask), batch, target, device))
        plain.append(_step_seconds(lambda b: bare(b["rgb"], b["depth"]), batch, target, device))
    task = type("Task", (), {"ignore_index": None})()
    benchmark.pedantic(lambda: deep_supervision_loss(task, net.training_outputs(batch, mask), target).backward(),
                       rounds=1, iterations=1)
    benchmark.extra_info["device"] = str(device)
    report(benchmark, f"esanet_{arch}_step_vs_bare", min(plain) / min(ours), ">= 0.95",
           step_seconds=min(ours), bare_step_seconds=min(plain))
