"""mmbench_hemis — HeMIS (built-in plugin).

Havaei, Guizard, Chapados & Bengio, *HeMIS: Hetero-Modal Image Segmentation*, MICCAI 2016. The
authors released no code; mmbench follows the reimplementations the later papers' numbers come
from: U-HeMIS (Dorent et al., ReubenDo/U-HVED, ``extensions/u_hemis``) and, as ``variant=surf-mv``,
the HeMIS-style ``SURF_MV`` baseline of shicaiwei123/MMANet-CVPR2023.

Adapted from 3D brain MRI to 2D images: modality-specific ResNet encoders from the core (in place
of U-HeMIS's 3D pre-activation blocks), the abstraction layer — mean and variance over the
available modalities — at every encoder scale up to ``fusion_stage``, then the core decoder
(segmentation) or shared ResNet stages and a linear classifier (classification, as SURF_MV).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mmbench import ALL_KINDS, Deviation, MethodSpec, ProfileRecipe, hookimpl

__version__ = "0.2.0"


@dataclass(frozen=True)
class HeMISConfig:
    variant: Literal["u-hemis", "surf-mv"] = "u-hemis"
    """``u-hemis``: population variance over the available modalities; each training batch
    shares one subset whose size is uniform in 1..M (so P(full set) = 1/M). ``surf-mv``: masks
    drawn per sample uniformly over the non-empty subsets, variance summed over all modalities
    with missing ones as zeros and set to 0 for a sample with one modality (the MMANet
    repository's quirks)."""
    fusion_stage: int | None = None
    """Abstraction after this encoder stage: default 4 (every scale, U-HeMIS) for segmentation, 2
    (then shared layer3-4, as SURF_MV) for classification."""
    backbone: str | None = None

    def __post_init__(self) -> None:
        if self.fusion_stage is not None and not 1 <= self.fusion_stage <= 4:
            raise ValueError("fusion_stage must be in 1..4")


@hookimpl
def mmbench_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="hemis", description="HeMIS: per-modality encoders, mean + variance over available modalities",
            build="mmbench_hemis.models:HeMIS", config=HeMISConfig, kinds=ALL_KINDS, min_modalities=2,
            # MMANet's NYUv2 / Cityscapes comparison: encoders unified as ResNet-50
            recipe=ProfileRecipe("full", "segmentation", backbone="resnet50"),
            family="incomplete",
            paper="Havaei et al., HeMIS: Hetero-Modal Image Segmentation, MICCAI 2016",
            repo="https://github.com/ReubenDo/U-HVED (U-HeMIS reimplementation)",
            deviations=(Deviation(
                aspect="training on RGB-D", tasks=("seg-nyuv2", "seg-cityscapes"),
                official="MMANet's Tables 4-5 report HeMIS on NYUv2 / Cityscapes with ResNet-50 encoders; how it was "
                         "trained there is not published",
                mmbench="U-HeMIS's cross-entropy + Dice on the task recipe, no class weighting; ResNet-50 from ImageNet",
                source="MMANet paper §4; ReubenDo/U-HVED"),),
        ),
    ]
