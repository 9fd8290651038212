"""MMANet's MAD / MAR and OS-MD's MMD against NumPy oracles of the official computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmbench_mmanet.losses import mad_loss, mad_loss_dense, mar_loss, weak_combination_distance
from mmbench_osmd.losses import mmd_loss, output_kl


def softmax(z, axis=1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def row_normalise(m):
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)


def entropy_weights(logits):
    q = softmax(logits)
    h = -(q * np.log(q)).sum(1)
    return h / h.sum()


def oracle_mad(fs, ft, logits, columns=True):
    fs, ft = fs.reshape(len(fs), -1), ft.reshape(len(ft), -1)
    e = (row_normalise(fs @ fs.T) - row_normalise(ft @ ft.T)) ** 2
    w = entropy_weights(logits)
    return (e * (w[None, :] if columns else w[:, None])).sum()


def reference_draws():
    """The reference's recipe: fs, ft ~ randn(4, 8, 2, 2), logits ~ randn(4, 2), seed 0, float64."""
    torch.manual_seed(0)
    fs = torch.randn(4, 8, 2, 2, dtype=torch.float64)
    ft = torch.randn(4, 8, 2, 2, dtype=torch.float64)
    return fs, ft, torch.randn(4, 2, dtype=torch.float64)


def test_mad_weights_columns_like_the_official_code():
    fs, ft, logits = reference_draws()
    got = mad_loss(fs, ft, logits).item()
    assert got == pytest.approx(oracle_mad(fs.numpy(), ft.numpy(), logits.numpy()), rel=1e-12)
    assert got != pytest.approx(oracle_mad(fs.numpy(), ft.numpy(), logits.numpy(), columns=False), rel=1e-6)


def test_mad_edge_cases():
    fs, ft, logits = reference_draws()
    assert mad_loss(fs, fs.clone(), logits).item() == 0.0  # identical features
    assert mad_loss(fs[:1], ft[:1], logits[:1]).item() == 0.0  # one sample: both relations are [[1]]
    x = fs.clone().requires_grad_(True)
    mad_loss(x, ft, logits).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def oracle_mad_dense(fs, ft, logits):
    """Pixels as samples; relation against each half of the pixels, normalised per half; row weights."""
    b, c, h, w = fs.shape
    rows_s = fs.transpose(0, 2, 3, 1).reshape(-1, c)
    rows_t = ft.transpose(0, 2, 3, 1).reshape(-1, c)
    k = logits.shape[1]
    pooled = logits.reshape(b, k, h, logits.shape[2] // h, w, logits.shape[3] // w).mean(axis=(3, 5))
    weights = entropy_weights(pooled.transpose(0, 2, 3, 1).reshape(-1, k))
    half = len(rows_s) // 2
    per_pixel = np.zeros(len(rows_s))
    for part in (slice(0, half), slice(half, None)):
        per_pixel += ((row_normalise(rows_s @ rows_s[part].T) - row_normalise(rows_t @ rows_t[part].T)) ** 2).sum(1)
    return (per_pixel * weights).sum()


def test_mad_dense_matches_pixel_oracle():
    rng = np.random.default_rng(0)
    fs, ft = rng.normal(size=(2, 5, 3, 4)), rng.normal(size=(2, 5, 3, 4))
    logits = rng.normal(size=(2, 7, 12, 16))
    got = mad_loss_dense(torch.tensor(fs), torch.tensor(ft), torch.tensor(logits)).item()
    assert got == pytest.approx(oracle_mad_dense(fs, ft, logits), rel=1e-10)
    big = torch.tensor(rng.normal(size=(1, 3, 60, 80)))
    pooled = torch.nn.functional.adaptive_avg_pool2d(big, (30, 40))
    logits = torch.tensor(rng.normal(size=(1, 4, 60, 80)))
    other = torch.tensor(rng.normal(size=(1, 3, 60, 80)))
    other_pooled = torch.nn.functional.adaptive_avg_pool2d(other, (30, 40))
    assert mad_loss_dense(big, other, logits).item() == pytest.approx(
        mad_loss_dense(pooled, other_pooled, logits).item(), rel=1e-10)  # > 30 rows: pooled to 30 x 40 first


def test_mar_divides_by_the_full_batch():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.0]])
    target = torch.tensor([0, 0, 1, 1])
    masks = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 0]])
    weak = torch.tensor([[1, 1, 0], [1, 0, 0], [0, 1, 0]])
    ce = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    assert mar_loss(logits, target, masks, weak).item() == pytest.approx(((ce[0] + ce[1] + ce[3]) / 4).item())
    assert mar_loss(logits, target, masks, torch.tensor([[0, 0, 1]])).item() == 0.0


def test_weak_combination_distance_is_kl_of_softmaxed_histograms():
    full = torch.tensor([0, 1, 1, 1])
    subset = torch.tensor([0, 0, 0, 1])
    v_full, v_sub = np.array([0.25, 0.75]), np.array([0.75, 0.25])
    p, q = softmax(v_sub[None])[0], softmax(v_full[None])[0]
    assert weak_combination_distance(full, subset, 2).item() == pytest.approx((p * np.log(p / q)).sum(), rel=1e-10)
    assert weak_combination_distance(full, full, 2).item() == pytest.approx(0.0, abs=1e-15)


def oracle_mmd(x, y, mul=2.0, num=5):
    total = np.concatenate([x, y])
    d = ((total[:, None] - total[None]) ** 2).sum(-1)
    n = len(total)
    bw = d.sum() / (n * n - n) / mul ** (num // 2)
    k = sum(np.exp(-d / (bw * mul**i)) for i in range(num))
    m = len(x)
    return (k[:m, :m] + k[m:, m:] - k[:m, m:] - k[m:, :m]).mean()


def test_mmd_matches_the_dan_kernel_oracle():
    torch.manual_seed(0)
    x = torch.randn(8, 16, dtype=torch.float64)
    y = torch.randn(8, 16, dtype=torch.float64) + 0.5
    assert mmd_loss(x, y).item() == pytest.approx(oracle_mmd(x.numpy(), y.numpy()), rel=1e-12)
    assert mmd_loss(x, x.clone()).item() == pytest.approx(0.0, abs=1e-12)
    assert mmd_loss(x[:1], y[:1]).item() == pytest.approx(oracle_mmd(x[:1].numpy(), y[:1].numpy()), rel=1e-12)
    with pytest.raises(ValueError, match="as many source as target rows"):
        mmd_loss(x, y[:3])


def test_mmd_bandwidth_carries_no_gradient():
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    y = torch.randn(6, 4, dtype=torch.float64)
    mmd_loss(x, y).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_output_kl_is_zero_for_equal_logits_and_dense_ok():
    z = torch.randn(2, 5, 3, 3)
    assert output_kl(z, z.clone(), 2.0).item() == pytest.approx(0.0, abs=1e-7)
    s = torch.randn(4, 3, dtype=torch.float64)
    t = torch.randn(4, 3, dtype=torch.float64)
    q, p = softmax(t.numpy() / 2), softmax(s.numpy() / 2)
    assert output_kl(s, t, 2.0).item() == pytest.approx(4 * (q * np.log(q / p)).sum(1).mean(), rel=1e-10)


def test_gradnorm_pulls_weights_towards_balanced_gradients():
    from mmbench_osmd.losses import gradnorm_loss

    weights = torch.ones(2, requires_grad=True)
    norms = torch.tensor([4.0, 1.0])
    ratios = torch.tensor([1.0, 1.0])
    loss = gradnorm_loss(weights, norms, ratios)
    assert loss.item() == pytest.approx(abs(4 - 2.5) + abs(1 - 2.5))  # target: mean weighted norm 2.5
    loss.backward()
    assert weights.grad[0] > 0 > weights.grad[1]  # shrink the dominant task, grow the other
    slower = gradnorm_loss(torch.ones(2), torch.tensor([1.0, 1.0]), torch.tensor([2.0, 1.0]))
    target = torch.tensor([1.0, 1.0]).mean() * (torch.tensor([2.0, 1.0]) / 1.5) ** 1.5
    assert slower.item() == pytest.approx((torch.ones(2) - target).abs().sum().item(), rel=1e-6)


def test_osmd_deploys_the_ordinary_modality_and_names_the_privileged(registry):
    from mmbench.plan import plan_run

    plan = plan_run(registry, "osmd", "synth-rgbdi-pad", 0, {"ordinary": "depth"})
    assert plan.subsets == (("depth",),) and plan.trained_modalities == ("rgb", "depth", "ir")
    with pytest.raises(Exception, match="ordinary='thermal' is not one of"):
        plan_run(registry, "osmd", "synth-rgbdi-pad", 0, {"ordinary": "thermal"})
