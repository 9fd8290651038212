"""MMANet's losses as pure functions (Wei, Luo & Luo, *MMANet: Margin-aware Distillation and
Modality-aware Regularization for Incomplete Multimodal Learning*, CVPR 2023; official code
shicaiwei123/MMANet-CVPR2023, ``classification/loss/kd/mad.py`` and ``segmentation/loss/kd/mad.py``).

Margin-aware distillation (MAD) matches the student's and the teacher's sample-relation matrices,
weighting each sample by the entropy of the *teacher's* prediction (samples near the decision
margin weigh more). The official code's quirks are kept and named below.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from mmbench.models import downsample_target


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
             ignore_index: int = -100, *, official: bool = True) -> Tensor:
    """MAR (classification, Eq. 14) over the weak combinations ``weak_combinations`` ``[K, M]``
    (the weak combination and each of its single modalities) for per-sample modality masks
    ``sample_masks`` ``[B, M]`` (0/1) and the auxiliary head's logits ``[B, C]``.

    ``official=True`` (default): what ``train_knowledge_distill_patch_feature_auxi_weak``
    (``classification/lib/model_develop.py``) computes. Its mask ``p`` is ``[B, M, 1, 1, 1]``, so
    the selection ``(p == weak_k).all(dim=1)`` is ``[B, 1, 1, 1]`` and multiplying it with the
    ``[B]`` per-sample cross-entropy broadcasts to ``[B, 1, 1, B]``: the term is
    L_k = n_k · Σ_i CE_i / B, n_k the number of samples whose mask is weak_k — every sample's
    auxiliary output gets gradient, scaled by how many weak samples the batch holds.

    ``official=False``: the paper's evident intent, Σ_k Σ_i CE_i · [mask_i = weak_k] / B — the
    cross-entropy of the samples whose mask is each weak combination only, over the full batch
    size. At B = 64 the two differ by about two orders of magnitude."""
    per_sample = F.cross_entropy(aux_logits, target, reduction="none", ignore_index=ignore_index)
    matches = (sample_masks[:, None, :] == weak_combinations[None, :, :].to(sample_masks)).all(dim=2)  # [B, K]
    matches = matches.to(per_sample.dtype)
    if official:
        return matches.sum() * per_sample.sum() / aux_logits.shape[0]
    return (per_sample[:, None] * matches).sum() / aux_logits.shape[0]


def mar_loss_dense(aux_outputs: Sequence[Tensor], target: Tensor, sample_masks: Tensor, weak_combination: Tensor,
                   class_weights: Tensor | None = None, ignore_index: int = -100, *, official: bool = True) -> Tensor:
    """MAR (segmentation) for the weak combination ``weak_combination`` ``[M]``, the auxiliary
    decoder's outputs ``aux_outputs`` (one per supervised scale, ``[B, K, h, w]``; the target is
    resized to each by nearest neighbour, as ESANet's downsampled labels) and ``target``
    ``[B, H, W]``.

    ``official=True`` (default): ``train_one_epoch`` of ``segmentation/train_missing_mmanet.py``
    — the samples whose mask equals the weak combination are selected and ESANet's training
    cross-entropy (``CrossEntropyLoss2d``: class-weighted, normalised by the summed weights of the
    selected samples' valid pixels) is summed over the scales; a batch without such a sample gives
    the constant 1e-16. ``class_weights`` ``[K]`` are the task's training class weights (ESANet:
    median frequency), ``None`` for unweighted.

    ``official=False``: the classification form applied per sample — each weak sample's mean
    cross-entropy over its valid pixels (first scale, unweighted), summed and divided by the full
    batch size."""
    selected = (sample_masks == weak_combination.to(sample_masks)).all(dim=1)
    first = aux_outputs[0]
    if not official:
        scaled = downsample_target(target, first.shape[-2:])
        per_pixel = F.cross_entropy(first, scaled, reduction="none", ignore_index=ignore_index)
        valid = (scaled != ignore_index).flatten(1).sum(dim=1).clamp(min=1)
        per_sample = per_pixel.flatten(1).sum(dim=1) / valid
        return (per_sample * selected.to(per_sample.dtype)).sum() / first.shape[0]
    if not bool(selected.any()):
        return first.new_full((), 1e-16)
    total = first.new_zeros(())
    for output in aux_outputs:
        scaled = downsample_target(target, output.shape[-2:])[selected]
        losses = F.cross_entropy(output[selected], scaled, weight=class_weights, ignore_index=ignore_index, reduction="sum")
        valid = scaled[scaled != ignore_index]
        weight_sum = class_weights[valid].sum() if class_weights is not None else valid.new_tensor(valid.numel())
        total = total + losses / weight_sum.to(losses.dtype).clamp(min=1e-12)
    return total

