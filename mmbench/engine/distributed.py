"""One run on several processes (``torchrun --nproc-per-node N -m mmbench run ...``).

No method plugin changes: the engine shards every batch of the global ``recipe.batch_size``
across ranks (each rank takes every N-th sample of the same shuffled batch), averages gradients
over ranks after ``backward`` (what ``DistributedDataParallel`` does, without wrapping the
module, so any ``training_step`` works), broadcasts rank 0's buffers before each evaluation,
evaluates a shard of each split per rank and sums the confusion matrices. Rank 0 alone writes
records, checkpoints, galleries and progress. Dependencies (teachers) are trained by one process
under the artifact-cache lock and loaded by all ranks.

Batch statistics are per rank: BatchNorm normalises each rank's shard (as DDP without
SyncBatchNorm), and losses built from batch relations (MLKD's batch / class Gram matrices,
MMANet's relation matrices) see the rank's shard, as the official DataParallel code sees each
GPU's chunk. Results therefore match a single-process run exactly only for models without batch
statistics; ``gloo`` is used on CPU, ``nccl`` on CUDA.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


SINGLE = World()


def world_from_env() -> World:
    """The process's place in a ``torchrun`` launch (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return SINGLE
    return World(int(os.environ.get("RANK", "0")), size, int(os.environ.get("LOCAL_RANK", "0")))


def initialise(world: World, device: torch.device) -> None:
    """Join the process group (idempotent): nccl for CUDA devices, gloo otherwise."""
    if not world.active or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def current() -> World:
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return SINGLE


def _collective_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` summed over ranks (on the backend's device, returned on the input's)."""
    if not current().active:
        return tensor
    moved = tensor.to(_collective_device())
    dist.all_reduce(moved, op=dist.ReduceOp.SUM)
    return moved.to(tensor.device)


def average_gradients(parameters: Iterable[torch.nn.Parameter], world: World) -> None:
    """Mean of every gradient over ranks, in one flat all-reduce per dtype.

    A parameter with a gradient on some ranks only (a branch that ran on some shards, e.g.
    MMANet's auxiliary decoder) counts as zero on the others, so every rank reduces the same
    tensors; one with a gradient on no rank keeps none (torch DDP's ``find_unused_parameters``)."""
    params = list(parameters)
    if not params:
        return
    present = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=_collective_device())
    dist.all_reduce(present, op=dist.ReduceOp.SUM)
    for param, count in zip(params, present.tolist(), strict=True):
        if count and param.grad is None:
            param.grad = torch.zeros_like(param)
    grads = [p.grad for p in params if p.grad is not None]
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for grad in grads:
        by_dtype.setdefault(grad.dtype, []).append(grad)
    for group in by_dtype.values():
        flat = torch.cat([g.reshape(-1) for g in group])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= world.size
        offset = 0
        for grad in group:
            grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
            offset += grad.numel()


def broadcast_module(module: torch.nn.Module, buffers_only: bool = False) -> None:
    """Rank 0's parameters (and buffers) on every rank."""
    tensors = list(module.buffers()) if buffers_only else [*module.parameters(), *module.buffers()]
    for tensor in tensors:
        dist.broadcast(tensor.data, src=0)
