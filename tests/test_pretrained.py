"""ImageNet-pretrained encoders (``recipe.pretrained=imagenet``) and ResNet-50, offline: a weights
file in torchvision's exact format and name (the state dict of an untrained torchvision model) is
written into a temporary torch hub cache; the core encoders must have torchvision's keys and
parameter counts, load it strictly, and give the non-RGB stems ESANet's summed ``conv1``."""

from __future__ import annotations

import pytest
import torch
import torchvision

from conftest import one_line_error, run_cli
from mmbench.errors import MMBenchError
from mmbench.models.backbones import ResNetEncoder, ResNetTrunk, build_encoder
from mmbench.models.pretrained import initialise_from_imagenet
from mmbench.weights import IMAGENET, hub_checkpoints, imagenet_weights

ARCHS = ("resnet18", "resnet34", "resnet50")


def torchvision_model(arch: str) -> torch.nn.Module:
    torch.manual_seed(1)
    return getattr(torchvision.models, arch)(weights=None)


def write_weights(tmp_path, monkeypatch, arch: str) -> dict[str, torch.Tensor]:
    """torchvision's file for ``arch`` (an untrained model's weights) in a fresh torch hub cache."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    state = torchvision_model(arch).state_dict()
    path = hub_checkpoints() / IMAGENET[arch][1].rsplit("/", 1)[1]
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    return state


@pytest.mark.parametrize("arch", ARCHS)
def test_the_weights_table_is_torchvisions(arch, monkeypatch, tmp_path):
    weights = getattr(torchvision.models, f"ResNet{arch[6:]}_Weights").IMAGENET1K_V1
    assert IMAGENET[arch] == (str(weights), weights.url)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert hub_checkpoints() == tmp_path / "th" / "hub" / "checkpoints"
    assert str(hub_checkpoints().parent) == torch.hub.get_dir()


@pytest.mark.parametrize("arch", ARCHS)
def test_core_encoders_have_torchvisions_keys_and_parameter_counts(arch):
    reference = torchvision_model(arch)
    encoder = ResNetEncoder(3, arch, 64)
    expected = {k: v.shape for k, v in reference.state_dict().items() if not k.startswith("fc.")}
    assert {k: v.shape for k, v in encoder.state_dict().items()} == expected
    count = sum(p.numel() for n, p in reference.named_parameters() if not n.startswith("fc."))
    assert sum(p.numel() for p in encoder.parameters()) == count
    # torchvision's published totals (fc included): 11,689,512 / 21,797,672 / 25,557,032
    fc = reference.fc.weight.numel() + reference.fc.bias.numel()
    assert count + fc == {"resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032}[arch]
    assert encoder.out_channels == ([256, 512, 1024, 2048] if arch == "resnet50" else [64, 128, 256, 512])


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_imagenet_weights_load_strictly_with_esanets_depth_stem(arch, tmp_path, monkeypatch):
    state = write_weights(tmp_path, monkeypatch, arch)
    model = torch.nn.ModuleDict({
        "rgb": ResNetEncoder(3, arch, 64), "depth": ResNetEncoder(1, arch, 64), "ms": ResNetEncoder(4, arch, 64, stages=2),
        "trunk": ResNetTrunk(ResNetEncoder(3, arch, 64).out_channels[1], arch, 64, first_stage=2),
    })
    x = torch.randn(2, 1, 96, 96)
    model.eval()
    before = model["depth"](x)[-1]
    done = initialise_from_imagenet(model, arch)
    assert sorted(done) == ["depth", "ms", "rgb", "trunk"]
    for key, value in model["rgb"].state_dict().items():
        assert torch.equal(value, state[key]) or key.endswith("num_batches_tracked"), key
    assert torch.equal(model["depth"].conv1.weight, state["conv1.weight"].sum(dim=1, keepdim=True))
    assert torch.equal(model["ms"].conv1.weight, state["conv1.weight"].sum(dim=1, keepdim=True).repeat(1, 4, 1, 1))
    assert torch.equal(model["depth"].layer4[0].conv1.weight, state["layer4.0.conv1.weight"])
    assert torch.equal(model["trunk"].stages[1][0].conv1.weight, state["layer4.0.conv1.weight"])
    assert not torch.allclose(model["depth"](x)[-1], before)


def test_a_network_that_cannot_take_the_weights_is_one_line(tmp_path, monkeypatch):
    write_weights(tmp_path, monkeypatch, "resnet18")
    small_stem = torch.nn.ModuleDict({"rgb": build_encoder((3, 32, 32), "resnet18", 64)})
    with pytest.raises(MMBenchError, match=r"rgb: conv1.weight has shape \(64, 3, 3, 3\), the ImageNet weights "
                                           r"\(64, 3, 7, 7\).*inputs of at least 96 px"):
        initialise_from_imagenet(small_stem, "resnet18")
    with pytest.raises(MMBenchError, match="has no ResNet encoder"):
        initialise_from_imagenet(torch.nn.Linear(2, 2), "resnet18")


def test_the_weights_enter_the_plan_id(tmp_path, monkeypatch, registry):
    from mmbench.plan import plan_run

    write_weights(tmp_path, monkeypatch, "resnet34")
    options = {"recipe.backbone": "resnet34", "recipe.width": "64"}
    plain = plan_run(registry, "fusion", "synth-rgbd-cls", 0, options)
    pretrained = plan_run(registry, "fusion", "synth-rgbd-cls", 0, {**options, "recipe.pretrained": "imagenet"})
    weights = imagenet_weights("resnet34")
    assert pretrained.pretrained == weights and plain.pretrained is None
    assert pretrained.identity["pretrained"] == {"name": "ResNet34_Weights.IMAGENET1K_V1", "sha256": weights.sha256}
    assert plain.run_id != pretrained.run_id


def test_missing_weights_offline_are_one_line_naming_the_file(tmp_path):
    result = run_cli("run", "--method", "fusion", "--task", "synth-rgbd-cls", "--set", "recipe.pretrained=imagenet",
                     "--set", "recipe.width=64", "--out", str(tmp_path / "runs"),
                     env={"TORCH_HOME": str(tmp_path / "torch"), "MMBENCH_OFFLINE": "1"})
    line = one_line_error(result)
    assert f"are not at {tmp_path / 'torch' / 'hub' / 'checkpoints' / 'resnet18-f37072fd.pth'}" in line
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in line


def test_pretrained_needs_the_standard_width(tmp_path):
    line = one_line_error(run_cli("run", "--method", "fusion", "--task", "synth-rgbd-cls", "--set",
                                  "recipe.pretrained=imagenet", "--out", str(tmp_path)))
    assert "recipe.pretrained=imagenet needs the standard network (recipe.width=64)" in line


@pytest.mark.slow
def test_a_pretrained_run_records_its_weights(tmp_path, monkeypatch):
    from conftest import tiny_hub_sizes, write_nyuv2_hub_fixture
    from mmbench.artifacts import ArtifactCache
    from mmbench.engine.runner import Runner
    from mmbench.plan import plan_run
    from mmbench.plugins import Registry

    write_nyuv2_hub_fixture()
    tiny_hub_sizes(monkeypatch)
    write_weights(tmp_path, monkeypatch, "resnet18")
    registry = Registry.load()
    overrides = {"recipe.epochs": "1", "recipe.width": "64", "recipe.backbone": "resnet18", "recipe.batch_size": "4",
                 "recipe.pretrained": "imagenet", "recipe.limit_train": "4", "recipe.limit_eval": "2"}
    plan = plan_run(registry, "esanet", "seg-nyuv2", 0, overrides)
    runner = Runner(registry, out=tmp_path / "runs", device="cpu", artifacts=ArtifactCache(tmp_path / "artifacts"))
    record, _ = runner.run(plan)
    assert record.status == "completed" and record.recipe["pretrained"] == "imagenet"
    assert record.pretrained.name == "ResNet18_Weights.IMAGENET1K_V1"
    assert record.pretrained.file == "resnet18-f37072fd.pth" and record.pretrained.sha256 == plan.pretrained.sha256


def test_full_recipes_pretrain_where_the_official_code_does(registry):
    imagenet = {"seg-nyuv2", "seg-sunrgbd", "seg-cityscapes"}
    for name in registry.names("task"):
        task = registry.task(name)
        if "full" in task.recipes:
            assert task.recipe("full").pretrained == ("imagenet" if name in imagenet else "none"), name
        assert task.recipe("smoke").pretrained == "none", name
