"""How each KD method assembles its loss from the pure functions: weights, warm-up, temperatures,
LSKD, the CTKD curriculum — checked on a student/teacher pair with known logits."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from mmbench.distillation import resolve_setup
from mmbench.engine import MethodModule, RunContext, TrainedModel
from mmbench_kd import models
from mmbench_kd.config import CTKDConfig, DKDConfig, KDConfig, KDv1Config, KDv2Config, MLKDConfig
from mmbench_kd.losses import (
    GlobalTemperature,
    cosine_lambda,
    dkd_loss,
    kd_loss,
    mlkd_loss,
    standardize_logits,
)


class FixedTeacher(MethodModule):
    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def predict(self, batch, modalities):
        return self.logits[: batch["target"].shape[0]]


@pytest.fixture
def parts(registry):
    task = registry.task("synth-mssar-cls")
    recipe = dataclasses.replace(task.recipe("smoke"), width=8)
    torch.manual_seed(0)
    teacher_logits = torch.randn(6, 10) * 3
    teacher = TrainedModel(FixedTeacher(teacher_logits), "unimodal", "fixed", ("ms",))
    ctx = RunContext(task=task, dataset=registry.dataset_of(task), recipe=recipe, profile="smoke", seed=0,
                     device=torch.device("cpu"), modalities=("ms", "sar"),
                     shapes={"ms": (4, 32, 32), "sar": (2, 32, 32)},
                     distillation=resolve_setup(task, ("ms", "sar"), None, None, None), models={"teacher": teacher})
    batch = {"ms": torch.randn(6, 4, 32, 32), "sar": torch.randn(6, 2, 32, 32), "target": torch.arange(6) % 10}
    return task, ctx, batch, teacher_logits, teacher


def terms_of(cls, config, parts, epoch=1):
    task, ctx, batch, teacher, _ = parts
    torch.manual_seed(1)
    module = cls(task, config, ctx)
    module.on_epoch_start(epoch - 1, 10)
    student = module.student_logits(batch)
    return module, module.objective(student, teacher, batch["target"]), student, teacher, batch["target"]


def test_student_is_built_on_the_student_modality_and_teacher_from_the_context(parts):
    module, _, student, _, _ = terms_of(models.KDStudent, KDConfig(), parts)
    assert module.teacher is parts[4]
    assert student.shape == (6, 10) and list(module.net.encoders) == ["sar"]
    assert "teacher" not in dict(module.named_modules()) and not any("teacher" in k for k in module.state_dict())


@pytest.mark.parametrize(("config", "ce", "kd"), [(KDConfig(), 0.1, 0.9), (KDv1Config(), None, 1.0), (KDv2Config(), 0.5, 0.5)])
def test_kd_weights(parts, config, ce, kd):
    _, terms, s, t, y = terms_of(models.KDStudent, config, parts)
    assert terms["kd"].item() == pytest.approx(kd * kd_loss(s, t, 4.0).item(), rel=1e-6)
    assert ("ce" in terms) == (ce is not None)
    if ce is not None:
        assert terms["ce"].item() == pytest.approx(ce * F.cross_entropy(s, y).item(), rel=1e-6)


def test_kd_with_logit_standardisation(parts):
    _, terms, s, t, y = terms_of(models.KDStudent, KDConfig(logit_standardization=True), parts)
    expected = 9.0 * kd_loss(standardize_logits(s), standardize_logits(t), 2.0)
    assert terms["kd"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert terms["ce"].item() == pytest.approx(0.1 * F.cross_entropy(s, y).item(), rel=1e-6)


@pytest.mark.parametrize(("epoch", "factor"), [(1, 1 / 20), (10, 0.5), (20, 1.0), (35, 1.0)])
def test_dkd_linear_warmup_counts_epochs_from_one(parts, epoch, factor):
    _, terms, s, t, y = terms_of(models.DKDStudent, DKDConfig(), parts, epoch=epoch)
    assert terms["dkd"].item() == pytest.approx(factor * dkd_loss(s, t, y, 1.0, 8.0, 4.0).item(), rel=1e-6)
    assert terms["ce"].item() == pytest.approx(F.cross_entropy(s, y).item(), rel=1e-6)


def test_dkd_with_logit_standardisation_scales_alpha_and_beta(parts):
    _, terms, s, t, y = terms_of(models.DKDStudent, DKDConfig(logit_standardization=True, warmup=1), parts)
    expected = dkd_loss(standardize_logits(s), standardize_logits(t), y, 9.0, 72.0, 2.0)
    assert terms["dkd"].item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize(("base", "names"), [("kd", {"ce", "kd"}), ("dkd", {"ce", "dkd"})])
def test_ctkd_uses_the_scripts_weights_and_the_learned_temperature(parts, base, names):
    module, terms, s, t, y = terms_of(models.CTKDStudent, CTKDConfig(base=base), parts, epoch=3)
    assert set(terms) == names
    temperature = GlobalTemperature()(cosine_lambda(3, 10))
    assert module.last_temperature.item() == pytest.approx(temperature.item(), rel=1e-6)
    if base == "kd":
        assert terms["kd"].item() == pytest.approx(0.9 * kd_loss(s, t, temperature).item(), rel=1e-5)
        assert terms["ce"].item() == pytest.approx(0.1 * F.cross_entropy(s, y).item(), rel=1e-6)
    else:
        assert terms["dkd"].item() == pytest.approx(dkd_loss(s, t, y, 1.0, 2.0, temperature).item(), rel=1e-5)
        assert terms["ce"].item() == pytest.approx(F.cross_entropy(s, y).item(), rel=1e-6)
    sum(terms.values()).backward()
    theta = module.global_temperature.theta
    assert theta.grad is not None and theta in set(module.parameters())


def test_ctkd_gradient_on_theta_is_reversed_by_the_curriculum(parts):
    module, terms, *_ = terms_of(models.CTKDStudent, CTKDConfig(), parts, epoch=5)
    terms["kd"].backward()
    reversed_grad = module.global_temperature.theta.grad.item()
    module2, terms2, *_ = terms_of(models.CTKDStudent, CTKDConfig(lambda_min=1.0, lambda_max=1.0), parts, epoch=5)
    terms2["kd"].backward()
    assert reversed_grad == pytest.approx(-0.5 * module2.global_temperature.theta.grad.item(), rel=1e-4)


def test_mlkd_uses_both_views(parts):
    task, ctx, batch, teacher, _ = parts
    module = models.MLKDStudent(task, MLKDConfig(), ctx)
    strong = {k: v.flip(-1) if v.dim() == 4 else v for k, v in batch.items()}
    terms = module.training_step({**batch, "views": {"strong": strong}}, 0)
    expected = mlkd_loss(module.student_logits(batch), teacher, module.student_logits(strong), teacher,
                         batch["target"], 4.0, 0.1, 0.9)
    for name in ("ce", "kd", "cc", "bc"):
        assert terms[name].item() == pytest.approx(expected[name].item(), rel=1e-5)
    assert models.MLKDStudent.extra_views == ("strong",)


@pytest.mark.slow
def test_ctkd_on_dkd_trains(tmp_path):
    """``ctkd --set base=dkd``: the learnable temperature stays finite through training (with the
    official NCKD on probabilities θ became NaN after the first step and the run stopped)."""
    import mmbench
    from conftest import FAST_OVERRIDES

    (record,) = mmbench.run("ctkd", "synth-mssar-cls", seeds=0, out=tmp_path / "runs",
                            overrides={**FAST_OVERRIDES, "base": "dkd"})
    assert record.status == "completed"
    assert {"ce", "dkd"} <= set(record.curves[-1]["loss"])
    temperature = record.extra["method"]["final_temperature"]
    assert 1.0 < temperature < 21.0
