"""The OS-MD network: a task-shared (hallucination) encoder and the ordinary encoder on the
ordinary modality, the cross translation network at every encoder scale, and the frozen
privileged encoder that the joint adaptation network aligns the hallucination with."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from mmbench import TaskSpec
from mmbench.engine import MethodModule, RunContext
from mmbench.models import build_encoder, deep_supervision_loss, segmentation_head, task_loss
from mmbench_osmd import ordinary_modality, privileged_modalities
from mmbench_osmd.losses import gradnorm_loss, mmd_loss, output_kl, reconstruction_loss


def _block(in_channels: int, out_channels: int, batch_norm: bool) -> nn.Sequential:
    if batch_norm:
        return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels),
                             nn.ReLU(inplace=True))
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.ReLU(inplace=True))


class CrossTranslation(nn.Module):
    """CTN at one scale: transform blocks T1, T2 (1×1, C → C/2) shared by the hallucinated φ_s and
    the ordinary φ_o representation.

    ``form="remnant"`` (default) follows ``Cross_Translation`` of shicaiwei123/MMANet-CVPR2023
    (``segmentation/src/models/rgb_depth_fusion.py``, the only code of OS-MD): T1, T2 and the fusion
    are convolutions with bias + ReLU; the fused map is T12(cat((T1(φ_s) + T1(φ_o))/2, (T2(φ_s) +
    T2(φ_o))/2)) (C → C); the remnant returns joint_2 = cat(T1(φ_s), T2(φ_s)) and joint_3 =
    cat(T1(φ_o), T2(φ_o)) for its reconstruction term, MSE(joint_2, joint_3) — half of Eq. 8 (its
    training script is not in the repository).

    ``form="paper"``: §3.3 as written — transform blocks of convolution, BatchNorm and activation,
    L_CTN = MSE(T1(φ_s), T1(φ_o)) + MSE(T2(φ_s), T2(φ_o)) (Eq. 8), the four transformed maps
    concatenated (2C) and fused by a 1×1 conv-BN-ReLU (the fusion is not specified by the paper)."""

    def __init__(self, channels: int, form: str = "remnant"):
        super().__init__()
        half = max(channels // 2, 1)
        self.form = form
        paper = form == "paper"
        self.t1, self.t2 = _block(channels, half, paper), _block(channels, half, paper)
        self.fuse = _block(4 * half if paper else 2 * half, channels, paper)

    def forward(self, hallucinated: torch.Tensor, ordinary: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s1, s2, o1, o2 = self.t1(hallucinated), self.t2(hallucinated), self.t1(ordinary), self.t2(ordinary)
        if self.form == "paper":
            loss = reconstruction_loss(s1, o1) + reconstruction_loss(s2, o2)
            return self.fuse(torch.cat([s1, s2, o1, o2], dim=1)), loss
        loss = reconstruction_loss(torch.cat([s1, s2], dim=1), torch.cat([o1, o2], dim=1))
        return self.fuse(torch.cat([(s1 + o1) / 2, (s2 + o2) / 2], dim=1)), loss


class OSMD(MethodModule):
    """OS-MD (Wei, Luo & Luo), from the paper — no official training code exists (the MMANet
    repository holds only a model remnant, ``ESANet_OS`` / ``Cross_Translation``).

    L = α·L_JDN + β·L_CTN + η·L_TTL with η = 1 (paper Eq. 9):

    * L_JDN (joint adaptation): multi-kernel Gaussian MMD between the hallucinated features
      φ_s(x_o) and the frozen privileged features φ_p(x_p) (the deepest scale for classification,
      the three deepest for segmentation, as the remnant's three MMD terms) + KL(softmax(f_p) ‖
      softmax(f_s)) between the privileged model's output and an auxiliary head on φ_s;
    * L_CTN (cross translation): the reconstruction MSE of every scale's CTN (by default the
      remnant ``Cross_Translation`` of the MMANet repository, ``ctn=paper`` for §3.3 as written);
    * L_TTL: the task loss of the fused representation (segmentation with ``recipe.decoder=esanet``,
      the full profile: ESANet's decoder — the paper uses "the same model as ESANet" — and its
      deep-supervision loss summed over the four outputs).

    α and β come from GradNorm on the last stage of the task-shared encoder (asymmetry 1.5), which
    balances the two auxiliary losses; the paper also keeps them "an order of magnitude smaller
    than L_TTL", which mmbench implements by scaling α·L_JDN + β·L_CTN to ``aux_ratio`` × L_TTL
    (0.1) each step. φ_p (the protocol's TEACHER reference on the privileged modalities: a
    unimodal network, or per-modality encoders fused by sum) and the ordinary unimodal model (the
    STUDENT reference on the ordinary modality) are declared dependencies, trained before OS-MD
    (paper: φ_o and φ_p pretrained); φ_o is initialised from the latter's encoder and fine-tuned.
    Deployed on the ordinary modality only."""

    def __init__(self, task: TaskSpec, config: Any, ctx: RunContext):
        super().__init__()
        ordinary = ordinary_modality(ctx.modalities, config)
        privileged = privileged_modalities(ctx.modalities, config)
        self.task, self.config = task, config
        self.ordinary, self.privileged = ordinary, privileged
        self.dense = task.kind == "segmentation"
        arch, width = config.backbone or ctx.recipe.backbone, ctx.recipe.width
        shape = ctx.shapes[ordinary]
        self.shared = build_encoder(shape, arch, width)
        self.ordinary_encoder = build_encoder(shape, arch, width)
        self.ordinary_encoder.load_state_dict(ctx.models["ordinary"].encoder(ordinary).state_dict())
        self.teacher = ctx.models["privileged"]
        channels = self.shared.out_channels
        self.translation = nn.ModuleList(CrossTranslation(c, config.ctn) for c in channels)
        self.input_size = tuple(shape[-2:])
        if self.dense:
            recipe = ctx.recipe  # ESANet's decoder in the full profile: OS-MD's model is ESANet's
            self.head = segmentation_head(channels, task.num_classes, self.input_size, recipe.decoder, recipe.context, width)
            self.aux_head = segmentation_head(channels, task.num_classes, self.input_size, recipe.decoder,
                                              recipe.context, width)
        else:
            self.head = nn.Linear(channels[-1], task.num_classes)
            self.aux_head = nn.Linear(channels[-1], task.num_classes)
        self.task_weights = nn.Parameter(torch.ones(2))  # GradNorm's w_JDN, w_CTN
        self.register_buffer("initial_losses", torch.zeros(2))
        self.register_buffer("class_weights", ctx.class_weights, persistent=False)

    def _output(self, head: nn.Module, features: list[torch.Tensor]) -> torch.Tensor:
        if self.dense:
            return head(features, self.input_size)
        last = features[-1]
        return head(last.mean(dim=(2, 3)) if last.dim() == 4 else last)

    def _forward(self, batch: Any, sides: bool = False) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """(the outputs — logits, then with ``sides`` the deep-supervision side outputs of ESANet's
        decoder —, the hallucinated features, the CTN loss)."""
        x = batch[self.ordinary]
        hallucinated, ordinary = self.shared(x), self.ordinary_encoder(x)
        fused, ctn = [], x.new_zeros(())
        for block, s, o in zip(self.translation, hallucinated, ordinary, strict=True):
            f, loss = block(s, o)
            fused.append(f)
            ctn = ctn + loss
        if self.dense and sides:
            out = self.head.outputs(fused, self.input_size, sides=True)
            return [out.logits, *out.sides], hallucinated, ctn
        return [self._output(self.head, fused)], hallucinated, ctn

    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        with torch.no_grad():  # GradNorm renormalisation after the previous optimiser step
            self.task_weights.clamp_(min=1e-3)
            self.task_weights.mul_(2.0 / self.task_weights.sum())
        outputs, hallucinated, ctn = self._forward(batch, sides=True)
        ttl = deep_supervision_loss(self.task, outputs, batch["target"], self.class_weights) if self.dense else task_loss(
            self.task, outputs[0], batch["target"])
        privileged = self.teacher.features(batch, self.privileged)
        levels = 3 if self.dense else 1
        mmd = sum(mmd_loss(s, p) for s, p in zip(hallucinated[-levels:], privileged.scales[-levels:], strict=True))
        jdn = mmd + output_kl(self._output(self.aux_head, hallucinated), privileged.logits)
        losses = torch.stack([jdn, ctn])
        if step == 0 or not bool(self.initial_losses.any()):
            self.initial_losses.copy_(losses.detach())
        shared_weight = [p for p in self.shared.parameters() if p.dim() > 1][-1]
        norms = torch.stack([
            torch.autograd.grad(loss, shared_weight, retain_graph=True, allow_unused=True)[0].norm()
            if loss.requires_grad else loss.new_zeros(())
            for loss in (jdn, ctn)
        ]).detach()
        ratios = losses.detach() / self.initial_losses.clamp(min=1e-12)
        balance = gradnorm_loss(self.task_weights, norms, ratios)
        auxiliary = (self.task_weights.detach() * losses).sum()
        scale = (self.config.aux_ratio * ttl.detach() / auxiliary.detach().clamp(min=1e-12)).clamp(max=1e3)
        return {"ttl": ttl, "jdn": scale * self.task_weights[0].detach() * jdn,
                "ctn": scale * self.task_weights[1].detach() * ctn, "gradnorm": balance}

    def predict(self, batch: Any, modalities: Sequence[str]) -> torch.Tensor:
        return self._forward(batch)[0][0]

    def report(self) -> dict[str, Any]:
        return {"ordinary": self.ordinary, "privileged": list(self.privileged),
                "gradnorm_weights": [float(w) for w in self.task_weights.detach()]}

