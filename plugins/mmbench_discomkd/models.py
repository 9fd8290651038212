"""The DisCoM-KD network, generalised from two to any number of modalities.

Per modality (official ``model_pytorch.py``): a modality-invariant and a modality-specific
ResNet encoder (the core's, with the recipe's backbone and width; the official code uses
torchvision ResNet-18 with a 7×7 stem), a projection head Linear → BatchNorm1d → ReLU from the
invariant features to D = half the encoder's feature size, and the specific features split in
halves: the first half *informative*, the second *irrelevant*. Each modality has its own task
classifier on [z_inv ‖ z_inf]; one modality discriminator (behind gradient reversal, λ = 1),
one modality classifier per specific half and one auxiliary task classifier are shared by all
modalities.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from mmbench import TaskSpec
from mmbench.engine import MethodModule, RunContext
from mmbench.models import build_encoder
from mmbench_discomkd.losses import (
    adversarial_loss,
    auxiliary_loss,
    classification_loss,
    grad_reverse,
    modality_loss,
    orthogonality_loss,
)


def _pooled(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    last = encoder(x)[-1]
    return last.mean(dim=(2, 3)) if last.dim() == 4 else last


class Branch(nn.Module):
    """One modality's extractor: invariant encoder + projection, specific encoder, task classifier."""

    def __init__(self, shape: Sequence[int], arch: str, width: int, num_classes: int):
        super().__init__()
        self.invariant_encoder = build_encoder(shape, arch, width)
        self.specific_encoder = build_encoder(shape, arch, width)
        features = self.specific_encoder.out_channels[-1]
        self.dim = features // 2
        self.projection = nn.Sequential(
            nn.Linear(self.invariant_encoder.out_channels[-1], self.dim), nn.BatchNorm1d(self.dim), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(2 * self.dim, num_classes)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        invariant = self.projection(_pooled(self.invariant_encoder, x))
        specific = _pooled(self.specific_encoder, x)
        informative, irrelevant = specific[:, : self.dim], specific[:, self.dim :]
        logits = self.classifier(torch.cat([invariant, informative], dim=1))
        return {"invariant": invariant, "informative": informative, "irrelevant": irrelevant, "logits": logits}


class DisCoMKD(MethodModule):
    """All single-modality classifiers trained at once, without a teacher.

    L = L_CL + L_ADV + L_MOD + L_AUX + L_⊥ with unit weights (paper Eq. 7, official code); the
    terms are in :mod:`mmbench_discomkd.losses`. With ``sampling=unpaired`` (default, official)
    each branch sees its own loader's samples and labels (``batch["targets"]``).
    """

    def __init__(self, task: TaskSpec, config: Any, ctx: RunContext):
        super().__init__()
        self.config = config
        self.modalities = tuple(ctx.modalities)
        self.paired_modalities = config.sampling == "paired"
        arch, width = config.backbone or ctx.recipe.backbone, ctx.recipe.width
        self.branches = nn.ModuleDict(
            {m: Branch(ctx.shapes[m], arch, width, task.num_classes) for m in self.modalities}
        )
        dim = next(iter(self.branches.values())).dim
        if any(b.dim != dim for b in self.branches.values()):
            raise ValueError("every modality branch must produce embeddings of the same size")
        count = len(self.modalities)
        self.discriminator = nn.Linear(dim, count)
        self.informative_modality = nn.Linear(dim, count)
        self.irrelevant_modality = nn.Linear(dim, count)
        self.auxiliary = nn.Linear(dim, task.num_classes)

    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        out = [self.branches[m](batch[m]) for m in self.modalities]
        per_modality = batch.get("targets")
        targets = [per_modality[m] for m in self.modalities] if per_modality else [batch["target"]] * len(out)
        invariant = [o["invariant"] for o in out]
        informative = [o["informative"] for o in out]
        irrelevant = [o["irrelevant"] for o in out]
        official = self.config.modality_targets == "official"
        return {
            "cl": classification_loss([o["logits"] for o in out], targets),
            "adv": adversarial_loss([self.discriminator(grad_reverse(z, self.config.grl_lambda)) for z in invariant],
                                    official),
            "mod": modality_loss([self.informative_modality(z) for z in informative],
                                 [self.irrelevant_modality(z) for z in irrelevant], official),
            "aux": auxiliary_loss([self.auxiliary(z) for z in invariant], [self.auxiliary(z) for z in informative],
                                  targets),
            "ortho": orthogonality_loss(invariant, informative, irrelevant),
        }

    def predict(self, batch: Any, modalities: Sequence[str]) -> torch.Tensor:
        if len(modalities) != 1:
            raise ValueError(f"DisCoM-KD deploys one modality at a time, got {list(modalities)}")
        return self.branches[modalities[0]](batch[modalities[0]])["logits"]
