"""MMANet's losses as pure functions (Wei, Luo & Luo, *MMANet: Margin-aware Distillation and
Modality-aware Regularization for Incomplete Multimodal Learning*, CVPR 2023; official code
shicaiwei123/MMANet-CVPR2023, ``classification/loss/kd/mad.py`` and ``segmentation/loss/kd/mad.py``).

Margin-aware distillation (MAD) matches the student's and the teacher's sample-relation matrices,
weighting each sample by the entropy of the *teacher's* prediction (samples near the decision
margin weigh more). The official code's quirks are kept and named below.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _entropy_weights(teacher_logits: Tensor) -> Tensor:
    """H_i / Σ_j H_j with H the entropy of softmax(teacher logits), no epsilon (as the code)."""
    prob = F.softmax(teacher_logits, dim=1)
    entropy = -(prob * torch.log(prob)).sum(dim=1)
    return entropy / entropy.sum()


def mad_loss(student_features: Tensor, teacher_features: Tensor, teacher_logits: Tensor) -> Tensor:
    """Classification MAD: Σ_ij (N^s_ij − N^t_ij)² · w_j. Under ``torchrun`` the relation
    matrices relate the samples of each rank's shard only (per rank, as the official
    DataParallel code relates each GPU's chunk).

    Features ``[B, ...]`` are flattened per sample; G = F Fᵀ (B × B) is L2-normalised per row
    (N), and w = teacher-entropy weights. As in the official code the ``[B, B]`` error matrix is
    multiplied by the ``[B]`` weight vector by broadcasting, i.e. **column** j is weighted by
    sample j (the segmentation variant weights rows). A plain sum, no batch mean."""
    fs, ft = student_features.flatten(1), teacher_features.flatten(1)
    ns = F.normalize(fs @ fs.t(), p=2, dim=1)
    nt = F.normalize(ft @ ft.t(), p=2, dim=1)
    return ((ns - nt) ** 2 * _entropy_weights(teacher_logits)[None, :]).sum()


def mad_loss_dense(
    student_features: Tensor, teacher_features: Tensor, teacher_logits: Tensor,
    pool_size: tuple[int, int] = (30, 40),
) -> Tensor:
    """Segmentation MAD on one feature level: every pixel is a sample.

    Features ``[B, C, H, W]`` are average-pooled to ``pool_size`` when H exceeds its height (the
    official code's 30 × 40 for 480 × 640 inputs), the teacher's full-resolution logits
    ``[B, K, H', W']`` are average-pooled to the features' size; rows are the B·H·W pixels. The
    relation matrix is computed against the first and the second half of the pixels separately,
    each half L2-normalised per row on its own (as the official code does to save memory); a
    pixel's error is the sum over both halves, weighted by its teacher-entropy weight (**row**
    weighting). The teacher features are detached."""
    teacher_features = teacher_features.detach()
    if student_features.shape[-2] > pool_size[0]:
        student_features = F.adaptive_avg_pool2d(student_features, pool_size)
        teacher_features = F.adaptive_avg_pool2d(teacher_features, pool_size)
    height, width = student_features.shape[-2:]
    logits = F.adaptive_avg_pool2d(teacher_logits.detach(), (height, width))
    fs = student_features.permute(0, 2, 3, 1).reshape(-1, student_features.shape[1])
    ft = teacher_features.permute(0, 2, 3, 1).reshape(-1, teacher_features.shape[1])
    weights = _entropy_weights(logits.permute(0, 2, 3, 1).reshape(-1, logits.shape[1]))
    half = fs.shape[0] // 2
    per_pixel = fs.new_zeros(fs.shape[0])
    for part in (slice(0, half), slice(half, None)):
        ns = F.normalize(fs @ fs[part].t(), p=2, dim=1)
        nt = F.normalize(ft @ ft[part].t(), p=2, dim=1)
        per_pixel = per_pixel + ((ns - nt) ** 2).sum(dim=1)
    return (per_pixel * weights).sum()


def weak_combination_distance(full_predictions: Tensor, subset_predictions: Tensor, num_classes: int) -> Tensor:
    """MAR mining (classification): the distance between the predicted-label histograms of the full
    modality set and of one combination, as the official code computes it —
    ``kl_div(log_softmax(v_full), softmax(v_subset), batchmean)`` over the *normalised histograms*
    v (softmax applied on top of probability vectors: a quirk we keep), i.e.
    KL(softmax(v_subset) ‖ softmax(v_full))."""
    def histogram(pred: Tensor) -> Tensor:
        counts = torch.bincount(pred.flatten(), minlength=num_classes).double()
        return (counts / counts.sum().clamp(min=1))[None]

    v_full, v_subset = histogram(full_predictions), histogram(subset_predictions)
    return F.kl_div(F.log_softmax(v_full, dim=1), F.softmax(v_subset, dim=1), reduction="batchmean")


def mar_loss(aux_logits: Tensor, target: Tensor, sample_masks: Tensor, weak_combinations: Tensor,
             ignore_index: int = -100) -> Tensor:
    """MAR (classification): Σ_k Σ_i CE_i · [mask_i = weak_k] / B — the auxiliary head's
    per-sample cross-entropy on the samples whose modality mask equals each weak combination,
    divided by the **full** batch size (official normaliser). ``sample_masks`` ``[B, M]``,
    ``weak_combinations`` ``[K, M]`` (0/1)."""
    per_sample = F.cross_entropy(aux_logits, target, reduction="none", ignore_index=ignore_index)
    if per_sample.dim() > 1:  # dense targets: a sample's loss is its mean over valid pixels
        valid = (target != ignore_index).flatten(1).sum(dim=1).clamp(min=1)
        per_sample = per_sample.flatten(1).sum(dim=1) / valid
    matches = (sample_masks[:, None, :] == weak_combinations[None, :, :].to(sample_masks)).all(dim=2)  # [B, K]
    return (per_sample[:, None] * matches.to(per_sample.dtype)).sum() / aux_logits.shape[0]
