"""The logit-KD losses against oracles written independently in NumPy (float64) from the
formulas in the official code, including the edge cases the official code produces."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmbench_kd.losses import (
    GlobalTemperature,
    batch_correlation_loss,
    class_correlation_loss,
    cosine_lambda,
    dkd_loss,
    kd_loss,
    mlkd_loss,
    standardize_logits,
)


def softmax(z: np.ndarray, t: float = 1.0) -> np.ndarray:
    e = np.exp(z / t - (z / t).max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def kl_rows(q: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Σ_j q log(q/p) per row with 0·log 0 = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(q > 0, q * (np.log(q) - np.log(p)), 0.0)
    return terms.sum(axis=1)


def oracle_kd(s, t, temp):
    return temp**2 * kl_rows(softmax(t, temp), softmax(s, temp)).mean()


def oracle_dkd(s, t, y, alpha, beta, temp):
    """TCKD on the binary split; NCKD as the exact distribution over the C-1 non-target classes."""
    batch, classes = s.shape
    ps, pt = softmax(s, temp), softmax(t, temp)
    tckd, nckd = 0.0, 0.0
    for i in range(batch):
        bs = np.array([ps[i, y[i]], 1 - ps[i, y[i]]])
        bt = np.array([pt[i, y[i]], 1 - pt[i, y[i]]])
        tckd += kl_rows(bt[None], bs[None])[0]
        others = [j for j in range(classes) if j != y[i]]
        nckd += kl_rows(softmax(t[i, others][None], temp), softmax(s[i, others][None], temp))[0]
    return temp**2 * (alpha * tckd + beta * nckd) / batch


def logits(seed: int, batch: int = 8, classes: int = 10, scale: float = 3.0):
    rng = np.random.default_rng(seed)
    s, t = rng.normal(0, scale, (batch, classes)), rng.normal(0, scale, (batch, classes))
    y = rng.integers(0, classes, batch)
    return s, t, y


@pytest.mark.parametrize("temp", [1.0, 4.0])
def test_kd_matches_formula_in_float64_and_float32(temp):
    s, t, _ = logits(0)
    expected = oracle_kd(s, t, temp)
    assert kd_loss(torch.tensor(s), torch.tensor(t), temp).item() == pytest.approx(expected, rel=1e-10)
    got32 = kd_loss(torch.tensor(s, dtype=torch.float32), torch.tensor(t, dtype=torch.float32), temp)
    assert got32.dtype == torch.float32 and got32.item() == pytest.approx(expected, rel=1e-4)


def test_kd_is_zero_for_identical_logits_and_differentiable():
    s, _, _ = logits(1)
    student = torch.tensor(s, requires_grad=True)
    assert kd_loss(student, student.detach(), 4.0).item() == pytest.approx(0.0, abs=1e-12)
    kd_loss(student, torch.zeros_like(student), 4.0).backward()
    assert student.grad is not None and torch.isfinite(student.grad).all()


@pytest.mark.parametrize("temp,alpha,beta", [(4.0, 1.0, 8.0), (1.0, 1.0, 0.5), (2.0, 9.0, 72.0)])
def test_dkd_matches_exact_non_target_renormalisation(temp, alpha, beta):
    s, t, y = logits(2)
    expected = oracle_dkd(s, t, y, alpha, beta, temp)
    got = dkd_loss(torch.tensor(s), torch.tensor(t), torch.tensor(y), alpha, beta, temp)
    assert got.item() == pytest.approx(expected, rel=1e-8)


def test_dkd_binary_classification_has_no_nckd():
    s, t, y = logits(3, classes=2)
    args = (torch.tensor(s), torch.tensor(t), torch.tensor(y))
    assert dkd_loss(*args, alpha=0.0, beta=1.0, temperature=4.0).item() == 0.0
    assert dkd_loss(*args, alpha=1.0, beta=8.0, temperature=4.0).item() == pytest.approx(
        oracle_dkd(s, t, y, 1.0, 0.0, 4.0), rel=1e-8)


def test_dkd_gradient_through_a_learnable_temperature_is_finite_and_exact():
    """The masked target entry of NCKD's teacher is exactly 0: from probabilities (the official
    ``kl_div``) its gradient is 0·(−∞) = NaN and CTKD's θ becomes NaN; mmbench's is the derivative
    of the exact loss (checked by central differences of the NumPy oracle, float64)."""
    s, t, y = logits(5)
    temp = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    loss = dkd_loss(torch.tensor(s), torch.tensor(t), torch.tensor(y), 1.0, 8.0, temp)
    loss.backward()
    h = 1e-5
    numeric = (oracle_dkd(s, t, y, 1.0, 8.0, 3.0 + h) - oracle_dkd(s, t, y, 1.0, 8.0, 3.0 - h)) / (2 * h)
    assert loss.item() == pytest.approx(oracle_dkd(s, t, y, 1.0, 8.0, 3.0), rel=1e-10)
    assert temp.grad.item() == pytest.approx(numeric, rel=1e-6)

    official_temp = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)  # the official NCKD form
    shift = 1000.0 * torch.nn.functional.one_hot(torch.tensor(y), s.shape[1])
    log_student = torch.log_softmax(torch.tensor(s) / official_temp - shift, dim=1)
    teacher = torch.softmax(torch.tensor(t) / official_temp - shift, dim=1)
    torch.nn.functional.kl_div(log_student, teacher, reduction="sum").backward()
    assert torch.isnan(official_temp.grad)


def test_dkd_without_epsilon_overflows_like_the_official_code():
    """No epsilon in the TCKD log: a student that puts all mass off-target gives inf, as upstream."""
    student = torch.tensor([[-200.0, 200.0, 0.0]])
    teacher = torch.tensor([[1.0, 0.0, 0.0]])
    assert not torch.isfinite(dkd_loss(student, teacher, torch.tensor([0]), 1.0, 8.0, 1.0))


def test_standardize_logits_is_the_bessel_corrected_zscore():
    s, _, _ = logits(4, classes=10)
    z = standardize_logits(torch.tensor(s)).numpy()
    expected = (s - s.mean(1, keepdims=True)) / (1e-7 + s.std(1, ddof=1, keepdims=True))
    np.testing.assert_allclose(z, expected, rtol=1e-12)
    np.testing.assert_allclose(z.std(1), math.sqrt(9 / 10), rtol=1e-6)  # population std √((C-1)/C)
    x = torch.tensor(s, requires_grad=True)
    (standardize_logits(x) ** 3).sum().backward()  # gradients flow through mean and std
    assert x.grad.abs().sum() > 0


def oracle_mlkd(sw, tw, ss, ts, y, t0, w_ce, w_kd):
    temps = (t0, 3.0, 5.0, 2.0, 6.0)
    qt = softmax(tw)
    conf = qt.max(1)
    mu_m = (conf <= np.percentile(conf, 50)).mean()
    cls = qt.sum(0)
    mu_n = (cls <= np.percentile(cls, 50)).mean()

    def ce(z):
        return -np.log(softmax(z)[np.arange(len(y)), y]).mean()

    def cc(a, b, t):
        pa, pb = softmax(a, t), softmax(b, t)
        return ((pb.T @ pb - pa.T @ pa) ** 2).sum() / a.shape[1]

    def bc(a, b, t):
        pa, pb = softmax(a, t), softmax(b, t)
        return ((pb @ pb.T - pa @ pa.T) ** 2).sum() / a.shape[0]

    kd = w_kd * mu_m * sum(oracle_kd(sw, tw, t) for t in temps) + w_kd * (
        oracle_kd(ss, ts, t0) + oracle_kd(ss, ts, 3) + oracle_kd(ss, ts, 5) + oracle_kd(sw, tw, 2) + oracle_kd(sw, tw, 6))
    return {
        "ce": w_ce * (ce(sw) + ce(ss)), "kd": kd,
        "cc": w_kd * mu_n * sum(cc(sw, tw, t) for t in temps),
        "bc": w_kd * mu_m * sum(bc(sw, tw, t) for t in temps),
    }


@pytest.mark.parametrize("batch,classes", [(8, 10), (7, 5)])
def test_mlkd_matches_the_official_terms(batch, classes):
    sw, tw, y = logits(5, batch, classes)
    ss, ts, _ = logits(6, batch, classes)
    expected = oracle_mlkd(sw, tw, ss, ts, y, 4.0, 0.1, 0.9)
    got = mlkd_loss(*(torch.tensor(a) for a in (sw, tw, ss, ts, y)), temperature=4.0, ce_weight=0.1, kd_weight=0.9)
    assert set(got) == {"ce", "kd", "cc", "bc"}
    for name, value in expected.items():
        assert got[name].dim() == 0
        assert got[name].item() == pytest.approx(value, rel=1e-9), name


def test_mlkd_masks_only_scale_the_terms_and_ties_are_kept():
    """With ties at the median every sample is kept (≤), so μ = 1 instead of ½."""
    sw, _, y = logits(7, 6, 4)
    tw = np.tile(np.array([[2.0, 0.0, 0.0, 0.0]]), (6, 1))  # identical teacher rows: all confidences tie
    zeros = torch.zeros(6, 4, dtype=torch.float64)
    got = mlkd_loss(torch.tensor(sw), torch.tensor(tw), zeros, zeros, torch.tensor(y), 4.0, 0.0, 1.0)
    temps = (4.0, 3.0, 5.0, 2.0, 6.0)
    bc = sum(oracle_bc for oracle_bc in (batch_correlation_loss(torch.tensor(sw), torch.tensor(tw), t) for t in temps))
    assert got["bc"].item() == pytest.approx(float(bc), rel=1e-12)  # μ_m = 1
    # class masses: [6·p0, 6·p1, 6·p1, 6·p1] → median = 6·p1, three of four ≤ median → μ_n = 0.75
    cc = sum(class_correlation_loss(torch.tensor(sw), torch.tensor(tw), t) for t in temps)
    assert got["cc"].item() == pytest.approx(0.75 * float(cc), rel=1e-12)


def test_mlkd_logit_standardisation_touches_only_kd():
    sw, tw, y = logits(8)
    ss, ts, _ = logits(9)
    args = [torch.tensor(a) for a in (sw, tw, ss, ts, y)]
    plain = mlkd_loss(*args, 2.0, 0.1, 9.0)
    ls = mlkd_loss(*args, 2.0, 0.1, 9.0, logit_standardization=True)
    for name in ("ce", "cc", "bc"):
        assert ls[name].item() == pytest.approx(plain[name].item(), rel=1e-12)
    std = [standardize_logits(a) for a in args[:4]]
    assert ls["kd"].item() == pytest.approx(mlkd_loss(*std, args[4], 2.0, 0.1, 9.0)["kd"].item(), rel=1e-12)


def test_global_temperature_initial_value_and_reversed_gradient():
    module = GlobalTemperature()
    assert module.theta.shape == (1,) and module.theta.item() == 1.0
    temp = module(-0.5)
    assert temp.dim() == 0 and temp.item() == pytest.approx(1 + 20 / (1 + math.exp(-1)), rel=1e-7)
    assert temp.item() == pytest.approx(15.6211716, rel=1e-7)
    s, t, _ = logits(10)
    kd_loss(torch.tensor(s, dtype=torch.float32), torch.tensor(t, dtype=torch.float32), temp).backward()
    reference = torch.ones(1, requires_grad=True)  # the same graph without the GRL
    plain_temp = (1 + 20 * torch.sigmoid(reference)).squeeze(0)
    kd_loss(torch.tensor(s, dtype=torch.float32), torch.tensor(t, dtype=torch.float32), plain_temp).backward()
    assert module.theta.grad.item() == pytest.approx(-0.5 * reference.grad.item(), rel=1e-5)
    assert reference.grad.item() != 0


def test_cosine_lambda_schedule_matches_ctkd_scripts():
    values = [cosine_lambda(e, 10) for e in range(1, 13)]
    expected = [-0.02447, -0.09549, -0.20611, -0.34549, -0.5, -0.65451, -0.79389, -0.90451, -0.97553, -1, -1, -1]
    np.testing.assert_allclose(values, expected, atol=1e-5)
    with pytest.raises(ValueError):
        cosine_lambda(1, 0)
