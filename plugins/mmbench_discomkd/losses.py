"""The DisCoM-KD loss terms as pure functions (Ienco & Fraga Dantas, BMVC 2024;
official code: tanodino/CMKD_Disentangle, ``main_DisCoM-KD.py``).

Every function takes one tensor per modality (in task order) and reduces like the official code:
the per-modality outputs are concatenated along the batch and one mean cross-entropy (or cosine)
is taken over all rows — the paper writes sums over modalities of per-modality losses, which
differ from these means by a constant factor.

The modality targets of the adversarial and modality losses follow the official code by
default (``official=True``): it passes a *float* target tensor of the logits' shape — all ones
for the first modality's rows, all zeros for the others — so PyTorch reads it as class
probabilities: a first-modality row costs −Σ_j log p_j and every other row costs 0. That is not
the modality classification the paper describes; ``official=False`` gives the paper's intent
(integer modality labels). With M modalities the official target generalises literally (ones
for modality 0, zeros otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from mmbench.models import scale_gradient


def grad_reverse(x: Tensor, lambda_: float = 1.0) -> Tensor:
    """Gradient reversal layer (Ganin et al., JMLR 2016): identity forward, gradient × −λ backward.
    The official code keeps λ = 1 for the whole training."""
    return scale_gradient(x, -lambda_)


def classification_loss(logits: Sequence[Tensor], targets: Sequence[Tensor]) -> Tensor:
    """L_CL: each modality's task classifier on [z_inv ‖ z_inf] against its labels."""
    return F.cross_entropy(torch.cat(list(logits)), torch.cat(list(targets)))


def _modality_targets(logits: Sequence[Tensor], official: bool) -> Tensor:
    if official:
        return torch.cat([torch.full_like(z, 1.0 if m == 0 else 0.0) for m, z in enumerate(logits)])
    return torch.cat([torch.full((z.shape[0],), m, dtype=torch.long, device=z.device) for m, z in enumerate(logits)])


def adversarial_loss(discriminator_logits: Sequence[Tensor], official: bool = True) -> Tensor:
    """L_ADV: the modality discriminator on the (gradient-reversed) invariant embeddings; one
    ``[B_m, M]`` logit tensor per modality. See the module docstring for ``official``."""
    return F.cross_entropy(torch.cat(list(discriminator_logits)), _modality_targets(discriminator_logits, official))


def modality_loss(informative_logits: Sequence[Tensor], irrelevant_logits: Sequence[Tensor], official: bool = True) -> Tensor:
    """L_MOD: the modality classifiers of the informative and the irrelevant embeddings. As the
    official code, each modality's two outputs are stacked along the batch, then all modalities
    are concatenated and one mean cross-entropy is taken."""
    per_modality = [torch.cat([inf, irr]) for inf, irr in zip(informative_logits, irrelevant_logits, strict=True)]
    return F.cross_entropy(torch.cat(per_modality), _modality_targets(per_modality, official))


def auxiliary_loss(invariant_logits: Sequence[Tensor], informative_logits: Sequence[Tensor],
                   targets: Sequence[Tensor]) -> Tensor:
    """L_AUX: the shared auxiliary task classifier on the informative and on the invariant
    embeddings of every modality (two mean cross-entropies, summed)."""
    labels = torch.cat(list(targets))
    return (F.cross_entropy(torch.cat(list(informative_logits)), labels)
            + F.cross_entropy(torch.cat(list(invariant_logits)), labels))


def orthogonality_loss(invariant: Sequence[Tensor], informative: Sequence[Tensor], irrelevant: Sequence[Tensor]) -> Tensor:
    """L_⊥: mean cosine(z_inf, z_irr) + mean cosine(z_inf, z_inv) over the rows of all modalities.
    Signed cosine, no absolute value or square (as the official code; the embeddings are post-ReLU
    there, so the cosines are non-negative anyway). No term between z_inv and z_irr."""
    inf = F.normalize(torch.cat(list(informative)), dim=1)
    irr = F.normalize(torch.cat(list(irrelevant)), dim=1)
    inv = F.normalize(torch.cat(list(invariant)), dim=1)
    return (inf * irr).sum(dim=1).mean() + (inf * inv).sum(dim=1).mean()
