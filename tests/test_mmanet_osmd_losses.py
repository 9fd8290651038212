"""MMANet's MAD / MAR and OS-MD's MMD against NumPy oracles of the official computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmbench_mmanet.losses import (
    mad_loss,
    mad_loss_dense,
    mar_loss,
    mar_loss_dense,
    weak_combination_distance,
)
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


MAR_LOGITS = [[2.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.0]]
MAR_TARGET = [0, 0, 1, 1]
MAR_MASKS = [[1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 0]]
MAR_WEAK = [[1, 1, 0], [1, 0, 0], [0, 1, 0]]


def official_mar(logits, target, masks, weak):
    """The official loop's statements, literally: ``p`` is ``[B, 3, 1, 1, 1]``, each weak
    combination is unsqueezed three times, and ``auxi_ce_batch * weak_index`` broadcasts."""
    p = masks.float().reshape(*masks.shape, 1, 1, 1)
    total = 0.0
    for combination in weak:
        ce_batch = torch.nn.functional.cross_entropy(logits, target, reduction="none")
        weak_index = (p == combination.unsqueeze(1).unsqueeze(2).unsqueeze(3).float()).all(dim=1)
        assert (ce_batch * weak_index).shape == (len(target), 1, 1, len(target))
        total = total + torch.sum(ce_batch * weak_index) / p.shape[0]
    return total


def test_mar_official_broadcast_value_and_gradient():
    target, masks, weak = torch.tensor(MAR_TARGET), torch.tensor(MAR_MASKS), torch.tensor(MAR_WEAK)
    ours = torch.tensor(MAR_LOGITS, dtype=torch.float64, requires_grad=True)
    theirs = torch.tensor(MAR_LOGITS, dtype=torch.float64, requires_grad=True)
    value = mar_loss(ours, target, masks, weak)
    expected = official_mar(theirs, target, masks, weak)
    value.backward()
    expected.backward()
    ce = torch.nn.functional.cross_entropy(theirs.detach(), target, reduction="none")
    assert value.item() == pytest.approx(expected.item(), rel=1e-12)
    assert value.item() == pytest.approx((3 * ce.sum() / 4).item(), rel=1e-12)  # n_k = 2, 1, 0
    torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-12, atol=0)
    assert bool((ours.grad[2] != 0).any())  # a sample of no weak combination gets gradient too


def test_mar_per_sample_form_behind_official_false():
    logits, target = torch.tensor(MAR_LOGITS), torch.tensor(MAR_TARGET)
    masks, weak = torch.tensor(MAR_MASKS), torch.tensor(MAR_WEAK)
    ce = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    assert mar_loss(logits, target, masks, weak, official=False).item() == pytest.approx(((ce[0] + ce[1] + ce[3]) / 4).item())
    assert mar_loss(logits, target, masks, torch.tensor([[0, 0, 1]]), official=False).item() == 0.0
    assert mar_loss(logits, target, masks, torch.tensor([[0, 0, 1]])).item() == 0.0


def test_dense_mar_official_selects_the_weak_samples_and_normalises_by_their_weighted_pixels():
    """ESANet's ``CrossEntropyLoss2d`` on the selected samples, summed over scales (NumPy)."""
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(3, 4, 4, 4))
    coarse = rng.normal(size=(3, 4, 2, 2))
    target = rng.integers(0, 4, size=(3, 4, 4))
    target[1, 0, :] = 255
    masks = torch.tensor([[0, 1], [0, 1], [1, 1]])
    weights = np.array([0.5, 1.0, 2.0, 4.0])

    def esanet_ce(out, tgt):
        log_p = out - np.log(np.exp(out).sum(axis=1, keepdims=True))
        valid = tgt != 255
        safe = np.where(valid, tgt, 0)
        picked = np.take_along_axis(log_p, safe[:, None], axis=1)[:, 0]
        return float((-(weights[safe] * picked) * valid).sum() / (weights[safe] * valid).sum())

    expected = esanet_ce(logits[:2], target[:2]) + esanet_ce(coarse[:2], target[:2, ::2, ::2])
    outputs = [torch.tensor(logits, requires_grad=True), torch.tensor(coarse, requires_grad=True)]
    got = mar_loss_dense(outputs, torch.tensor(target), masks, torch.tensor([0, 1]), torch.tensor(weights), 255)
    assert got.item() == pytest.approx(expected, rel=1e-12)
    got.backward()
    assert outputs[0].grad[2].abs().max() == 0 and outputs[0].grad[0].abs().max() > 0  # only selected samples
    none = mar_loss_dense([outputs[0]], torch.tensor(target), masks, torch.tensor([1, 0]), ignore_index=255)
    assert none.item() == pytest.approx(1e-16) and not none.requires_grad


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


def test_cross_translation_follows_the_remnant():
    """``Cross_Translation.forward`` of the MMANet repository, statement by statement, with the
    same weights (plain PyTorch), value and gradient; ``ctn=paper`` is Eq. 8."""
    from torch.nn import functional as F

    from mmbench_osmd.models import CrossTranslation

    torch.manual_seed(0)
    block = CrossTranslation(8).double()
    t1, t2, t12 = block.t1[0], block.t2[0], block.fuse[0]
    assert t1.bias is not None and t12.in_channels == 8  # conv with bias; C-channel joint map
    s = torch.randn(2, 8, 3, 3, dtype=torch.float64, requires_grad=True)
    o = torch.randn(2, 8, 3, 3, dtype=torch.float64, requires_grad=True)
    fused, loss = block(s, o)
    (fused.sum() + loss).backward()
    ours = s.grad.clone(), o.grad.clone()
    s.grad, o.grad = None, None

    m1_m1, m2_m2 = F.relu(t1(s)), F.relu(t2(o))
    m2_m1, m1_m2 = F.relu(t1(o)), F.relu(t2(s))
    joint_1 = torch.cat(((m1_m1 + m2_m1) / 2, (m2_m2 + m1_m2) / 2), dim=1)
    joint_2, joint_3 = torch.cat((m1_m1, m1_m2), dim=1), torch.cat((m2_m1, m2_m2), dim=1)
    expected_fused, expected_loss = F.relu(t12(joint_1)), F.mse_loss(joint_2, joint_3)
    torch.testing.assert_close(fused, expected_fused, rtol=1e-12, atol=0)
    assert loss.item() == pytest.approx(expected_loss.item(), rel=1e-12)
    (expected_fused.sum() + expected_loss).backward()
    torch.testing.assert_close(ours[0], s.grad, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(ours[1], o.grad, rtol=1e-12, atol=1e-15)

    paper = CrossTranslation(8, "paper").double().eval()
    _, paper_loss = paper(s, o)
    s1, s2, o1, o2 = paper.t1(s), paper.t2(s), paper.t1(o), paper.t2(o)
    assert paper_loss.item() == pytest.approx((F.mse_loss(s1, o1) + F.mse_loss(s2, o2)).item(), rel=1e-12)
    assert isinstance(paper.t1[1], torch.nn.BatchNorm2d)
