"""Shared model building blocks: encoders, fusion blocks, decoders, losses, presence masks, the
multi-encoder fusion network and the multi-encoder segmentation skeleton.

Method plugins build from these instead of carrying their own copies. Every public name is
listed in ``__all__``; the submodules are internal.
"""

from mmbench.metrics import meter_for
from mmbench.models.backbones import (
    MLPEncoder,
    NonBottleneck1D,
    ResNetEncoder,
    ResNetTrunk,
    build_encoder,
)
from mmbench.models.decoders import SegmentationDecoder, SegmentationOutputs
from mmbench.models.esanet import DECODERS, ESANetwork
from mmbench.models.esanet_decoder import (
    CONTEXT_MODULES,
    ESANetDecoder,
    ESANetHead,
    ESANetProjection,
    segmentation_head,
)
from mmbench.models.fusion import SEBlock, fuse_features, masked_feature, present_count
from mmbench.models.fusion_net import (
    FusionNet,
    FusionRule,
    modality_dropout_mask,
    predict_each_subset,
    subset_mask,
    uniform_subset_mask,
)
from mmbench.models.gradients import scale_gradient
from mmbench.models.incomplete import MultiEncoderSegmenter, conv, masked_stack
from mmbench.models.losses import (
    ce_dice,
    deep_supervision_loss,
    dice_loss,
    downsample_target,
    softmax_weighted_loss,
    task_loss,
)

__all__ = [
    "CONTEXT_MODULES",
    "DECODERS",
    "ESANetDecoder",
    "ESANetHead",
    "ESANetProjection",
    "ESANetwork",
    "FusionNet",
    "FusionRule",
    "MLPEncoder",
    "MultiEncoderSegmenter",
    "NonBottleneck1D",
    "ResNetEncoder",
    "ResNetTrunk",
    "SEBlock",
    "SegmentationDecoder",
    "SegmentationOutputs",
    "build_encoder",
    "ce_dice",
    "conv",
    "deep_supervision_loss",
    "dice_loss",
    "downsample_target",
    "fuse_features",
    "masked_feature",
    "masked_stack",
    "meter_for",
    "modality_dropout_mask",
    "predict_each_subset",
    "present_count",
    "scale_gradient",
    "segmentation_head",
    "softmax_weighted_loss",
    "subset_mask",
    "task_loss",
    "uniform_subset_mask",
]
