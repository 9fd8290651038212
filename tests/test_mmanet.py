"""MMANet end to end on the synthetic shapes: mining picks a weak combination on validation, then
MAD and MAR switch on; checkpoints of any epoch load into a fresh module."""

from __future__ import annotations

import pytest

from conftest import FAST_OVERRIDES, make_runner
from mmbench.plan import plan_run
from mmbench_mmanet.models import schedule


@pytest.mark.parametrize(("task", "weak_size"), [("synth-rgbdi-pad", (2, 3)), ("synth-rgbd-seg", (1, 1))])
def test_mining_then_distillation(registry, tmp_path, task, weak_size):
    overrides = {**FAST_OVERRIDES, "recipe.epochs": "4", "begin_epoch": "2", "mining_epochs": "1"}
    record, _ = make_runner(registry, tmp_path).run(plan_run(registry, "mmanet", task, 0, overrides))
    losses = [set(c["loss"]) for c in record.curves]
    assert losses[:3] == [{"ce"}] * 3 and losses[3] == {"ce", "mad", "mar"}
    report = record.extra["method"]
    assert len(report["weak_combinations"]) in weak_size  # classification: weak pair + its singles
    assert report["begin_epoch"] == 3 and any(v > 0 for v in report["mining_distances"].values())
    assert len(record.metrics["best"]) == (7 if task == "synth-rgbdi-pad" else 3)


def test_official_schedules_and_short_recipes(registry):
    from mmbench_mmanet import MMANetConfig
    from mmbench_mmanet.models import official_values

    FACES, SEG = registry.task("cls-casia-surf"), registry.task("seg-nyuv2")
    # classification: the official mining after its epochs 2-4 and MAD / MAR from its epoch 6, of a
    # loop whose epoch 0 trains nothing (mmbench's epoch k = the official k + 1)
    assert schedule(FACES, MMANetConfig(), 99) == (4, 1)  # mining after epochs 1, 2, 3; on from 5
    assert schedule(SEG, MMANetConfig(), 300) == (10, 6)  # mining epochs 6..9
    assert schedule(SEG, MMANetConfig(), 10) == (5, 1)
    # λ_MAD / λ_MAR: the scripts' --kd_scale / --auxi_scale (Cityscapes 10 / 0.1)
    assert official_values(FACES)[2:] == (30.0, 0.5)
    assert official_values(SEG)[2:] == (4.0, 0.2)
    assert official_values(registry.task("seg-cityscapes"))[2:] == (10.0, 0.1)


def seg_parts(registry, official):
    import copy
    import dataclasses

    import torch

    from mmbench.engine import RunContext, TrainedModel

    task = registry.task("synth-rgbd-seg")
    recipe = dataclasses.replace(task.recipe("smoke"), width=8)
    base = dict(task=task, dataset=registry.dataset_of(task), recipe=recipe, profile="smoke", seed=0,
                device=torch.device("cpu"), modalities=("rgb", "depth"), shapes={"rgb": (3, 32, 32), "depth": (1, 32, 32)})
    torch.manual_seed(0)
    esanet = registry.method("esanet")
    teacher_module = esanet.builder()(task, esanet.config(), RunContext(**base))
    for module in teacher_module.modules():  # non-trivial running statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    reference = copy.deepcopy(teacher_module)
    teacher = TrainedModel(teacher_module, "esanet", "t", ("rgb", "depth"))
    spec = registry.method("mmanet")
    student = spec.builder()(task, spec.config(official=official), RunContext(**base, models={"teacher": teacher}))
    batch = {"rgb": torch.randn(4, 3, 32, 32), "depth": torch.randn(4, 1, 32, 32),
             "target": torch.randint(0, task.num_classes, (4, 32, 32))}
    return student, teacher, reference, batch


def test_teacher_features_on_batch_statistics_leave_its_running_statistics(registry):
    import torch

    _, teacher, reference, batch = seg_parts(registry, True)
    before = {k: v.clone() for k, v in reference.state_dict().items()}
    in_training = teacher.features(batch, batch_statistics=True)
    frozen = teacher.features(batch)
    with torch.no_grad():
        expected = reference.train().features(batch, ("rgb", "depth"))
    torch.testing.assert_close(in_training.decoder[0], expected.decoder[0])
    torch.testing.assert_close(in_training.scales[-1], expected.scales[-1])
    assert not torch.allclose(frozen.scales[-1], expected.scales[-1])  # eval mode: running statistics
    for key, value in teacher._module.state_dict().items():
        torch.testing.assert_close(value, before[key], msg=key)
    assert not teacher._module.training


@pytest.mark.parametrize("official", [True, False])
def test_dense_mad_weights_pixels_by_the_entropy_the_official_loop_uses(registry, official):
    """Official: entropy over the teacher's first decoder map (512 channels in ESANet-R34), teacher
    BatchNorm on batch statistics; ``official=False``: over its class logits in eval mode."""
    import torch

    from mmbench_mmanet.losses import mad_loss_dense

    student, teacher, _, batch = seg_parts(registry, official)
    fused = student.net.features(batch, torch.ones(4, 2))
    t = teacher.features(batch, batch_statistics=official)
    entropy_of = t.decoder[0] if official else t.logits
    assert entropy_of.shape[1] == (32 if official else student.task.num_classes)  # decoder channels: max(2·width, 32)
    expected = sum(mad_loss_dense(s, ts, entropy_of) for s, ts in zip(fused[-3:], t.scales[-3:], strict=True))
    assert student._dense_mad(batch, fused).item() == pytest.approx(expected.item(), rel=1e-6)
    other = teacher.features(batch, batch_statistics=not official)
    other_entropy = other.decoder[0] if not official else other.logits
    wrong = sum(mad_loss_dense(s, ts, other_entropy) for s, ts in zip(fused[-3:], other.scales[-3:], strict=True))
    assert student._dense_mad(batch, fused).item() != pytest.approx(wrong.item(), rel=1e-6)


def test_dense_auxiliary_decoder_runs_only_with_a_second_modality_only_sample(registry):
    """Official: ``if self.auxi and torch.sum((1 - p[:, 0]) * p[:, 1]) != 0`` — else MAR reads the
    main decoder's output."""
    import torch

    student, _, _, batch = seg_parts(registry, True)
    fused = student.net.features(batch, torch.ones(4, 2))
    main = [student.net.head(fused)]
    no_depth_only = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    assert student._dense_aux_outputs(fused, no_depth_only, main) is main
    depth_only = torch.tensor([[0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    (aux,) = student._dense_aux_outputs(fused, depth_only, main)
    torch.testing.assert_close(aux, student.aux(fused, student.net.input_size))
    student_paper, *_ = seg_parts(registry, False)
    assert student_paper._dense_aux_outputs(fused, no_depth_only, main) is not main
