"""A trained model handed to the method that depends on it (``ctx.models[role]``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from mmbench.engine.module import (
    AbsentModalityError,
    Batch,
    Features,
    MethodModule,
    SubsetBatch,
    restrict_batch,
)


class TrainedModel:
    """A frozen, trained dependency (a teacher, a pretrained encoder): eval mode, no gradients,
    on the run's device.

    It is not an ``nn.Module``, so storing it on a method's module (``self.teacher =
    ctx.models["teacher"]``) keeps it outside the module tree: it is neither optimised, nor
    checkpointed with the method, nor counted in its parameters. It offers the trained-model
    contract of :class:`MethodModule` and nothing else: ``predict``, ``features`` (per-scale
    representation and logits) and ``encoder``. Every call sees only the modalities it names.
    """

    def __init__(self, module: MethodModule, method: str, run_id: str, modalities: Sequence[str]):
        self._module = module.eval().requires_grad_(False)
        self.method, self.run_id, self.modalities = method, run_id, tuple(modalities)

    def __repr__(self) -> str:
        return f"TrainedModel({self.method}, run {self.run_id}, trained on {'+'.join(self.modalities)})"

    @torch.no_grad()
    def predict(self, batch: Batch, modalities: Sequence[str] | None = None) -> torch.Tensor:
        """Its output when ``modalities`` (default: all it was trained on) are present."""
        subset = tuple(modalities or self.modalities)
        return self._module.predict(self._restricted(batch, subset, "predict"), subset)

    @torch.no_grad()
    def features(self, batch: Batch, modalities: Sequence[str] | None = None, *,
                 batch_statistics: bool = False) -> Features:
        """Its per-scale representation and logits when ``modalities`` (default: all) are present.

        ``batch_statistics=True`` computes them as a teacher left in training mode does (MMANet's
        official segmentation loop never calls ``teacher.eval()``): BatchNorm normalises with
        the batch's own statistics. Its running statistics are restored afterwards — the
        official loop's updates to them are never read — so the dependency stays the model
        whose weights the record hashes."""
        subset = tuple(modalities or self.modalities)
        restricted = self._restricted(batch, subset, "features")
        if not batch_statistics:
            return self._module.features(restricted, subset)
        with _training_mode(self._module):
            return self._module.features(restricted, subset)

    def _restricted(self, batch: Batch, subset: tuple[str, ...], call: str) -> SubsetBatch:
        """``batch`` restricted to ``subset``; a modality of ``subset`` that the batch lacks (absent
        in the calling method's deployment subset) is an error naming the dependency."""
        missing = [m for m in subset if m not in batch]
        if missing:
            where = (f" (absent in deployment subset '{'+'.join(batch.subset)}')" if isinstance(batch, SubsetBatch)
                     else "")
            raise AbsentModalityError(
                f"dependency {self.method} (run {self.run_id}) got a batch without modality '{missing[0]}'{where} in "
                f"{call}(); pass modalities=... naming only the present ones (it was trained on "
                f"{'+'.join(self.modalities)})")
        return restrict_batch(batch, subset)

    def encoder(self, modality: str) -> nn.Module:
        """Its (frozen) encoder of ``modality``; copy its ``state_dict`` to initialise another network."""
        return self._module.encoder(modality)


@contextmanager
def _training_mode(module: nn.Module) -> Iterator[None]:
    """``module`` in training mode for the block, its buffers (running statistics) unchanged after it."""
    saved = [buffer.clone() for buffer in module.buffers()]
    module.train()
    try:
        yield
    finally:
        module.eval()
        for buffer, value in zip(module.buffers(), saved, strict=True):
            buffer.copy_(value)
