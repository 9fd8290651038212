"""mmbench_osmd — OS-MD (built-in plugin).

Wei, Luo & Luo, *One-stage Modality Distillation for Incomplete Multimodal Learning*. Trained
with the ordinary and the privileged modalities, deployed on the ordinary one alone (the paper:
RGB), with the privileged knowledge distilled in the same training run. No official training code
exists: implemented from the paper (see :class:`mmbench_osmd.models.OSMD` for every choice).
Losses in :mod:`mmbench_osmd.losses`.

    mmbench run --method osmd --task synth-rgbd-seg                 # deploys rgb, privileged depth
    mmbench run --method osmd --task synth-rgbdi-pad --set ordinary=depth
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mmbench import ALL_KINDS, Deviation, MethodSpec, ProfileRecipe, Reference, hookimpl

__version__ = "0.2.0"


@dataclass(frozen=True)
class OSMDConfig:
    ordinary: str | None = None
    """The modality available at deployment (default: the task's first, RGB in the paper)."""
    privileged: tuple[str, ...] = ()
    """The privileged modalities, seen in training only (default: every other modality of the
    task). The paper's face tables: Table 1 RGB-D (``privileged=depth``), Table 3 RGB-IR
    (``privileged=ir``)."""
    aux_ratio: float = 0.1
    """α·L_JDN + β·L_CTN is scaled to this fraction of the task loss ("an order of magnitude
    smaller", paper §3.4); GradNorm sets α : β."""
    ctn: Literal["remnant", "paper"] = "remnant"
    """The cross translation network. ``remnant`` (default): as ``Cross_Translation`` in the
    authors' MMANet repository (``segmentation/src/models/rgb_depth_fusion.py``), the only code of
    OS-MD. ``paper``: §3.3 as written (transform blocks with BatchNorm, Eq. 8's sum of two MSEs).
    See :class:`mmbench_osmd.models.CrossTranslation`."""
    backbone: str | None = None

    def __post_init__(self) -> None:
        if self.aux_ratio < 0:
            raise ValueError("aux_ratio must be >= 0")


def ordinary_modality(modalities, config) -> str:
    return config.ordinary or modalities[0]


def privileged_modalities(modalities, config) -> tuple[str, ...]:
    """``config.privileged`` (in task order), else every modality but the ordinary one."""
    ordinary = ordinary_modality(modalities, config)
    return tuple(m for m in modalities if m != ordinary and (not config.privileged or m in config.privileged))


def trained_modalities(modalities, config) -> tuple[str, ...]:
    privileged = privileged_modalities(modalities, config)
    return tuple(m for m in modalities if m == ordinary_modality(modalities, config) or m in privileged)


def _check(modalities, config):
    ordinary = ordinary_modality(modalities, config)
    if ordinary not in modalities:
        return f"ordinary='{config.ordinary}' is not one of the task's modalities ({', '.join(modalities)})."
    unknown = [m for m in config.privileged if m not in modalities or m == ordinary]
    if unknown:
        return (f"privileged={','.join(config.privileged)}: {', '.join(unknown)} is not a modality of the task other "
                f"than the ordinary {ordinary} ({', '.join(modalities)}).")
    return None


def requires(task, modalities, config) -> dict[str, Reference]:
    """φ_p: the TEACHER reference on the privileged modalities; φ_o's initialisation: the
    STUDENT reference (a unimodal network) on the ordinary modality."""
    return {"ordinary": Reference("student", (ordinary_modality(modalities, config),)),
            "privileged": Reference("teacher", privileged_modalities(modalities, config))}


SEGMENTATION = ProfileRecipe("full", "segmentation", backbone="resnet34-nbt1d")
"""The paper's segmentation model is ESANet's (ESANet-R34-NBt1D)."""
FACES = ProfileRecipe("full", "anti-spoofing", epochs=50, select_from_epoch=1)
"""§4.1: "SGD ... learning rate 0.001, momentum 0.9, batch size 64, maximum epoch 50" on the
CASIA-SURF benchmark model and augmentation (the task's recipe); no selection rule is stated."""


def recipe(task, profile) -> dict:
    return {**SEGMENTATION(task, profile), **FACES(task, profile)}


@hookimpl
def mmbench_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="osmd",
            description="OS-MD: one-stage modality distillation, deploys the ordinary modality alone",
            build="mmbench_osmd.models:OSMD", config=OSMDConfig, kinds=ALL_KINDS, min_modalities=2,
            family="incomplete", check=_check, requires=requires, trained_modalities=trained_modalities,
            recipe=recipe,
            deploy_subsets=lambda subsets, trained, cfg: tuple(s for s in subsets if s == (ordinary_modality(trained, cfg),)),
            paper="Wei, Luo & Luo, One-stage Modality Distillation for Incomplete Multimodal Learning",
            repo="no official code (model remnant in https://github.com/shicaiwei123/MMANet-CVPR2023)",
            deviations=(Deviation(
                aspect="implementation",
                official="no training code published; a cross translation network remnant in the authors' MMANet "
                         "repository",
                mmbench="built from the paper (§3: JDN with MMD + output KL, CTN, GradNorm; §4.1 / §4.2 settings); "
                        "unstated details — the auxiliary-loss scale, the schedule on faces — are choices listed in "
                        "mmbench_osmd.models.OSMD",
                source="OS-MD paper; MMANet-CVPR2023 segmentation/src/models/rgb_depth_fusion.py"),),
        ),
    ]
