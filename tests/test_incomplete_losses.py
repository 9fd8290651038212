"""Shared incomplete-multimodal pieces against oracles: RFNet / mmFormer losses, HeMIS moments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmbench.models.losses import dice_loss, softmax_weighted_loss
from mmbench_hemis.fusion import MomentFusion
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


def oracle_niftynet_dice(p, t, eps=1e-5):
    """NiftyNet's ``dice`` on one batch element (voxels × classes), averaged over the batch."""
    losses = []
    for pb, tb in zip(p, t, strict=True):
        pv, tv = pb.reshape(pb.shape[0], -1).T, tb.reshape(tb.shape[0], -1).T
        score = 2 * (pv * tv).sum(axis=0) / ((pv**2).sum(axis=0) + tv.sum(axis=0) + eps)
        losses.append(1 - score.mean())
    return float(np.mean(losses))


def test_hemis_segmentation_loss_is_ce_plus_niftynet_dice():
    logits, labels = reference_volume()
    labels[1][labels[1] == 3] = 2  # a class absent from one sample: its per-sample Dice is 0
    p = torch.softmax(logits, 1).numpy()
    t = np.moveaxis(np.eye(4)[labels.numpy()], -1, 1)
    expected = torch.nn.functional.cross_entropy(logits, labels).item() + oracle_niftynet_dice(p, t)
    assert segmentation_loss(logits, labels, 4).item() == pytest.approx(expected, rel=1e-12)
    assert dice_loss(logits, labels, 4).item() != pytest.approx(oracle_niftynet_dice(p, t), rel=1e-3)
    x = logits.clone().requires_grad_(True)
    segmentation_loss(x, labels, 4).backward()
    h, index = 1e-6, (1, 2, 0, 1, 3)
    bumped = [logits.clone(), logits.clone()]
    bumped[0][index] += h
    bumped[1][index] -= h
    numeric = (segmentation_loss(bumped[0], labels, 4) - segmentation_loss(bumped[1], labels, 4)).item() / (2 * h)
    assert x.grad[index].item() == pytest.approx(numeric, rel=1e-5)


def test_moments_are_mean_and_population_variance_of_available_modalities():
    torch.manual_seed(0)
    feats = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    avail = torch.tensor([[1.0, 0.0, 1.0, 1.0]], dtype=torch.float64)
    present = feats[avail[0].bool()]
    population, summed = MomentFusion(population=True), MomentFusion(population=False)
    out = population([f[None] for f in feats], avail)[0]
    assert torch.allclose(out, torch.cat([present.mean(0), present.var(0, unbiased=False)]))
    quirk = summed([f[None] for f in feats], avail)[0]
    mean = present.mean(0)
    expected = sum((feats[k] * avail[0, k] - mean) ** 2 for k in range(4)) / 3
    assert torch.allclose(quirk, torch.cat([mean, expected]))
    one = torch.tensor([[0.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    single = population([f[None] for f in feats], one)[0]
    assert torch.equal(single[3:], torch.zeros_like(single[3:])) and torch.allclose(single[:3], feats[1])


def test_surf_mv_variance_is_zero_for_a_sample_with_one_modality():
    """The official ``SURF_MV.forward`` per sample: Σ over all three modalities of
    (p_k·x_k − mean)² / n, then ``x_var[p_sum == 1] = 0`` (NumPy, float64)."""
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(3, 4, 2, 2, 2))  # modality, sample, C, H, W
    masks = np.array([[1, 0, 0], [0, 1, 1], [1, 1, 1], [0, 0, 1]], dtype=float)
    n = masks.sum(axis=1)[:, None, None, None]
    masked = feats * masks.T[:, :, None, None, None]
    mean = masked.sum(axis=0) / n
    variance = ((masked - mean) ** 2).sum(axis=0) / n
    variance[n[:, 0, 0, 0] == 1] = 0
    got = MomentFusion(population=False)([torch.tensor(f) for f in feats], torch.tensor(masks))
    np.testing.assert_allclose(got.numpy(), np.concatenate([mean, variance], axis=1), rtol=1e-12)
    assert got[[0, 3], 2:].abs().max() == 0 and got[1, 2:].abs().max() > 0


def test_u_hemis_sampling_sizes_are_uniform_and_shared_by_the_batch():
    torch.manual_seed(0)
    masks = [u_hemis_mask(5, 3) for _ in range(3000)]
    assert all(bool((m == m[0]).all()) for m in masks[:50])
    sizes = np.bincount([int(m[0].sum()) for m in masks], minlength=4)[1:] / len(masks)
    np.testing.assert_allclose(sizes, [1 / 3] * 3, atol=0.04)


def test_rfnet_terms_and_region_fusion_switch():
    from mmbench.models import ce_dice
    from mmbench_rfnet.losses import rfnet_loss

    logits, labels = reference_volume()
    terms = rfnet_loss(logits, [logits, logits * 2], [logits], labels, 4, fuse_on=False)
    assert terms["fuse"].item() == 0.0
    assert terms["sep"].item() == pytest.approx((ce_dice(logits, labels, 4) + ce_dice(logits * 2, labels, 4)).item())
    on = rfnet_loss(logits, [logits], [torch.softmax(logits, dim=1)], labels, 4, fuse_on=True)
    assert on["fuse"].item() == pytest.approx(ce_dice(logits, labels, 4).item())
    assert on["prm"].item() == pytest.approx(ce_dice(logits, labels, 4).item())  # region maps are probabilities


def test_region_aware_fusion_uses_region_normalised_averages():
    from mmbench_rfnet.models import RegionAwareFusion

    torch.manual_seed(0)
    rfm = RegionAwareFusion(modalities=2, channels=4, regions=3).eval()
    stacked = torch.randn(1, 2, 4, 3, 3)
    region_logits = torch.randn(1, 3, 3, 3)
    captured = {}
    rfm.weights.register_forward_hook(lambda mod, inp, out: captured.update(vector=inp[0]))
    out = rfm(stacked, region_logits)
    assert out.shape == (1, 4, 3, 3)
    prm = torch.softmax(region_logits, dim=1)
    r, k = 1, 0
    expected = (stacked[0, k] * prm[0, r]).mean(dim=(1, 2)) / (prm[0, r].mean() + 1e-7)
    vector = captured["vector"].reshape(3, 2 * 4 + 1)
    assert torch.allclose(vector[r, :4], expected, atol=1e-6) and vector[r, -1] == pytest.approx(prm[0, r].mean().item() + 1e-7)


def test_mmformer_official_token_reshape_groups_consecutive_tokens():
    from mmbench_mmformer.models import inter_tokens_to_map

    k, h, w, d = 2, 2, 3, 4
    tokens = torch.arange(k * h * w, dtype=torch.float64)[None, :, None].expand(1, k * h * w, d)  # value = token index
    official = inter_tokens_to_map(tokens, k, h, w, "official")
    assert official.shape == (1, k * d, h, w)
    for v in range(h * w):
        channels = official[0, :, v // w, v % w]
        assert channels.tolist() == [float(k * v + j) for j in range(k) for _ in range(d)]  # tokens kv .. kv+k-1
    aligned = inter_tokens_to_map(tokens, k, h, w, "aligned")
    for v in range(h * w):
        assert aligned[0, :, v // w, v % w].tolist() == [float(j * h * w + v) for j in range(k) for _ in range(d)]


def test_mmformer_loss_terms():
    from mmbench_mmformer.losses import mmformer_loss
    from mmbench_rfnet.losses import ce_dice

    logits, labels = reference_volume()
    probabilities = torch.softmax(logits, dim=1)  # deep supervision arrives as probabilities
    terms = mmformer_loss(logits, [logits], [probabilities, probabilities], labels, 4)
    single = ce_dice(logits, labels, 4).item()
    assert terms["fuse"].item() == pytest.approx(single) and terms["deep"].item() == pytest.approx(2 * single)


def bilinear_align_corners(x, size):
    """NumPy bilinear resize of [C, H, W] with align_corners=True: output i samples i·(in−1)/(out−1)."""
    def axis_weights(n_in, n_out):
        src = np.arange(n_out) * (n_in - 1) / (n_out - 1)
        low = np.minimum(np.floor(src).astype(int), n_in - 2)
        frac = src - low
        w = np.zeros((n_out, n_in))
        w[np.arange(n_out), low] += 1 - frac
        w[np.arange(n_out), low + 1] += frac
        return w
    wh, ww = axis_weights(x.shape[1], size[0]), axis_weights(x.shape[2], size[1])
    return np.einsum("hi,cij,wj->chw", wh, x, ww)


@pytest.mark.parametrize("method", ["rfnet", "mmformer"])
def test_deep_supervision_upsamples_probabilities_with_aligned_corners(registry, method):
    """RFNet / mmFormer's deep supervision: softmax at the output's own scale, then upsampled with
    ``align_corners=True`` — the criterion never sees logits interpolated before the softmax."""
    import dataclasses

    from mmbench.engine import RunContext

    task = registry.task("synth-rgbd-seg")
    ctx = RunContext(task=task, dataset=registry.dataset_of(task),
                     recipe=dataclasses.replace(task.recipe("smoke"), width=8), profile="smoke", seed=0,
                     device=torch.device("cpu"), modalities=("rgb", "depth"),
                     shapes={"rgb": (3, 32, 32), "depth": (1, 32, 32)})
    spec = registry.method(method)
    module = spec.builder()(task, spec.config(), ctx)
    torch.manual_seed(0)
    coarse = torch.randn(2, task.num_classes, 4, 4, dtype=torch.float64)
    got = module.upsample_probabilities(coarse)
    p = torch.softmax(coarse, dim=1).numpy()
    expected = np.stack([bilinear_align_corners(sample, (32, 32)) for sample in p])
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)
    batch = {"rgb": torch.randn(2, 3, 32, 32), "depth": torch.randn(2, 1, 32, 32)}
    features = module.encode(batch, ("rgb", "depth"))
    _, auxiliary = module.decode(features, torch.ones(2, 2))
    for output in auxiliary:  # probabilities at the input size
        assert output.shape[-2:] == (32, 32)
        torch.testing.assert_close(output.sum(dim=1), torch.ones(2, 32, 32))
