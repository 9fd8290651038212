"""What one training step needs in memory, measured on any device (a CPU stands in for a GPU):
the tensors autograd saves for the backward pass (the activations, counted once per storage) and
the parameters, their gradients and the optimiser's state. Peak GPU memory of a step is close to
their sum plus the framework's workspace; the figures let the README state what a ``full`` run
needs before anyone has a GPU at hand."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

# optimiser state in parameter-sized tensors: SGD's momentum buffer, Adam's two moments
OPTIMIZER_STATE = {"sgd": 1, "adam": 2, "adamw": 2}


@dataclass(frozen=True)
class StepMemory:
    """Bytes of one training step of batch size ``batch``."""

    batch: int
    activations: int
    parameters: int
    trainable: int
    """Bytes of the trainable parameters (gradients take as much, fp32)."""

    @property
    def activations_per_sample(self) -> float:
        return self.activations / self.batch

    def total(self, batch_size: int, optimizer: str) -> int:
        """Estimated bytes of a step at ``batch_size``: parameters + gradients + optimiser state +
        activations scaled from the measured batch."""
        state = OPTIMIZER_STATE.get(optimizer, 2) * self.trainable
        return int(self.parameters + self.trainable + state + self.activations_per_sample * batch_size)


def saved_activation_bytes(step: Callable[[], torch.Tensor], exclude: Iterable[torch.Tensor] = ()) -> tuple[torch.Tensor, int]:
    """Run ``step`` (forward, returning the loss) and count the bytes of the distinct storages
    autograd saves for backward, except those of ``exclude`` (the parameters: counted on their
    own); returns the loss (backward not yet run) and the count."""
    skip = {(t.device, t.untyped_storage().data_ptr()) for t in exclude}
    seen: dict[tuple[torch.device, int], int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        key = (tensor.device, storage.data_ptr())
        if key not in skip:
            seen.setdefault(key, storage.nbytes())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = step()
    return loss, sum(seen.values())


def step_memory(module: nn.Module, step: Callable[[], torch.Tensor], batch: int,
                frozen: Iterable[nn.Module] = ()) -> StepMemory:
    """Measure one training step of ``module`` (``step`` computes its loss; backward is run here
    so the step is complete). ``frozen``: modules the step runs outside ``module`` (a teacher),
    whose parameters are held in memory too."""
    params = list({id(p): p for m in (module, *frozen) for p in m.parameters()}.values())
    loss, activations = saved_activation_bytes(step, params)
    loss.backward()
    return StepMemory(batch=batch, activations=activations,
                      parameters=sum(p.numel() * p.element_size() for p in params),
                      trainable=sum(p.numel() * p.element_size() for p in params if p.requires_grad))
