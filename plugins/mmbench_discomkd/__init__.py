"""mmbench_discomkd — DisCoM-KD (built-in plugin).

Ienco & Fraga Dantas, *DisCoM-KD: Cross-Modal Knowledge Distillation via Disentanglement
Representation and Adversarial Learning*, BMVC 2024 (arXiv 2408.07080); official code
tanodino/CMKD_Disentangle. One run trains every single-modality classifier at once, with no
teacher; each is deployed and evaluated alone, next to the undistilled STUDENT reference of its
modality.

    mmbench run --method discomkd --task synth-rgbd-cls

The official protocol, reproduced by default: each modality's classifier is selected at its own
best validation epoch (``recipe.selection = per-subset``), the modalities come from independent,
unpaired loaders (``sampling = unpaired``) and each sample is augmented with probability 0.5
(``recipe.augment_probability = 0.5``); ``--set recipe.selection=mean``, ``--set
sampling=paired`` and ``--set recipe.augment_probability=1`` give mmbench's common protocol.

Differences from the official code, by design of the harness: the encoders are the core's
ResNets (recipe backbone, width and stem — the DisCoM-KD tasks' full recipes keep the official
7×7 + max-pool stem at every input size); the optimiser, epochs and
the kinds of augmentation are the task's recipe, the same for every method, as the paper trains
every competitor with one setup (the official augmentation rotates by a multiple of 90° with
probability 0.5 once a sample is augmented, the recipe's ``rot90`` always draws the turn).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mmbench import Deviation, MethodSpec, hookimpl, teacher_free_setup

__version__ = "0.2.0"


@dataclass(frozen=True)
class DisCoMKDConfig:
    modality_targets: Literal["official", "paper"] = "official"
    """``official``: the float (probability) modality targets of the official code; ``paper``:
    integer modality labels, the modality classification the paper describes."""
    grl_lambda: float = 1.0
    """Gradient-reversal factor (constant 1.0 in the official code)."""
    sampling: Literal["unpaired", "paired"] = "unpaired"
    """``unpaired``: every modality from its own independently shuffled loader, labels from each
    (the official script zips one loader per modality; the paper: modalities need not be paired);
    ``paired``: registered batches."""
    backbone: str | None = None

    def __post_init__(self) -> None:
        if self.grl_lambda < 0:
            raise ValueError("grl_lambda must be >= 0")


@hookimpl
def mmbench_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="discomkd",
            description="DisCoM-KD: every single-modality classifier at once, disentangled + adversarial, no teacher",
            build="mmbench_discomkd.models:DisCoMKD", config=DisCoMKDConfig, kinds=frozenset({"classification", "anti-spoofing"}),
            paper="Ienco & Fraga Dantas, DisCoM-KD, BMVC 2024 (arXiv 2408.07080)",
            repo="https://github.com/tanodino/CMKD_Disentangle",
            family="distillation", min_modalities=2,
            recipe={"selection": "per-subset", "augment_probability": 0.5},
            distillation=lambda task, modalities, config: teacher_free_setup(modalities),
            deviations=(Deviation(
                aspect="90° rotations",
                official="an augmented sample is turned by a multiple of 90° with probability 0.5, the turn drawn "
                         "uniformly: it keeps 0° with probability 0.625",
                mmbench="recipe.rot90 draws one of the four turns uniformly for every augmented sample (0° with "
                        "probability 0.25), the same for every method of the task",
                source="tanodino/CMKD_Disentangle, the training scripts' augmentation"),),
        ),
    ]
