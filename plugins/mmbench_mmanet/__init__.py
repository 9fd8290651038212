"""mmbench_mmanet — MMANet (built-in plugin).

Wei, Luo & Luo, *MMANet: Margin-aware Distillation and Modality-aware Regularization for
Incomplete Multimodal Learning*, CVPR 2023; official code shicaiwei123/MMANet-CVPR2023. Trained
with all modalities (randomly dropped per sample), evaluated on every modality subset; the
full-modality teacher is a declared dependency (:func:`requires`), trained first. Losses in :mod:`mmbench_mmanet.losses`.

    mmbench run --method mmanet --task synth-rgbdi-pad
"""

from __future__ import annotations

from dataclasses import dataclass

from mmbench import ALL_KINDS, MethodSpec, ProfileRecipe, hookimpl

__version__ = "0.2.0"


@dataclass(frozen=True)
class MMANetConfig:
    kd_weight: float | None = None
    """λ_MAD; default the official 30 (classification) / 4 (segmentation) / 10 (Cityscapes)."""
    mar_weight: float | None = None
    """λ_MAR; default the official 0.5 (classification) / 0.2 (segmentation) / 0.1 (Cityscapes)."""
    begin_epoch: int | None = None
    """0-based epoch after which MAD and MAR are on; default the official 5 (classification,
    counted from its untrained epoch 0: 4 here) / 10, or half the recipe's epochs when it is
    shorter than twice that."""
    mining_epochs: int | None = None
    """Epochs of weak-combination mining before ``begin_epoch`` (official 3 / 4)."""
    fusion_stage: int | None = None
    """Classification: fuse after this ResNet stage (default 2, as SF). Segmentation always uses
    the ESANet network (fusion after every stage)."""
    backbone: str | None = None
    official: bool = True
    """Reproduce the official code's quirks (default): MAR's broadcast normaliser (classification),
    MAD's entropy over the teacher's first decoder map with the teacher's BatchNorm on batch
    statistics (segmentation), MAR on the selected samples with ESANet's cross-entropy
    (segmentation). ``false``: the paper's evident intent for each (see
    :mod:`mmbench_mmanet.losses`)."""

    def __post_init__(self) -> None:
        if self.fusion_stage is not None and not 1 <= self.fusion_stage <= 4:
            raise ValueError("fusion_stage must be in 1..4")
        if (self.begin_epoch is not None and self.begin_epoch < 1) or (self.mining_epochs is not None and self.mining_epochs < 1):
            raise ValueError("begin_epoch and mining_epochs must be >= 1")
        if any(w is not None and w < 0 for w in (self.kd_weight, self.mar_weight)):
            raise ValueError("kd_weight and mar_weight must be >= 0")


def requires(task, modalities, config) -> dict[str, tuple[str, dict[str, str]]]:
    """The full-modality teacher: the SF network (``se-fusion``, same fusion stage) for
    classification, ``esanet`` for segmentation — as the official code's teachers."""
    if task.kind == "segmentation":
        return {"teacher": ("esanet", {})}
    return {"teacher": ("se-fusion", {"fusion_stage": str(config.fusion_stage or 2)})}


@hookimpl
def mmbench_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="mmanet",
            description="MMANet: margin-aware distillation from a full-modality teacher + weak-combination regulariser",
            build="mmbench_mmanet.models:MMANet", config=MMANetConfig, kinds=ALL_KINDS, min_modalities=2,
            family="incomplete", requires=requires,
            # segmentation/train_missing_mmanet.py: args.encoder = 'resnet50' (student and teacher)
            recipe=ProfileRecipe("full", "segmentation", backbone="resnet50"),
            paper="Wei, Luo & Luo, MMANet, CVPR 2023", repo="https://github.com/shicaiwei123/MMANet-CVPR2023",
        ),
    ]
