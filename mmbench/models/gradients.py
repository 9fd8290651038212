"""Gradient scaling: identity in the forward pass, gradient × ``factor`` in the backward pass.

The gradient reversal layer of domain-adversarial training (Ganin et al., JMLR 2016) is
``scale_gradient(x, -lambda_)``; CTKD's temperature module multiplies by its (negative) λ."""

from __future__ import annotations

import torch


class _ScaleGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, factor: float) -> torch.Tensor:  # type: ignore[override]
        ctx.factor = factor
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return grad * ctx.factor, None


def scale_gradient(x: torch.Tensor, factor: float) -> torch.Tensor:
    """``x`` unchanged; the gradient flowing back through it is multiplied by ``factor``."""
    return _ScaleGradient.apply(x, float(factor))
