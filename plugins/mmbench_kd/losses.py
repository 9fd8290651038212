"""The logit-distillation losses as pure functions (a stable public API).

Each function reproduces what the official code computes — including its quirks, which are
named in the docstrings — so a number from mmbench can be compared with one from the official
repositories:

* KD: Hinton et al., *Distilling the Knowledge in a Neural Network*, 2015; reference
  implementation ``kd_loss`` of megvii-research/mdistiller.
* DKD: Zhao et al., *Decoupled Knowledge Distillation*, CVPR 2022 (megvii-research/mdistiller).
* CTKD: Li et al., *Curriculum Temperature for Knowledge Distillation*, AAAI 2023
  (zhengli97/CTKD, ``models/temp_global.py``).
* MLKD: Jin et al., *Multi-Level Logit Distillation*, CVPR 2023
  (Jin-Ying/Multi-Level-Logit-Distillation, ``mdistiller/distillers/KD_ours.py``).
* LSKD: Sun et al., *Logit Standardization in Knowledge Distillation*, CVPR 2024
  (sunshangquan/logit-standardization-KD).

Inputs are ``[B, C]`` logits; every loss is a scalar tensor, differentiable, in the dtype of its
inputs (float32 or float64). Teacher logits are used as given: detach them (or compute them under
``no_grad``) as the official trainers do.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmbench.models import scale_gradient

MLKD_TEMPERATURES = (3.0, 5.0, 2.0, 6.0)
"""The temperatures MLKD adds to its base temperature T0: the list is (T0, 3, 5, 2, 6)."""


def _kl_terms(log_student: Tensor, log_teacher: Tensor) -> Tensor:
    """Per-entry p_t·(log p_t − log p_s) from the teacher's *log*-probabilities.

    The official code passes probabilities to ``kl_div``; its value is the same (0·log 0 = 0), but
    where a teacher probability underflows to exactly 0 (DKD's −1000 target mask, a confident
    teacher) the gradient of p·log p through that entry is 0·(−∞) = NaN, and with a learnable
    temperature (CTKD) the NaN reaches θ. From log-probabilities such an entry has value 0 and
    gradient exactly 0."""
    return F.kl_div(log_student, log_teacher, reduction="none", log_target=True)


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float | Tensor) -> Tensor:
    """T² · batch-mean KL(softmax(z_t/T) ‖ softmax(z_s/T)) — mdistiller's ``kd_loss``.

    ``temperature`` may be a tensor (CTKD's learnable temperature); its gradient then includes
    the derivative of the T² prefactor, as in the CTKD code."""
    log_student = F.log_softmax(student_logits / temperature, dim=1)
    log_teacher = F.log_softmax(teacher_logits / temperature, dim=1)
    return _kl_terms(log_student, log_teacher).sum(dim=1).mean() * temperature**2


def dkd_loss(
    student_logits: Tensor, teacher_logits: Tensor, target: Tensor, alpha: float, beta: float,
    temperature: float | Tensor,
) -> Tensor:
    """α·TCKD + β·NCKD of Decoupled KD, as mdistiller's ``dkd_loss`` (no CE, no warm-up).

    * TCKD: KL between the binary (target, non-target) distributions at temperature T, times T²,
      summed and divided by B. The log of the student's binary distribution is a plain ``log``
      (no epsilon, as in the official code).
    * NCKD: KL between the distributions over the non-target classes. As the official code does,
      1000 is subtracted from the target logit (after dividing by T) instead of removing it, so the
      target probability is exp(-1000) ≈ 0. NCKD is *not* weighted by (1 − p_t), which is what DKD
      decouples. With two classes NCKD is exactly 0 (mdistiller issue #60). The masked teacher
      entry is exactly 0 after ``softmax``; the KL is taken from log-probabilities
      (:func:`_kl_terms`) so that entry contributes zero value *and* zero gradient — with the
      official ``kl_div`` on probabilities, CTKD's learnable temperature gets a NaN gradient
      through it on current PyTorch and ``ctkd --set base=dkd`` could not train.
    """
    batch = student_logits.shape[0]
    gt = F.one_hot(target, student_logits.shape[1]).to(torch.bool)
    p_student = F.softmax(student_logits / temperature, dim=1)
    p_teacher = F.softmax(teacher_logits / temperature, dim=1)

    def binary(p: Tensor) -> Tensor:
        return torch.stack([(p * gt).sum(dim=1), (p * ~gt).sum(dim=1)], dim=1)

    tckd = F.kl_div(torch.log(binary(p_student)), binary(p_teacher), reduction="sum") * temperature**2 / batch
    shift = 1000.0 * gt.to(student_logits.dtype)
    log_student_nt = F.log_softmax(student_logits / temperature - shift, dim=1)
    log_teacher_nt = F.log_softmax(teacher_logits / temperature - shift, dim=1)
    nckd = _kl_terms(log_student_nt, log_teacher_nt).sum() * temperature**2 / batch
    return alpha * tckd + beta * nckd


def standardize_logits(logits: Tensor) -> Tensor:
    """LSKD's z-score per sample over the classes: (z − mean) / (1e-7 + std).

    As the official ``normalize``: the std is Bessel-corrected (``torch.std`` default, divides by
    C − 1) and the epsilon is added to the std, not to the variance; gradients flow through mean
    and std."""
    mean = logits.mean(dim=-1, keepdim=True)
    std = logits.std(dim=-1, keepdim=True)
    return (logits - mean) / (1e-7 + std)


# -------------------------------------------------------------------------------------------------
# MLKD


def _probs(logits: Tensor, temperature: float) -> Tensor:
    return F.softmax(logits / temperature, dim=1)


def class_correlation_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """MLKD's class level: (1/C)·‖P_tᵀP_t − P_sᵀP_s‖²_F with P = softmax(z/T) (no T² factor)."""
    p_s, p_t = _probs(student_logits, temperature), _probs(teacher_logits, temperature)
    return ((p_t.t() @ p_t - p_s.t() @ p_s) ** 2).sum() / student_logits.shape[1]


def batch_correlation_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """MLKD's batch level: (1/B)·‖P_t P_tᵀ − P_s P_sᵀ‖²_F with P = softmax(z/T) (no T² factor)."""
    p_s, p_t = _probs(student_logits, temperature), _probs(teacher_logits, temperature)
    return ((p_t @ p_t.t() - p_s @ p_s.t()) ** 2).sum() / student_logits.shape[0]


def _median_mask_mean(values: Tensor) -> Tensor:
    """mean([v ≤ median(v)]) with the median as ``np.percentile(v, 50)`` (linear interpolation)."""
    values = values.detach()
    return (values <= torch.quantile(values, 0.5)).to(values.dtype).mean()


def mlkd_loss(
    student_weak: Tensor, teacher_weak: Tensor, student_strong: Tensor, teacher_strong: Tensor, target: Tensor,
    temperature: float, ce_weight: float, kd_weight: float, *, logit_standardization: bool = False,
) -> dict[str, Tensor]:
    """The four terms the official MLKD distiller (``KD_ours``) returns: ``ce``, ``kd``, ``cc``, ``bc``.

    With the temperature list 𝒯 = (T0, 3, 5, 2, 6), T0 = ``temperature``:

    * ``ce`` = w_ce·[CE(z_s^w, y) + CE(z_s^s, y)];
    * ``kd`` = w_kd·μ_m·Σ_𝒯 KD_T(z_s^w, z_t^w) + w_kd·[KD_T0, KD_3, KD_5 on the strong view +
      KD_2, KD_6 on the **weak** view] — the official "strong" sum uses the weak logits at T = 2 and
      6 (a copy-paste slip we keep);
    * ``cc`` = w_kd·μ_n·Σ_𝒯 CC_T(z_s^w, z_t^w) (class level, weak view only);
    * ``bc`` = w_kd·μ_m·Σ_𝒯 BC_T(z_s^w, z_t^w) (batch level, weak view only; uses the instance
      mask's mean).

    The confidence masks keep the *low*-confidence half (teacher max-probability ≤ its median;
    class mass ≤ its median), but the official code reduces every term to a scalar before
    multiplying by the mask, so each mask acts only through its mean μ (½ for an even count without
    ties, more with ties). The strong-view class/batch terms the official code computes and
    discards are not computed. ``logit_standardization`` (LSKD) standardises the logits of the KD
    terms only; CC, BC and the masks use raw logits, as in the LSKD repository.
    """
    temperatures = (float(temperature), *MLKD_TEMPERATURES)
    with torch.no_grad():
        teacher_prob = F.softmax(teacher_weak, dim=1)
        mu_instance = _median_mask_mean(teacher_prob.max(dim=1).values)
        mu_class = _median_mask_mean(teacher_prob.sum(dim=0))
    kd_s_w, kd_t_w, kd_s_s, kd_t_s = student_weak, teacher_weak, student_strong, teacher_strong
    if logit_standardization:
        kd_s_w, kd_t_w, kd_s_s, kd_t_s = map(standardize_logits, (kd_s_w, kd_t_w, kd_s_s, kd_t_s))
    t0 = temperatures[0]
    weak_kd = sum(kd_loss(kd_s_w, kd_t_w, t) for t in temperatures)
    strong_kd = (
        kd_loss(kd_s_s, kd_t_s, t0) + kd_loss(kd_s_s, kd_t_s, 3.0) + kd_loss(kd_s_s, kd_t_s, 5.0)
        + kd_loss(kd_s_w, kd_t_w, 2.0) + kd_loss(kd_s_w, kd_t_w, 6.0)
    )
    return {
        "ce": ce_weight * (F.cross_entropy(student_weak, target) + F.cross_entropy(student_strong, target)),
        "kd": kd_weight * mu_instance * weak_kd + kd_weight * strong_kd,
        "cc": kd_weight * mu_class * sum(class_correlation_loss(student_weak, teacher_weak, t) for t in temperatures),
        "bc": kd_weight * mu_instance * sum(batch_correlation_loss(student_weak, teacher_weak, t) for t in temperatures),
    }


# -------------------------------------------------------------------------------------------------
# CTKD


def cosine_lambda(epoch: int, loops: int, lambda_max: float = 0.0, lambda_min: float = -1.0) -> float:
    """CTKD's ``CosineDecay`` value for a 1-based ``epoch``: λ goes from ``lambda_max`` to
    ``lambda_min`` over ``loops`` epochs and stays there (scripts: 0 → −1, loops 10 on CIFAR)."""
    if loops < 1:
        raise ValueError("loops must be >= 1")
    progress = min(epoch, loops) / loops
    return lambda_min + (lambda_max - lambda_min) * (1 + math.cos(math.pi * progress)) / 2


class GlobalTemperature(nn.Module):
    """CTKD's global learnable temperature (``Global_T``): T = t_start + t_end · σ(GRL_λ(θ)).

    ``theta`` has shape ``[1]`` and starts at 1.0, so the initial temperature is
    1 + 20·σ(1) ≈ 15.62 with the defaults. The gradient-reversal layer multiplies the gradient
    reaching θ by ``grl_lambda`` — *not* by −λ: the reversal comes from the negative λ of the
    cosine schedule (:func:`cosine_lambda`), as in the official code. ``forward`` returns the
    temperature as a 0-dim tensor (the official module returns shape ``[1]``)."""

    def __init__(self, t_start: float = 1.0, t_end: float = 20.0):
        super().__init__()
        self.t_start, self.t_end = float(t_start), float(t_end)
        self.theta = nn.Parameter(torch.ones(1))

    def forward(self, grl_lambda: float) -> Tensor:
        reversed_theta = scale_gradient(self.theta, grl_lambda)
        return (self.t_start + self.t_end * torch.sigmoid(reversed_theta)).squeeze(0)

