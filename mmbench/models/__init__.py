"""Shared model building blocks: encoders, fusion blocks, decoder, the multi-encoder fusion net.

Method plugins build from these instead of carrying their own copies.
"""

from mmbench.models.backbones import MLPEncoder, ResNetEncoder, build_encoder
from mmbench.models.decoders import SegmentationDecoder
from mmbench.models.esanet import ESANetwork
from mmbench.models.fusion import SEBlock, fuse_features
from mmbench.models.fusion_net import (
    FusionNet,
    modality_dropout_mask,
    subset_mask,
    uniform_subset_mask,
)
from mmbench.models.gradients import scale_gradient
from mmbench.models.losses import task_loss

__all__ = [
    "ESANetwork",
    "FusionNet",
    "MLPEncoder",
    "ResNetEncoder",
    "SEBlock",
    "SegmentationDecoder",
    "build_encoder",
    "fuse_features",
    "modality_dropout_mask",
    "scale_gradient",
    "subset_mask",
    "task_loss",
    "uniform_subset_mask",
]
