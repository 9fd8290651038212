"""Typed options of the logit-distillation methods (``--set key=value``), with the official
repositories' defaults (CIFAR-100 configs: the same hyper-parameters the DisCoM-KD paper says it
kept for its competitors)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal


@dataclass(frozen=True)
class DistillConfig:
    """Options every teacher-student method shares: the protocol and LSKD."""

    scenario: Literal["cross-modal", "multi-modal"] | None = None
    """Default teacher: the task's richest modality (cross-modal) or all modalities (multi-modal).
    Unset: decided by ``teacher`` (cross-modal when it is unset too)."""
    teacher: str | None = None
    """Teacher modalities, e.g. ``rgb`` or ``rgb+depth``."""
    student: str | None = None
    """Student modality (default: the first modality that is not the task's richest)."""
    logit_standardization: bool = False
    """LSKD (Sun et al., CVPR 2024): z-score teacher and student logits before the distillation
    terms; the temperature becomes ``base_temperature`` and the distillation weight ``ls_weight``."""
    base_temperature: float = 2.0
    ls_weight: float = 9.0
    """LSKD's ``--kd-weight`` (9 in the LSKD repository)."""
    backbone: str | None = None
    """Student and teacher backbone (default: the recipe's, ResNet-18)."""

    def __post_init__(self) -> None:
        if self.base_temperature <= 0 or self.ls_weight < 0:
            raise ValueError("base_temperature must be > 0 and ls_weight >= 0")


@dataclass(frozen=True)
class KDConfig(DistillConfig):
    """Hinton KD, mdistiller CIFAR defaults: L = 0.1·CE + 0.9·KD at T = 4."""

    temperature: float = 4.0
    ce_weight: float = 0.1
    kd_weight: float = 0.9

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.temperature <= 0 or self.ce_weight < 0 or self.kd_weight < 0:
            raise ValueError("temperature must be > 0 and the weights >= 0")


@dataclass(frozen=True)
class KDv1Config(KDConfig):
    """KDv1 of the DisCoM-KD paper (after Xue et al., ICLR 2023): α = 0, soft labels only."""

    ce_weight: float = 0.0
    kd_weight: float = 1.0


@dataclass(frozen=True)
class KDv2Config(KDConfig):
    """KDv2 of the DisCoM-KD paper: α = 0.5, L = 0.5·CE + 0.5·KD."""

    ce_weight: float = 0.5
    kd_weight: float = 0.5


@dataclass(frozen=True)
class DKDConfig(DistillConfig):
    """DKD, mdistiller defaults (``cfg.py``): CE 1, α 1, β 8, T 4, 20 warm-up epochs."""

    ce_weight: float = 1.0
    alpha: float = 1.0
    beta: float = 8.0
    temperature: float = 4.0
    warmup: int = 20
    """Epochs of linear warm-up of the DKD term: factor min(epoch / warmup, 1), epochs from 1."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.temperature <= 0 or self.warmup < 1 or min(self.ce_weight, self.alpha, self.beta) < 0:
            raise ValueError("temperature must be > 0, warmup >= 1 and the weights >= 0")


@dataclass(frozen=True)
class CTKDConfig(DistillConfig):
    """CTKD (global temperature), the official scripts' defaults for CIFAR-100.

    ``base=kd``: γ = 0.1 (CE), α = 0.9 (KD), β = 0; ``base=dkd``: γ = 1, α = 0, β = 1 with
    DKD α = 1, β = 2 (``scripts/run_cifar_distill.sh``). Unset weights take those values."""

    base: Literal["kd", "dkd"] = "kd"
    ce_weight: float | None = None
    kd_weight: float | None = None
    dkd_weight: float | None = None
    dkd_alpha: float = 1.0
    dkd_beta: float = 2.0
    t_start: float = 1.0
    t_end: float = 20.0
    lambda_max: float = 0.0
    lambda_min: float = -1.0
    decay_epochs: int = 10
    """Epochs of the cosine λ curriculum (``--decay_loops``; 10 on CIFAR, 5 on ImageNet)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.decay_epochs < 1 or self.t_end <= 0:
            raise ValueError("decay_epochs must be >= 1 and t_end > 0")

    def resolved(self) -> CTKDConfig:
        """This config with the unset weights filled in from ``base`` (for the run id)."""
        ce, kd, dkd = self.weights()
        return replace(self, ce_weight=ce, kd_weight=kd, dkd_weight=dkd)

    def weights(self) -> tuple[float, float, float]:
        """(γ CE, α KD, β DKD) with the script defaults of ``base`` for unset ones."""
        defaults = (0.1, 0.9, 0.0) if self.base == "kd" else (1.0, 0.0, 1.0)
        given = (self.ce_weight, self.kd_weight, self.dkd_weight)
        return tuple(d if g is None else g for g, d in zip(given, defaults, strict=True))  # type: ignore[return-value]


@dataclass(frozen=True)
class MLKDConfig(KDConfig):
    """MLKD, official CIFAR defaults: T0 = 4, CE 0.1, KD 0.9, weak + strong views."""
