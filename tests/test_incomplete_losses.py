"""Shared incomplete-multimodal pieces against oracles: RFNet / mmFormer losses, HeMIS moments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmbench.models.fusion import fuse_features
from mmbench.models.losses import dice_loss, softmax_weighted_loss
from mmbench_hemis.losses import segmentation_loss
from mmbench_hemis.models import u_hemis_mask


def reference_volume():
    """The reference recipe: B=2, 4 classes, 4x4x4 volume, seed 0, float64."""
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 4, 4, 4, dtype=torch.float64)
    labels = torch.randint(0, 4, (2, 4, 4, 4))
    return logits, labels


def oracle_weighted_ce(p, t):
    """p, t: [B, C, ...] probabilities and one-hot."""
    axes = tuple(range(2, p.ndim))
    weight = 1 - t.sum(axis=axes) / t.sum(axis=(1, *axes))[:, None]
    weight = weight.reshape(*weight.shape, *([1] * len(axes)))
    return (-(weight * t * np.log(np.clip(p, 0.005, 1))).sum(axis=1)).mean()


def oracle_dice(p, t, eps=1e-7):
    axes = (0, *range(2, p.ndim))
    dice = 2 * (p * t).sum(axis=axes) / (p.sum(axis=axes) + t.sum(axis=axes) + eps)
    return 1 - dice.mean()


def test_rfnet_losses_match_the_criterions_oracle():
    logits, labels = reference_volume()
    p = torch.softmax(logits, 1).numpy()
    t = np.moveaxis(np.eye(4)[labels.numpy()], -1, 1)
    assert softmax_weighted_loss(logits, labels, 4).item() == pytest.approx(oracle_weighted_ce(p, t), rel=1e-12)
    assert dice_loss(logits, labels, 4).item() == pytest.approx(oracle_dice(p, t), rel=1e-12)


def test_ignored_positions_are_left_out():
    logits, labels = reference_volume()
    ignored = labels.clone()
    ignored[:, 0] = 255
    keep = labels[:, 1:]
    assert dice_loss(logits, ignored, 4, ignore_index=255).item() == pytest.approx(
        dice_loss(logits[:, :, 1:], keep, 4).item(), rel=1e-12)
    assert softmax_weighted_loss(logits, ignored, 4, ignore_index=255).item() == pytest.approx(
        softmax_weighted_loss(logits[:, :, 1:], keep, 4).item(), rel=1e-12)
    perfect = torch.nn.functional.one_hot(keep, 4).movedim(-1, 1).double() * 50
    assert dice_loss(perfect, keep, 4).item() == pytest.approx(0.0, abs=1e-8)


def test_hemis_segmentation_loss_is_ce_plus_dice():
    logits, labels = reference_volume()
    expected = torch.nn.functional.cross_entropy(logits, labels) + dice_loss(logits, labels, 4)
    assert segmentation_loss(logits, labels, 4).item() == pytest.approx(expected.item(), rel=1e-12)


def test_moments_are_mean_and_population_variance_of_available_modalities():
    torch.manual_seed(0)
    feats = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    avail = torch.tensor([[1.0, 0.0, 1.0, 1.0]], dtype=torch.float64)
    present = feats[avail[0].bool()]
    out = fuse_features([f[None] for f in feats], avail, "moments")[0]
    assert torch.allclose(out, torch.cat([present.mean(0), present.var(0, unbiased=False)]))
    quirk = fuse_features([f[None] for f in feats], avail, "moments-all")[0]
    mean = present.mean(0)
    expected = sum((feats[k] * avail[0, k] - mean) ** 2 for k in range(4)) / 3
    assert torch.allclose(quirk, torch.cat([mean, expected]))
    one = torch.tensor([[0.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    single = fuse_features([f[None] for f in feats], one, "moments")[0]
    assert torch.equal(single[3:], torch.zeros_like(single[3:])) and torch.allclose(single[:3], feats[1])


def test_u_hemis_sampling_sizes_are_uniform_and_shared_by_the_batch():
    torch.manual_seed(0)
    masks = [u_hemis_mask(5, 3) for _ in range(3000)]
    assert all(bool((m == m[0]).all()) for m in masks[:50])
    sizes = np.bincount([int(m[0].sum()) for m in masks], minlength=4)[1:] / len(masks)
    np.testing.assert_allclose(sizes, [1 / 3] * 3, atol=0.04)
