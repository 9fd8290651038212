"""mmbench_baselines — the reference points of every table (built-in plugin).

* ``unimodal`` — one modality, trained and deployed alone;
* ``fusion`` — modality-specific encoders, late fusion by concatenation (or element-wise sum:
  the multi-modal teacher of the DisCoM-KD paper), trained with all modalities or a chosen subset
  (missing ones are zeros at test time, as MMANet and the SF / ESANet baselines do);
* ``fusion-dropout`` — the same trained with per-sample Bernoulli modality dropout (never all
  dropped): the "-MD" baselines of the MMANet and OS-MD papers;
* ``se-fusion`` — the CASIA-SURF "SF" baseline (Zhang et al., CVPR 2019; ``resnet18_se.py`` /
  ``surf_baseline.py`` in shicaiwei123/MMANet-CVPR2023): ResNet-18 streams up to ``layer2``, an SE
  block per modality, concatenation, shared ``layer3``/``layer4``, linear classifier. For
  segmentation the fused maps feed the core decoder;
* ``esanet`` / ``esanet-dropout`` — the ESANet-style RGB-D segmentation network (SE-add fusion
  of every modality into the RGB stream, pyramid-pooling context, decoder) the MMANet and OS-MD
  segmentation experiments start from, without / with per-sample modality dropout (uniform over
  the non-empty subsets, as MMANet's fork).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mmbench import ALL_KINDS, MethodSpec, MMBenchError, ProfileRecipe, hookimpl, parse_subset

__version__ = "0.2.0"


@dataclass(frozen=True)
class UnimodalConfig:
    modality: str | None = None
    """The modality to train and deploy; default: the task's first modality."""
    backbone: str | None = None


@dataclass(frozen=True)
class FusionConfig:
    modalities: str | None = None
    """The modalities to train on, e.g. ``rgb+depth``; default: all of the task's."""
    fusion: Literal["concat", "sum"] = "concat"
    """Late fusion of the pooled features: concatenation, or element-wise addition at the
    penultimate layer (the DisCoM-KD paper's multi-modal teacher)."""
    backbone: str | None = None


@dataclass(frozen=True)
class FusionDropoutConfig:
    p: float = 0.5
    """Per-modality drop probability in training (samples with every modality dropped are re-drawn)."""
    backbone: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.p < 1.0:
            raise ValueError(f"p must be in [0, 1), got {self.p}")


@dataclass(frozen=True)
class SEFusionConfig:
    fusion_stage: int = 2
    """Fuse after this ResNet stage (1-4); SF fuses after layer2."""
    reduction: int = 16
    p: float = 0.0
    """Modality dropout probability (0: the SF baseline; > 0: SF-MD)."""
    modalities: str | None = None
    """Train and deploy on these modalities only, e.g. ``rgb+depth`` or ``rgb``: one model per
    combination — the papers' "customized" SF rows (default: all of the task's)."""
    backbone: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.fusion_stage <= 4 or not 0.0 <= self.p < 1.0 or self.reduction < 1:
            raise ValueError("fusion_stage must be in 1..4, p in [0, 1), reduction >= 1")


def unimodal_modality(modalities, config) -> str:
    return config.modality or modalities[0]


def _unimodal_check(modalities, config):
    chosen = unimodal_modality(modalities, config)
    if chosen not in modalities:
        return f"modality '{chosen}' is not one of the task's ({', '.join(modalities)}); set modality=<name>."
    return None


def fusion_modalities(modalities, config) -> tuple[str, ...]:
    return parse_subset(config.modalities, modalities) if config.modalities else tuple(modalities)


def _subset_check(modalities, config):
    try:
        fusion_modalities(modalities, config)
    except MMBenchError as exc:
        return str(exc)
    return None


def _fusion_check(modalities, config):
    problem = _subset_check(modalities, config)
    if problem is None and len(fusion_modalities(modalities, config)) < 2:
        return "fusion needs at least two modalities; use the unimodal method for one."
    return problem


@dataclass(frozen=True)
class ESANetConfig:
    modalities: str | None = None
    """Train and deploy on these modalities only, e.g. ``rgb`` (ESANet's single-modality network)
    or ``rgb+depth``: one model per combination — the papers' "customized" ESANet rows (default:
    all of the task's)."""
    backbone: str | None = None


def _within_trained(subsets, trained, config):
    return tuple(s for s in subsets if set(s) <= set(trained))


def _unimodal_reference(role: str, modalities: tuple[str, ...]) -> dict[str, str] | None:
    """The TEACHER / STUDENT reference on one modality: a unimodal network."""
    return {"modality": modalities[0]} if len(modalities) == 1 else None


def _fusion_reference(role: str, modalities: tuple[str, ...]) -> dict[str, str] | None:
    """On several modalities: per-modality encoders fused by element-wise addition at the
    penultimate layer for a teacher (the DisCoM-KD paper's multi-modal teacher), by concatenation
    for an undistilled student."""
    if len(modalities) < 2:
        return None
    return {"modalities": "+".join(modalities), **({"fusion": "sum"} if role == "teacher" else {})}


@hookimpl
def mmbench_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="unimodal", description="One modality, trained and deployed alone",
            build="mmbench_baselines.models:build_unimodal", config=UnimodalConfig, kinds=ALL_KINDS,
            check=_unimodal_check, reference=_unimodal_reference,
            trained_modalities=lambda mods, cfg: (unimodal_modality(mods, cfg),),
            deploy_subsets=lambda subsets, trained, cfg: tuple(s for s in subsets if s == trained),
        ),
        MethodSpec(
            name="fusion", description="Modality-specific encoders + late concat/sum fusion, trained with all modalities",
            build="mmbench_baselines.models:build_fusion", config=FusionConfig, kinds=ALL_KINDS, min_modalities=2,
            check=_fusion_check, reference=_fusion_reference,
            trained_modalities=fusion_modalities, deploy_subsets=_within_trained,
        ),
        MethodSpec(
            name="fusion-dropout",
            description="Fusion trained with per-sample modality dropout (the '-MD' baselines)",
            build="mmbench_baselines.models:build_fusion_dropout", config=FusionDropoutConfig, kinds=ALL_KINDS, min_modalities=2,
            paper="MMANet (Wei et al., CVPR 2023) and OS-MD modality-dropout baselines",
        ),
        MethodSpec(
            name="se-fusion",
            description="CASIA-SURF SF baseline: per-modality SE after layer2, concat, shared layer3-4",
            build="mmbench_baselines.models:build_se_fusion", config=SEFusionConfig, kinds=ALL_KINDS, min_modalities=2,
            check=_subset_check, trained_modalities=fusion_modalities, deploy_subsets=_within_trained,
            paper="Zhang et al., A Dataset and Benchmark for Large-scale Multi-modal Face Anti-spoofing, CVPR 2019",
            repo="https://github.com/shicaiwei123/MMANet-CVPR2023 (classification/models/surf_baseline.py)",
        ),
        *(
            MethodSpec(
                name=name, description=description, build=f"mmbench_baselines.segmentation:{builder}",
                config=ESANetConfig, check=_subset_check, trained_modalities=fusion_modalities,
                deploy_subsets=_within_trained, kinds=frozenset({"segmentation"}), min_modalities=2,
                recipe=ProfileRecipe("full", "segmentation", backbone="resnet34-nbt1d"),  # ESANet-R34-NBt1D
                paper="Seichter et al., Efficient RGB-D Semantic Segmentation for Indoor Scene Analysis, ICRA 2021",
                repo="https://github.com/TUI-NICR/ESANet",
            )
            for name, description, builder in (
                ("esanet", "ESANet-style RGB-D segmentation: SE-add fusion into the RGB stream, PPM context", "ESANet"),
                ("esanet-dropout", "ESANet trained with per-sample modality dropout (MMANet's ESANet baseline)",
                 "ESANet.with_dropout"),
            )
        ),
    ]
