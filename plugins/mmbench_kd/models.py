"""Teacher-student modules of the logit-distillation family.

The student is the network of the undistilled STUDENT reference (per-modality encoder(s) from
the core, linear classifier); the teacher is the protocol's TEACHER reference, trained before
the student and handed over frozen (``ctx.models["teacher"]``, an
:class:`mmbench.engine.TrainedModel`: outside the module tree, so it is neither optimised, nor
checkpointed with the student, nor counted in the student's parameters). Only the objective
differs between methods; each documents which official behaviour it follows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from mmbench import TaskSpec
from mmbench.engine import MethodModule, RunContext
from mmbench.models import FusionNet
from mmbench_kd.losses import (
    GlobalTemperature,
    cosine_lambda,
    dkd_loss,
    kd_loss,
    mlkd_loss,
    standardize_logits,
)


class DistilledStudent(MethodModule):
    """A student distilled from a frozen teacher; subclasses define ``objective``."""

    def __init__(self, task: TaskSpec, config: Any, ctx: RunContext):
        super().__init__()
        setup = ctx.distillation
        if setup is None or setup.teacher is None:
            raise RuntimeError("a teacher-student method needs a distillation setup with a teacher")
        self.config = config
        self.student_modalities = setup.students[0]
        self.teacher_modalities = setup.teacher
        self.net = FusionNet(
            self.student_modalities, ctx.shapes, task.kind, task.num_classes,
            arch=config.backbone or ctx.recipe.backbone, width=ctx.recipe.width,
        )
        self.teacher = ctx.models["teacher"]
        self.epoch = 1  # 1-based, as the official trainers count epochs

    # -- the two networks ----------------------------------------------------------------------------
    def student_logits(self, batch: Any) -> torch.Tensor:
        mask = torch.ones(batch["target"].shape[0], len(self.student_modalities), device=batch["target"].device)
        return self.net(batch, mask)

    @torch.no_grad()
    def teacher_logits(self, batch: Any) -> torch.Tensor:
        return self.teacher.predict(batch, self.teacher_modalities).float()

    def predict(self, batch: Any, modalities: Sequence[str]) -> torch.Tensor:
        return self.student_logits(batch)

    def on_epoch_start(self, epoch: int, num_epochs: int) -> None:
        self.epoch = epoch + 1

    # -- LSKD -------------------------------------------------------------------------------------------
    @property
    def standardize(self) -> bool:
        return bool(self.config.logit_standardization)

    def distill_inputs(self, student: torch.Tensor, teacher: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits as the distillation terms see them (z-scored under LSKD)."""
        if self.standardize:
            return standardize_logits(student), standardize_logits(teacher)
        return student, teacher

    def temperature(self) -> float:
        return self.config.base_temperature if self.standardize else self.config.temperature

    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        student, teacher = self.student_logits(batch), self.teacher_logits(batch)
        return self.objective(student, teacher, batch["target"])

    def objective(self, student: torch.Tensor, teacher: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError


class KDStudent(DistilledStudent):
    """Hinton KD as mdistiller: w_ce·CE + w_kd·T²·KL. Under LSKD, T = base temperature and
    w_kd = ``ls_weight`` (LSKD's ``--kd-weight``); the CE weight is unchanged."""

    def objective(self, student, teacher, target):
        s, t = self.distill_inputs(student, teacher)
        kd_weight = self.config.ls_weight if self.standardize else self.config.kd_weight
        terms = {"kd": kd_weight * kd_loss(s, t, self.temperature())}
        if self.config.ce_weight:
            terms["ce"] = self.config.ce_weight * F.cross_entropy(student, target)
        return terms


class DKDStudent(DistilledStudent):
    """DKD as mdistiller: w_ce·CE + min(epoch / W, 1)·(α·TCKD + β·NCKD), epochs from 1. Under
    LSKD (its DKD distiller): T = base temperature, α and β multiplied by ``ls_weight``."""

    def objective(self, student, teacher, target):
        c = self.config
        s, t = self.distill_inputs(student, teacher)
        scale = c.ls_weight if self.standardize else 1.0
        warmup = min(self.epoch / c.warmup, 1.0)
        return {
            "ce": c.ce_weight * F.cross_entropy(student, target),
            "dkd": warmup * dkd_loss(s, t, target, scale * c.alpha, scale * c.beta, self.temperature()),
        }


class CTKDStudent(DistilledStudent):
    """CTKD with the global learnable temperature (zhengli97/CTKD ``helper/loops.py``):
    γ·CE + α·KD(T) + β·DKD(T), T from :class:`GlobalTemperature` with the cosine λ curriculum
    (per epoch, epochs from 1). θ is a parameter of this module, so it is optimised with the
    student by the same optimiser, weight decay included — as the official code does; the DKD
    term has no warm-up in CTKD. Under LSKD the KD term sees standardised logits with weight
    ``ls_weight`` (the repository's ``DistillKL_logit_stand``, γ = 0.1, α = 9); mmbench also
    standardises the DKD term (α, β × ``ls_weight``) where the CTKD folder of the LSKD repository
    leaves DKD unstandardised, so that the option means the same for every base loss.

    The official code optimises θ with SGD, where |λ| scales θ's step. Under an Adam-type recipe
    (the synthetic tasks use AdamW) the optimiser normalises θ's gradient, so the curriculum acts
    mainly through λ's sign and the moment estimates; set ``recipe.optimizer=sgd`` for the
    official dynamics."""

    def __init__(self, task: TaskSpec, config: Any, ctx: RunContext):
        super().__init__(task, config, ctx)
        self.global_temperature = GlobalTemperature(config.t_start, config.t_end)
        self.register_buffer("last_temperature", torch.zeros(()))

    def report(self) -> dict[str, Any]:
        return {"final_temperature": float(self.last_temperature)}

    def grl_lambda(self) -> float:
        c = self.config
        return cosine_lambda(self.epoch, c.decay_epochs, c.lambda_max, c.lambda_min)

    def objective(self, student, teacher, target):
        c = self.config
        ce_weight, kd_weight, dkd_weight = c.weights()
        temperature = self.global_temperature(self.grl_lambda())
        self.last_temperature.copy_(temperature.detach())
        s, t = self.distill_inputs(student, teacher)
        scale = c.ls_weight if self.standardize else 1.0
        terms = {}
        if ce_weight:
            terms["ce"] = ce_weight * F.cross_entropy(student, target)
        if kd_weight or not dkd_weight:
            terms["kd"] = (c.ls_weight if self.standardize else kd_weight) * kd_loss(s, t, temperature)
        if dkd_weight:
            terms["dkd"] = dkd_weight * dkd_loss(s, t, target, scale * c.dkd_alpha, scale * c.dkd_beta, temperature)
        return terms


class MLKDStudent(DistilledStudent):
    """MLKD (``KD_ours``): student and teacher on a weak and a strong view of each batch
    (the engine's recipe view and ``strong`` view, independent draws), the four official terms
    of :func:`mmbench_kd.losses.mlkd_loss`. Under ``torchrun`` the batch- and class-correlation
    Gram matrices are computed per rank over the rank's shard of the batch, as the official
    code's per-GPU computation. Under LSKD: T0 = base temperature and the KD, CC and
    BC weight = ``ls_weight``; only the KD terms see standardised logits (LSKD repository).
    The batch- and class-level Gram matrices and the median masks are computed per batch — per
    process under DDP, as the official DataParallel code computes them per GPU shard."""

    extra_views = ("strong",)

    def training_step(self, batch, step):
        strong = batch["views"]["strong"]
        c = self.config
        return mlkd_loss(
            self.student_logits(batch), self.teacher_logits(batch),
            self.student_logits(strong), self.teacher_logits(strong), batch["target"],
            temperature=self.temperature(), ce_weight=c.ce_weight,
            kd_weight=c.ls_weight if self.standardize else c.kd_weight,
            logit_standardization=self.standardize,
        )
