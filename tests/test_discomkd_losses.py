"""DisCoM-KD loss terms against NumPy oracles of the official code's computation (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmbench_discomkd.losses import (
    adversarial_loss,
    auxiliary_loss,
    classification_loss,
    grad_reverse,
    modality_loss,
    orthogonality_loss,
)


def log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def ce(z, y):
    return -log_softmax(z)[np.arange(len(y)), y].mean()


def draws(seed=0):
    torch.manual_seed(seed)
    return torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)


def test_adversarial_loss_official_soft_targets():
    """Float targets: the first modality's rows cost −(log p0 + log p1); the others cost 0; mean over 2B."""
    f, s = draws()
    expected = -(log_softmax(f.numpy()).sum(axis=1)).sum() / 8
    assert adversarial_loss([f, s]).item() == pytest.approx(expected, rel=1e-12)
    assert adversarial_loss([f, s]).item() >= 2 * np.log(2) * 4 / 8  # minimum: uniform f rows


def test_adversarial_loss_paper_is_binary_modality_ce():
    f, s = draws(1)
    expected = ce(np.concatenate([f.numpy(), s.numpy()]), np.array([0] * 4 + [1] * 4))
    assert adversarial_loss([f, s], official=False).item() == pytest.approx(expected, rel=1e-12)


def test_modality_loss_stacks_both_heads_per_modality():
    f_inf, s_inf = draws(2)
    f_irr, s_irr = draws(3)
    official = -(log_softmax(np.concatenate([f_inf.numpy(), f_irr.numpy()])).sum(axis=1)).sum() / 16
    assert modality_loss([f_inf, s_inf], [f_irr, s_irr]).item() == pytest.approx(official, rel=1e-12)
    paper = ce(np.concatenate([f_inf, f_irr, s_inf, s_irr]), np.array([0] * 8 + [1] * 8))
    assert modality_loss([f_inf, s_inf], [f_irr, s_irr], official=False).item() == pytest.approx(paper, rel=1e-12)


def test_classification_and_auxiliary_losses():
    rng = np.random.default_rng(0)
    logits = [rng.normal(size=(4, 3)) for _ in range(4)]
    y_f, y_s = rng.integers(0, 3, 4), rng.integers(0, 3, 4)
    t = [torch.tensor(v) for v in logits]
    ys = [torch.tensor(y_f), torch.tensor(y_s)]
    both = np.concatenate([y_f, y_s])
    assert classification_loss(t[:2], ys).item() == pytest.approx(ce(np.concatenate(logits[:2]), both), rel=1e-12)
    expected = ce(np.concatenate(logits[2:]), both) + ce(np.concatenate(logits[:2]), both)
    assert auxiliary_loss(t[:2], t[2:], ys).item() == pytest.approx(expected, rel=1e-12)


def test_orthogonality_is_signed_mean_cosine_inf_irr_plus_inf_inv():
    rng = np.random.default_rng(1)
    a, u, c = (rng.normal(size=(8, 8)) for _ in range(3))

    def cos(x, y):
        return ((x / np.linalg.norm(x, axis=1, keepdims=True)) * (y / np.linalg.norm(y, axis=1, keepdims=True))).sum(1)

    expected = cos(a, u).mean() + cos(a, c).mean()
    halves = [torch.tensor(v) for v in (c[:4], c[4:], a[:4], a[4:], u[:4], u[4:])]
    got = orthogonality_loss(halves[0:2], halves[2:4], halves[4:6])
    assert got.item() == pytest.approx(expected, rel=1e-12)
    # orthogonal embeddings cost nothing, aligned ones cost 2
    e = torch.eye(3, dtype=torch.float64)
    assert orthogonality_loss([e[[0]]], [e[[1]]], [e[[2]]]).item() == 0.0
    assert orthogonality_loss([e[[0]]], [e[[0]]], [e[[0]]]).item() == pytest.approx(2.0)


def test_gradient_reversal():
    x = torch.ones(3, requires_grad=True)
    (grad_reverse(x, 0.5) * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad.tolist() == [-0.5, -1.0, -1.5]
    assert torch.equal(grad_reverse(x.detach()), x.detach())


def test_model_terms_and_deployment(registry):
    import dataclasses

    from mmbench.engine import RunContext
    from mmbench_discomkd import DisCoMKDConfig
    from mmbench_discomkd.models import DisCoMKD

    task = registry.task("synth-rgbdi-pad")
    ctx = RunContext(task=task, dataset=registry.dataset_of(task), recipe=dataclasses.replace(task.recipe("smoke"), width=8),
                     profile="smoke", seed=0, device=torch.device("cpu"), modalities=("rgb", "depth", "ir"),
                     shapes={"rgb": (3, 16, 16), "depth": (1, 16, 16), "ir": (1, 16, 16)})
    torch.manual_seed(0)
    model = DisCoMKD(task, DisCoMKDConfig(), ctx)
    batch = {"rgb": torch.randn(4, 3, 16, 16), "depth": torch.randn(4, 1, 16, 16), "ir": torch.randn(4, 1, 16, 16),
             "target": torch.tensor([0, 1, 1, 0])}
    terms = model.training_step(batch, 0)
    assert set(terms) == {"cl", "adv", "mod", "aux", "ortho"}
    assert model.discriminator.out_features == 3  # one output per modality
    sum(terms.values()).backward()
    # the reversed gradient reaches the invariant encoder through the discriminator
    assert model.branches["ir"].invariant_encoder.conv1.weight.grad.abs().sum() > 0
    model.eval()
    assert model.predict(batch, ("depth",)).shape == (4, 2)
    with pytest.raises(ValueError, match="one modality at a time"):
        model.predict(batch, ("rgb", "depth"))
    paper = DisCoMKD(task, DisCoMKDConfig(modality_targets="paper"), ctx)
    paper.load_state_dict(model.state_dict())
    paper.train()
    model.train()
    torch.manual_seed(1)
    a = model.training_step(batch, 0)
    torch.manual_seed(1)
    b = paper.training_step(batch, 0)
    assert a["cl"].item() == pytest.approx(b["cl"].item()) and a["adv"].item() != pytest.approx(b["adv"].item())


@pytest.mark.parametrize("task", ["cls-eurosat-mssar", "cls-sunrgbd", "cls-tristar"])
def test_discomkd_tasks_keep_the_official_imagenet_stem_at_every_size(task):
    """DisCoM-KD's model_pytorch.py builds torchvision's ResNet-18 with its 7×7 stride-2 stem and
    max-pool for every modality: at EuroSAT's 64×64 the last feature map is 2×2 (the small stem
    that recipe.stem=auto picks below 96 px would give 4×4)."""
    import torch

    from mmbench.models.backbones import build_encoder, encoder_stem
    from mmbench.plan import plan_run
    from mmbench.plugins import Registry

    plan = plan_run(Registry.load(), "discomkd", task, 0, {}, "full")
    assert plan.recipe.stem == "imagenet"
    with encoder_stem(plan.recipe.stem):
        features = build_encoder((13, 64, 64))(torch.zeros(1, 13, 64, 64))
    assert features[-1].shape[-2:] == (2, 2)
