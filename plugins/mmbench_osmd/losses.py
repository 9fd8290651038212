"""OS-MD's losses as pure functions (Wei, Luo & Luo, *One-stage Modality Distillation for
Incomplete Multimodal Learning*). No official training code exists; the multi-kernel MMD is the
one in the same author's MMANet repository (``classification/loss/mmd_loss.py``), the rest follows
the paper's equations."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def gaussian_kernel_sum(source: Tensor, target: Tensor, kernel_mul: float = 2.0, kernel_num: int = 5) -> Tensor:
    """Σ_i exp(−‖x − y‖² / (bw · mul^i)) over all rows of [source; target] (the DAN kernel).

    bw = mean off-diagonal squared distance, divided by mul^(num // 2), computed without gradient
    (the official code uses ``.data``)."""
    total = torch.cat([source.flatten(1), target.flatten(1)])
    # ‖a‖² + ‖b‖² − 2a·b: one [2N, 2N] Gram matrix instead of the official [2N, 2N, D] differences
    norms = total.pow(2).sum(dim=1)
    diffs = (norms[:, None] + norms[None, :] - 2.0 * total @ total.T).clamp(min=0.0)
    n = total.shape[0]
    bandwidth = diffs.detach().sum() / (n * n - n)
    bandwidth = bandwidth / kernel_mul ** (kernel_num // 2)
    return sum(torch.exp(-diffs / (bandwidth * kernel_mul**i)) for i in range(kernel_num))  # type: ignore[return-value]


def mmd_loss(source: Tensor, target: Tensor) -> Tensor:
    """Multi-kernel Gaussian MMD² (kernel multiplier 2, 5 kernels): mean(K_XX + K_YY − K_XY − K_YX).

    ``source`` and ``target`` are ``[N, D]`` (any trailing shape is flattened) with the same N, as
    the official code assumes."""
    if source.shape[0] != target.shape[0]:
        raise ValueError(f"mmd_loss needs as many source as target rows, got {source.shape[0]} and {target.shape[0]}")
    n = source.shape[0]
    kernels = gaussian_kernel_sum(source, target)
    xx, yy = kernels[:n, :n], kernels[n:, n:]
    xy, yx = kernels[:n, n:], kernels[n:, :n]
    return (xx + yy - xy - yx).mean()


def output_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0) -> Tensor:
    """The output-level alignment of OS-MD's joint distribution alignment: T²·KL(softmax(z_p/T) ‖
    softmax(z_o/T)) from the privileged (teacher) branch to the ordinary one, averaged over samples
    (and pixels for dense logits). The teacher side is detached."""
    log_student = F.log_softmax(student_logits / temperature, dim=1)
    teacher = F.softmax(teacher_logits.detach() / temperature, dim=1)
    per_position = F.kl_div(log_student, teacher, reduction="none").sum(dim=1)
    return per_position.mean() * temperature**2


def reconstruction_loss(translated: Tensor, target: Tensor) -> Tensor:
    """Cross-translation reconstruction: mean squared error between a modality mapped into the
    shared space and its counterpart."""
    return F.mse_loss(translated, target)


def gradnorm_loss(weights: Tensor, gradient_norms: Tensor, loss_ratios: Tensor, asymmetry: float = 1.5) -> Tensor:
    """GradNorm (Chen et al., ICML 2018): Σ_i |w_i·‖∇_W L_i‖ − Ḡ·r_i^a| with the target
    Ḡ·r_i^a held constant; r_i = (L_i(t)/L_i(0)) / mean_j(L_j(t)/L_j(0)). ``gradient_norms`` are
    the unweighted ‖∇_W L_i‖ (detached), so the loss reaches only the task ``weights``."""
    weighted = weights * gradient_norms
    target = (weighted.mean() * (loss_ratios / loss_ratios.mean()) ** asymmetry).detach()
    return (weighted - target).abs().sum()
