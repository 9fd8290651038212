"""ESANet's network as the official code builds it (TUI-NICR/ESANet ``src/models/model.py``,
``context_modules.py``, ``resnet.py``): NBt1D encoder, decoder with learned upsampling and deep
supervision, context modules; the full profiles' per-method encoders and their ImageNet weights."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import one_line_error, run_cli
from mmbench.errors import MMBenchError
from mmbench.models import (
    ESANetwork,
    NonBottleneck1D,
    ResNetEncoder,
    deep_supervision_loss,
    downsample_target,
)
from mmbench.models.esanet_decoder import ESANetDecoder, LearnedUpsample, PyramidPooling
from mmbench.models.pretrained import initialise_from_imagenet
from mmbench.weights import pretrained_weights, user_weights_dir

RGBD = ("rgb", "depth")


def esanet(arch: str, classes: int, size=(480, 640), context: str = "ppm") -> ESANetwork:
    return ESANetwork(RGBD, {"rgb": (3, *size), "depth": (1, *size)}, classes, arch, 64, "esanet", context)


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# Parameter counts and state-dict sizes of the official ESANet, obtained by instantiating
# ``ESANet(height, width, num_classes, encoder_rgb=encoder_depth=E, encoder_block=B,
# channels_decoder=[512, 256, 128], nr_decoder_blocks=[3, 3, 3], context_module=C,
# upsampling='learned-3x3-zeropad', pretrained_on_imagenet=False)`` of TUI-NICR/ESANet at f72ea8a
# (its train.py defaults; ResNet-50 is MMANet's fork's ``args.encoder = 'resnet50'``). mmbench's
# network loaded with the same (random) weights gave the official outputs exactly in eval mode and
# to 1e-5 for all four training outputs when this was checked.
OFFICIAL = [
    # backbone, classes, input, context, parameters, state-dict entries
    ("resnet34-nbt1d", 40, (480, 640), "ppm", 46_955_840, 898),           # ESANet-R34-NBt1D, NYUv2
    ("resnet34-nbt1d", 37, (480, 640), "ppm", 46_949_624, 898),           # SUN RGB-D
    ("resnet34-nbt1d", 19, (512, 1024), "appm-1-2-4-8", 46_912_328, 910),  # Cityscapes
    ("resnet50", 40, (480, 640), "ppm", 71_733_544, 910),                 # MMANet's fork, NYUv2
    ("resnet34", 40, (480, 640), "ppm", 59_950_912, 706),                 # ESANet-R34 (BasicBlock)
]


@pytest.mark.parametrize(("arch", "classes", "size", "context", "parameters", "entries"), OFFICIAL)
def test_parameter_counts_equal_the_official_esanet(arch, classes, size, context, parameters, entries):
    net = esanet(arch, classes, size, context)
    assert count(net) == parameters
    assert len(net.state_dict()) == entries


def decoder_module_count(cin: int, c: int, k: int) -> int:
    """3×3 conv (no bias) + BN, three NBt1D (four factorised convs with bias, two BNs), 1×1 side
    output with bias, depthwise 3×3 learned upsampling with bias."""
    nbt1d = 4 * (3 * c * c + c) + 2 * 2 * c
    return 9 * cin * c + 2 * c + 3 * nbt1d + (c * k + k) + (9 * c + c)


def test_decoder_parameters_follow_the_published_architecture():
    k = 40
    expected = (decoder_module_count(512, 512, k) + decoder_module_count(512, 256, k)
                + decoder_module_count(256, 128, k) + (9 * 128 * k + k) + 2 * (9 * k + k))
    assert count(ESANetDecoder([512, 256, 128], k)) == expected == 16_335_296


def test_nbt1d_encoder_is_esanets_resnet34_nbt1d():
    encoder = ResNetEncoder(3, "resnet34-nbt1d", 64)
    # the official ResNet34(block=NonBottleneck1D) without fc, counted as above
    assert count(encoder) == 14_787_136
    assert [len(getattr(encoder, f"layer{i}")) for i in range(1, 5)] == [3, 4, 6, 3]
    block = encoder.layer2[0]
    assert isinstance(block, NonBottleneck1D) and block.conv3x1_1.stride == (2, 1) and block.conv1x3_1.stride == (1, 2)
    assert block.bn1.eps == 1e-3 and block.conv3x1_1.bias is not None
    assert [f.shape[-2:] for f in encoder(torch.randn(1, 3, 64, 96))] == [(16, 24), (8, 12), (4, 6), (2, 3)]


def test_training_outputs_are_the_logits_and_three_side_outputs():
    net = esanet("resnet34-nbt1d", 40, (96, 128))
    batch = {"rgb": torch.randn(2, 3, 96, 128), "depth": torch.randn(2, 1, 96, 128)}
    outputs = net.train().training_outputs(batch, torch.ones(2, 2))
    assert [tuple(o.shape) for o in outputs] == [(2, 40, 96, 128), (2, 40, 12, 16), (2, 40, 6, 8), (2, 40, 3, 4)]
    net.eval()
    with torch.no_grad():
        logits, maps = net.decode(net.features(batch, torch.ones(2, 2)))
    assert logits.shape == (2, 40, 96, 128)
    assert [m.shape[1:] for m in maps] == [(512, 6, 8), (256, 12, 16), (128, 24, 32)]  # out_down_32_feature first


def test_light_networks_have_no_side_outputs():
    net = ESANetwork(RGBD, {"rgb": (3, 32, 32), "depth": (1, 32, 32)}, 5, "resnet18", 8)
    outputs = net.training_outputs({"rgb": torch.randn(2, 3, 32, 32), "depth": torch.randn(2, 1, 32, 32)},
                                   torch.ones(2, 2))
    assert len(outputs) == 1


def test_learned_upsampling_starts_as_esanets_bilinear_kernel():
    up = LearnedUpsample(2)
    assert torch.equal(up.conv.weight[0, 0], torch.tensor([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16)
    x = torch.full((1, 2, 4, 4), 3.0)
    with torch.no_grad():
        y = up(x)
    assert y.shape == (1, 2, 8, 8)
    torch.testing.assert_close(y[..., 1:-1, 1:-1], torch.full((1, 2, 6, 6), 3.0))  # zero padding at the border
    assert y[0, 0, 0, 0].item() == pytest.approx(3.0 * 9 / 16)


def test_adaptive_pyramid_pooling_scales_its_bins_with_the_input():
    appm = PyramidPooling(8, 4, (1, 2, 4, 8), adaptive=True, input_size=(2, 4))
    seen = []
    handle = torch.nn.Module.register_forward_pre_hook(appm.branches[1], lambda m, a: seen.append(a[0].shape[-2:]))
    appm.eval()(torch.randn(1, 8, 2, 4))
    appm(torch.randn(1, 8, 4, 8))  # twice the training size: bins × 2 (the official int(ratio + 0.5))
    handle.remove()
    assert seen == [(2, 2), (4, 4)]
    ppm = PyramidPooling(8, 4, (1, 5), adaptive=False, input_size=(2, 4))
    assert count(ppm) == 2 * (8 * 4 + 2 * 4) + (8 + 2 * 4) * 4 + 2 * 4


def test_deep_supervision_sums_cross_entropy_over_nearest_downsampled_targets():
    task = type("Task", (), {"ignore_index": 255})()
    torch.manual_seed(0)
    target = torch.randint(0, 4, (2, 16, 24))
    target[0, :3] = 255
    outputs = [torch.randn(2, 4, 16, 24, requires_grad=True), torch.randn(2, 4, 2, 3), torch.randn(2, 4, 1, 1)]
    weights = torch.tensor([1.0, 2.0, 0.5, 1.5])
    expected = 0.0
    for output in outputs:  # cv2.resize INTER_NEAREST: source index floor(i * H / h)
        h, w = output.shape[-2:]
        rows, cols = np.floor(np.arange(h) * 16 / h).astype(int), np.floor(np.arange(w) * 24 / w).astype(int)
        small = target.numpy()[:, rows][:, :, cols]
        logp = F.log_softmax(output.detach(), 1).numpy()
        valid = small != 255
        picked = np.take_along_axis(logp, np.where(valid, small, 0)[:, None], 1)[:, 0]
        wt = weights.numpy()[np.where(valid, small, 0)] * valid
        expected += float(-(picked * wt).sum() / wt.sum())
    loss = deep_supervision_loss(task, outputs, target, weights)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert torch.equal(downsample_target(target, (16, 24)), target)
    single = deep_supervision_loss(task, outputs[:1], target)
    assert single.item() == pytest.approx(F.cross_entropy(outputs[0], target, ignore_index=255).item(), rel=1e-6)


def esanet_nbt1d_file(tmp_path, seed: int = 3):
    """A file in the format of ESANet's ``r34_NBt1D.pth`` (a training checkpoint whose
    ``state_dict`` holds the ResNet under ``encoder.`` and an ImageNet ``fc``)."""
    torch.manual_seed(seed)
    encoder = ResNetEncoder(3, "resnet34-nbt1d", 64)
    state = {f"encoder.{k}": torch.randn_like(v) if v.is_floating_point() else v
             for k, v in encoder.state_dict().items() if not k.endswith("num_batches_tracked")}
    state |= {"fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)}
    path = tmp_path / "r34_NBt1D.pth"
    torch.save({"epoch": 7, "state_dict": state}, path)
    return path, state


def test_esanets_nbt1d_imagenet_file_loads_strictly_with_the_depth_stem(tmp_path):
    path, state = esanet_nbt1d_file(tmp_path)
    net = esanet("resnet34-nbt1d", 40, (96, 128))
    weights = pretrained_weights("resnet34-nbt1d", str(path))
    assert weights.name == "resnet34-nbt1d ImageNet weights from r34_NBt1D.pth" and len(weights.sha256) == 64
    done = initialise_from_imagenet(net, "resnet34-nbt1d", weights)
    assert sorted(done) == ["encoders.depth", "encoders.rgb"]
    rgb, depth = net.encoders["rgb"].state_dict(), net.encoders["depth"].state_dict()
    assert torch.equal(rgb["layer3.2.conv1x3_2.weight"], state["encoder.layer3.2.conv1x3_2.weight"])
    assert torch.equal(depth["conv1.weight"], state["encoder.conv1.weight"].sum(dim=1, keepdim=True))


def test_nbt1d_without_its_file_is_one_line_naming_where_it_comes_from():
    with pytest.raises(MMBenchError) as error:
        pretrained_weights("resnet34-nbt1d")
    message = str(error.value)
    assert "r34_NBt1D.pth" in message and "TUI-NICR/ESANet" in message and "recipe.backbone=resnet34" in message
    assert str(user_weights_dir() / "r34_NBt1D.pth") in message
    with pytest.raises(MMBenchError, match="no such file"):
        pretrained_weights("resnet34-nbt1d", "/nonexistent/r34_NBt1D.pth")


def test_author_weights_are_found_in_the_weights_folder_without_a_path(tmp_path, monkeypatch):
    monkeypatch.setenv("MMBENCH_HOME", str(tmp_path / "home"))
    path, _ = esanet_nbt1d_file(tmp_path)
    (tmp_path / "home" / "weights").mkdir(parents=True)
    placed = tmp_path / "home" / "weights" / "r34_NBt1D.pth"
    placed.write_bytes(path.read_bytes())
    found = pretrained_weights("resnet34-nbt1d")
    assert found.path == placed.resolve() and found.sha256 == pretrained_weights("resnet34-nbt1d", str(path)).sha256


def test_full_profiles_fix_each_papers_encoder_and_teachers_inherit_it(registry, monkeypatch, tmp_path):
    from test_pretrained import write_weights

    from mmbench.plan import plan_run

    write_weights(tmp_path, monkeypatch, "resnet50")
    plan = plan_run(registry, "mmanet", "seg-nyuv2", 0, {}, "full")
    assert (plan.recipe.backbone, plan.recipe.decoder, plan.recipe.context) == ("resnet50", "esanet", "ppm")
    (teacher,) = plan.dependencies
    assert teacher.plan.method.name == "esanet" and teacher.plan.recipe.backbone == "resnet50"
    assert teacher.plan.pretrained.sha256 == plan.pretrained.sha256
    for method in ("rfnet", "mmformer", "hemis"):
        assert plan_run(registry, method, "seg-nyuv2", 0, {}, "full").recipe.backbone == "resnet50"
    city = plan_run(registry, "mmanet", "seg-cityscapes", 0, {}, "full")
    assert city.recipe.context == "appm-1-2-4-8"
    smoke = plan_run(registry, "mmanet", "seg-nyuv2", 0, {}, "smoke")
    assert (smoke.recipe.backbone, smoke.recipe.decoder, smoke.recipe.pretrained) == ("resnet18", "light", "none")
    face = plan_run(registry, "mmanet", "cls-casia-surf", 0, {}, "full")
    assert (face.recipe.backbone, face.recipe.pretrained) == ("resnet18", "none")
    path, _ = esanet_nbt1d_file(tmp_path)
    for method in ("esanet", "osmd"):
        with pytest.raises(MMBenchError, match="r34_NBt1D.pth"):
            plan_run(registry, method, "seg-nyuv2", 0, {}, "full")
        nbt1d = plan_run(registry, method, "seg-nyuv2", 0, {"recipe.weights": str(path)}, "full")
        assert nbt1d.recipe.backbone == "resnet34-nbt1d"
        assert all(d.plan.recipe.backbone == "resnet34-nbt1d" and d.plan.recipe.weights == str(path)
                   for d in nbt1d.dependencies)


def test_bad_network_recipe_values_are_one_line(tmp_path):
    for setting, text in (("recipe.decoder=unet", "recipe.decoder='unet'"),
                          ("recipe.context=aspp", "recipe.context='aspp'"),
                          ("recipe.weights=/x.pth", "needs recipe.pretrained=imagenet")):
        line = one_line_error(run_cli("run", "--method", "esanet", "--task", "synth-rgbd-seg", "--set", setting,
                                      "--out", str(tmp_path)))
        assert text in line, line


def test_encoders_start_from_imagenet_before_a_method_copies_its_pretrained_model_in(registry, tmp_path):
    """OS-MD initialises its ordinary encoder from its pretrained unimodal model: ImageNet weights
    are loaded as encoders are built, so they never overwrite that copy."""
    from mmbench.engine.summary import build_untrained
    from mmbench.plan import plan_run

    path, state = esanet_nbt1d_file(tmp_path)
    plan = plan_run(registry, "osmd", "seg-nyuv2", 0, {"recipe.weights": str(path), "recipe.input_scale": "0.2"}, "full")
    built: dict = {}
    for dependency in plan.all_dependencies():
        built[dependency.run_id] = build_untrained(dependency, built, pretrained=True)
    ordinary = next(d for d in plan.dependencies if d.role == "ordinary")
    trained_encoder = built[ordinary.plan.run_id].encoder("rgb")
    assert torch.equal(trained_encoder.conv1.weight, state["encoder.conv1.weight"])
    with torch.no_grad():  # as if trained
        trained_encoder.conv1.weight.add_(1.0)
    module = build_untrained(plan, built, pretrained=True)
    assert torch.equal(module.ordinary_encoder.conv1.weight, trained_encoder.conv1.weight)
    assert torch.equal(module.shared.conv1.weight, state["encoder.conv1.weight"])

def test_dry_run_summary_counts_the_full_mmanet_networks(registry, monkeypatch, tmp_path):
    """MMANet full on seg-nyuv2: the ESANet-R50 teacher (the official 71,733,544 parameters, the
    RGB encoder the official ``encoder_rgb``'s 23,508,032) and the student with its auxiliary
    ESANet decoder (16,335,296 more)."""
    from test_pretrained import write_weights

    from mmbench.engine.summary import network_summaries
    from mmbench.plan import plan_run

    write_weights(tmp_path, monkeypatch, "resnet50")
    plan = plan_run(registry, "mmanet", "seg-nyuv2", 0, {}, "full")
    teacher, student = network_summaries(plan)
    assert (teacher.role, teacher.method, student.role, student.method) == ("teacher", "esanet", "run", "mmanet")
    assert teacher.parameters == 71_733_544 and student.parameters == 71_733_544 + 16_335_296
    assert student.inputs == {"rgb": (3, 480, 640), "depth": (1, 480, 640)}
    rows = {row.name: row for row in student.rows}
    assert rows["net.encoders.rgb"].parameters == 23_508_032 and rows["aux"].kind == "ESANetDecoder"
    assert student.pretrained.sha256 == plan.pretrained.sha256 and student.backbone == "resnet50"


def test_dry_run_prints_each_network(tmp_path):
    result = run_cli("run", "--method", "mmanet", "--task", "synth-rgbd-seg", "--dry-run", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "teacher: esanet" in text and "run: mmanet" in text and "net.encoders.rgb" in text
    assert "pretrained weights: none (trained from scratch)" in text and "aux" in text

FULL_STEP = {"recipe.epochs": "1", "recipe.batch_size": "2", "recipe.eval_batch_size": "2", "recipe.limit_train": "2",
             "recipe.limit_eval": "2"}


@pytest.mark.slow
@pytest.mark.parametrize("method", ["esanet", "mmanet", "osmd", "rfnet", "mmformer", "hemis"])
def test_a_full_profile_nyuv2_run_takes_a_step_on_its_papers_network(method, tmp_path, monkeypatch):
    """seg-nyuv2 ``--profile full`` on the hub fixture: one optimisation step (and the evaluation)
    of each method on its paper's encoder, started from ImageNet weights in the cache, through the
    runner (data, dependencies, record) — at half of 480×640 for the ESANet-based networks, a
    quarter for RFNet / mmFormer / HeMIS: the networks' steps at the full 480×640 are
    ``test_full_networks_train_at_full_size``'s; here the full-profile plumbing is under test."""
    from test_pretrained import write_weights

    from conftest import tiny_hub_sizes, write_nyuv2_hub_fixture
    from mmbench.artifacts import ArtifactCache
    from mmbench.engine.runner import Runner
    from mmbench.plan import plan_run
    from mmbench.plugins import Registry

    write_nyuv2_hub_fixture()
    tiny_hub_sizes(monkeypatch)
    write_weights(tmp_path, monkeypatch, "resnet50")
    overrides = dict(FULL_STEP)
    overrides["recipe.input_scale"] = "0.25" if method in ("rfnet", "mmformer", "hemis") else "0.5"
    if method in ("esanet", "osmd"):
        overrides["recipe.weights"] = str(esanet_nbt1d_file(tmp_path)[0])
    registry = Registry.load()
    plan = plan_run(registry, method, "seg-nyuv2", 0, overrides, "full")
    runner = Runner(registry, out=tmp_path / "runs", device="cpu", artifacts=ArtifactCache(tmp_path / "artifacts"))
    record, _ = runner.run(plan)
    assert record.status == "completed" and record.profile == "full"
    assert record.recipe["backbone"] == ("resnet34-nbt1d" if method in ("esanet", "osmd") else "resnet50")
    assert record.recipe["decoder"] == "esanet" and record.pretrained.sha256 == plan.pretrained.sha256


def test_step_memory_counts_saved_activations_once_and_not_the_parameters():
    from mmbench.engine.memory import step_memory

    layer = torch.nn.Linear(100, 50)
    x = torch.randn(8, 100)
    memory = step_memory(layer, lambda: torch.relu(layer(x)).sum() + torch.relu(layer(x)).sum() * 0, 8)
    # addmm saves its input x (8×100 fp32), ReLU its output (8×50), twice: x is one storage
    assert memory.activations == 8 * 100 * 4 + 2 * 8 * 50 * 4
    assert memory.parameters == memory.trainable == (100 * 50 + 50) * 4
    assert memory.total(16, "sgd") == 3 * memory.parameters + 2 * memory.activations
    assert layer.weight.grad is not None


FULL_NETWORKS = [  # (method, task): every distinct network a full profile builds
    ("esanet", "seg-nyuv2"), ("mmanet", "seg-nyuv2"), ("osmd", "seg-nyuv2"), ("rfnet", "seg-nyuv2"),
    ("mmformer", "seg-nyuv2"), ("hemis", "seg-nyuv2"), ("esanet", "seg-cityscapes"), ("mmanet", "cls-casia-surf"),
    ("discomkd", "cls-eurosat-mssar"),
]


REDUCED = {"rfnet": 0.25}
"""RFNet's region-aware fusion holds a ``[B, classes, modalities, C, H, W]`` tensor per scale —
40 NYUv2 classes × ResNet-50 channels at 480×640 take over 20 minutes of this 2-core CPU for one
step — so it is measured at a quarter of the size and its activations scaled by the pixel count."""


def full_network_step(method: str, task: str, registry, monkeypatch, tmp_path, scale: float, amp: bool):
    """Build ``method``'s full-profile network on ``task`` (at ``scale`` × its input size), run one
    forward / backward of batch 2 with channels-last inputs and weights (under bfloat16 autocast
    with ``amp``) and return the plan and the step's memory (``step_memory``)."""
    from test_pretrained import write_weights

    from mmbench.engine import TrainedModel
    from mmbench.engine.memory import step_memory
    from mmbench.engine.summary import build_untrained, spec_shapes
    from mmbench.plan import plan_run

    write_weights(tmp_path, monkeypatch, "resnet50")
    overrides = {"recipe.weights": str(esanet_nbt1d_file(tmp_path)[0])} if method in ("esanet", "osmd") else {}
    if scale != 1.0:
        overrides["recipe.input_scale"] = str(scale)
    plan = plan_run(registry, method, task, 0, overrides, "full")
    torch.manual_seed(0)
    module = build_untrained(plan).train().to(memory_format=torch.channels_last)
    shapes, classes = spec_shapes(plan), plan.task.num_classes
    batch = {m: torch.randn(2, *s).contiguous(memory_format=torch.channels_last) for m, s in shapes.items()}
    size = next(s[-2:] for s in shapes.values())
    batch["target"] = torch.randint(0, classes, (2, *size) if plan.task.kind == "segmentation" else (2,))
    if method == "mmanet":  # past the begin epoch with a weak combination: MAD and MAR (and the teacher) run
        module.epoch, module.weak_count = module.begin + 1, torch.tensor(1)
        module.weak[0] = torch.tensor([0.0, 1.0] + [0.0] * (len(plan.modalities) - 2))
    frozen = [value._module for value in vars(module).values() if isinstance(value, TrainedModel)]  # teachers

    def step() -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            terms = module.training_step(batch, 0)
        assert all(torch.isfinite(t.float()).all() for t in terms.values()), terms
        return sum(t.float() for t in terms.values())

    memory = step_memory(module, step, batch=2, frozen=frozen)
    grads = [p.grad for p in module.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    return plan, memory


@pytest.mark.slow
@pytest.mark.parametrize(("method", "task"), FULL_NETWORKS)
def test_full_networks_take_an_amp_channels_last_step(method, task, registry, monkeypatch, tmp_path):
    """The GPU code paths CPU has: bfloat16 autocast and channels-last, on each full-profile
    network at an eighth of its input size, RFNet and mmFormer a sixteenth (bfloat16 kernels are
    slow on CPU)."""
    scale = 0.5 if "seg" not in task else 0.0625 if method in ("rfnet", "mmformer") else 0.125
    full_network_step(method, task, registry, monkeypatch, tmp_path, scale=scale, amp=True)


REDUCED = {"rfnet": 0.25}
"""RFNet's region-aware fusion holds a ``[B, classes, modalities, C, H, W]`` tensor per scale —
40 NYUv2 classes × ResNet-50 channels at 480×640 need over 10 GiB of activations per sample and
more than 20 minutes of this 2-core CPU for one step — so it is measured at a quarter of the size
and its activations scaled by the pixel count."""


@pytest.mark.slow
@pytest.mark.parametrize(("method", "task"), FULL_NETWORKS)
def test_full_networks_train_at_full_size(method, task, registry, monkeypatch, tmp_path, record_property):
    """GPU readiness on CPU: one forward / backward of each full-profile network at its full input
    size, batch 2, channels-last, float32; the activation memory per sample is recorded for the
    README's GPU figures (float32: an upper bound for AMP)."""
    scale = REDUCED.get(method, 1.0)
    plan, memory = full_network_step(method, task, registry, monkeypatch, tmp_path, scale, amp=False)
    memory = dataclasses.replace(memory, activations=int(memory.activations / scale**2))  # ∝ pixels
    per_sample = memory.activations_per_sample / 2**20
    total = memory.total(plan.recipe.batch_size, plan.recipe.optimizer) / 2**30
    record_property("activation_mib_per_sample", round(per_sample, 1))
    record_property(f"step_gib_at_batch_{plan.recipe.batch_size}", round(total, 2))
    print(f"\n{method} {task}: {per_sample:.0f} MiB activations per sample, "
          f"~{total:.1f} GiB at batch {plan.recipe.batch_size}")


def test_listings_show_the_recipe_per_profile_and_what_a_method_fixes():
    method = " ".join(run_cli("list", "methods", "mmanet").stdout.split())
    assert "backbone=resnet50 (the full profile of segmentation tasks)" in method
    task = run_cli("list", "tasks", "seg-cityscapes").stdout
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:4]]
            for line in task.splitlines() if line.count("│") == 4}
    assert rows["decoder"] == ["light", "esanet"] and rows["context"] == ["ppm", "appm-1-2-4-8"]


def test_a_profile_recipe_naming_an_unknown_field_is_refused_at_registration():
    from mmbench import MethodSpec, ProfileRecipe

    with pytest.raises(MMBenchError, match="unknown recipe field"):
        MethodSpec(name="x", description="x", build=lambda *a: None, kinds=frozenset({"segmentation"}),
                   recipe=ProfileRecipe("full", "segmentation", backbon="resnet50"))
    recipe = ProfileRecipe("full", "segmentation", backbone="resnet50")
    seg, cls = (type("Task", (), {"kind": kind})() for kind in ("segmentation", "classification"))
    assert recipe(seg, "full") == {"backbone": "resnet50"} and recipe(seg, "smoke") == {} and recipe(cls, "full") == {}


def test_a_single_modality_esanet_has_no_fusion_and_serves_only_its_modality(registry):
    from mmbench.engine.summary import build_untrained
    from mmbench.plan import plan_run

    plan = plan_run(registry, "esanet", "synth-rgbd-seg", 0, {"modalities": "depth", "recipe.width": "8"})
    assert plan.trained_modalities == ("depth",) and plan.subsets == (("depth",),)
    module = build_untrained(plan)
    assert module.net.se is None and list(module.net.encoders) == ["depth"]
    size = plan.task.input_size
    batch = {"depth": torch.randn(2, 1, *size), "target": torch.zeros(2, *size, dtype=torch.long)}
    assert module.predict(batch, ("depth",)).shape == (2, plan.task.num_classes, *size)
