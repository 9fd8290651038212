"""mmbench_mmformer — mmFormer (built-in plugin).

Zhang et al., *mmFormer: Multimodal Medical Transformer for Incomplete Multimodal Learning of
Brain Tumor Segmentation*, MICCAI 2022; official code YaoZhang93/mmFormer. Designed for 3D brain
MRI; here the 2D version applied to RGB-D(-IR) segmentation (adaptations listed in
:class:`mmbench_mmformer.models.MMFormer`). Loss in :mod:`mmbench_mmformer.losses`.

    mmbench run --method mmformer --task synth-rgbd-seg
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mmbench import Deviation, MethodSpec, ProfileRecipe, hookimpl

__version__ = "0.2.0"


@dataclass(frozen=True)
class MMFormerConfig:
    token_layout: Literal["official", "aligned"] = "official"
    """How the inter-modal tokens return to a map: ``official`` keeps mmFormer's ``.view`` (which
    groups consecutive tokens, scrambling positions), ``aligned`` the paper's per-position layout."""
    heads: int = 8
    backbone: str | None = None

    def __post_init__(self) -> None:
        if self.heads < 1:
            raise ValueError("heads must be >= 1")


@hookimpl
def mmbench_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="mmformer",
            description="mmFormer: intra- and inter-modal transformers over masked modality tokens + regularisers",
            build="mmbench_mmformer.models:MMFormer", config=MMFormerConfig, kinds=frozenset({"segmentation"}), min_modalities=2,
            # MMANet's NYUv2 / Cityscapes comparison: encoders unified as ResNet-50
            recipe=ProfileRecipe("full", "segmentation", backbone="resnet50"),
            family="incomplete", paper="Zhang et al., mmFormer, MICCAI 2022", repo="https://github.com/YaoZhang93/mmFormer",
            deviations=(Deviation(
                aspect="training on RGB-D", tasks=("seg-nyuv2", "seg-cityscapes"),
                official="MMANet's Tables 4-5 report mmFormer on NYUv2 / Cityscapes with ResNet-50 encoders; the "
                         "2D adaptation of its 3D transformer and how it was trained there are not published",
                mmbench="mmFormer's own losses on 2D ResNet-50 features (token layout: the official reshape) and the "
                        "task recipe, no class weighting",
                source="MMANet paper §4; YaoZhang93/mmFormer"),),
        ),
    ]
