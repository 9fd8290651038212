"""mmbench_rfnet — RFNet (built-in plugin).

Ding, Yu, Yang & Yang, *RFNet: Region-aware Fusion Network for Incomplete Multi-modal Brain
Tumor Segmentation*, ICCV 2021; official code dyh127/RFNet. Designed for 3D brain MRI; here the
2D version applied to RGB-D(-IR) segmentation, as the MMANet paper uses it as a baseline (what was
adapted is listed in :class:`mmbench_rfnet.models.RFNet`). Losses in :mod:`mmbench_rfnet.losses`.

    mmbench run --method rfnet --task synth-rgbd-seg
"""

from __future__ import annotations

from dataclasses import dataclass

from mmbench import Deviation, MethodSpec, ProfileRecipe, hookimpl

__version__ = "0.2.0"


@dataclass(frozen=True)
class RFNetConfig:
    region_fusion_start: int | None = None
    """0-based epoch from which the fused prediction's loss counts (official ``job.sh``: 20 of 300
    epochs); default min(20, epochs // 15)."""
    backbone: str | None = None

    def __post_init__(self) -> None:
        if self.region_fusion_start is not None and self.region_fusion_start < 0:
            raise ValueError("region_fusion_start must be >= 0")


@hookimpl
def mmbench_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="rfnet", description="RFNet: region-aware fusion guided by region maps + per-modality decoder regulariser",
            build="mmbench_rfnet.models:RFNet", config=RFNetConfig, kinds=frozenset({"segmentation"}), min_modalities=2,
            # MMANet's NYUv2 / Cityscapes comparison: encoders unified as ResNet-50
            recipe=ProfileRecipe("full", "segmentation", backbone="resnet50"),
            family="incomplete", paper="Ding et al., RFNet, ICCV 2021", repo="https://github.com/dyh127/RFNet",
            deviations=(Deviation(
                aspect="training on RGB-D", tasks=("seg-nyuv2", "seg-cityscapes"),
                official="MMANet's Tables 4-5 report RFNet on NYUv2 / Cityscapes with ResNet-50 encoders; how it was "
                         "trained there (loss weights, batch: its region-aware fusion needs ~7.7 GiB of activations "
                         "per 640x480 sample at 40 classes) is not published",
                mmbench="RFNet's own BraTS losses (weighted CE + Dice, region maps) on the task recipe, no class "
                        "weighting; ResNet-50 from ImageNet",
                source="MMANet paper §4; dyh127/RFNet"),),
        ),
    ]
