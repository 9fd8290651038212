"""Engine behaviour: determinism, exact resume, selection on validation, failure handling,
encode-once evaluation and the teacher artifact cache."""

import json
import textwrap

import pytest
import torch

from conftest import FAST_OVERRIDES, NAN_PLUGIN, make_runner
from mmbench.errors import MMBenchError
from mmbench.plan import plan_run
from mmbench.plugins import Registry


def plan(registry, method="fusion-dropout", task="synth-rgbd-cls", seed=0, **extra):
    return plan_run(registry, method, task, seed, {**FAST_OVERRIDES, **extra})


def test_same_seed_same_metrics_other_seed_differs(registry, tmp_path):
    runner = make_runner(registry, tmp_path)
    first, _ = runner.run(plan(registry))
    again, _ = make_runner(registry, tmp_path / "again").run(plan(registry))
    other, _ = runner.run(plan(registry, seed=1))
    assert first.metrics == again.metrics
    assert first.curves[-1]["loss"] == again.curves[-1]["loss"]
    assert first.curves[-1]["loss"] != other.curves[-1]["loss"]


def test_record_contents(registry, tmp_path):
    record, path = make_runner(registry, tmp_path).run(plan(registry, method="se-fusion", task="synth-rgbdi-pad"))
    assert path == tmp_path / "runs" / "synth-rgbdi-pad" / "se-fusion" / f"{record.run_id}.json"
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1 and data["status"] == "completed"
    assert len(data["subsets"]) == 7 and set(data["metrics"]["best"]) == set(data["subsets"])
    assert set(data["metrics"]["best"]["rgb+depth+ir"]) == {"acer", "apcer", "bpcer", "accuracy"}
    assert data["dataset"]["revision"].startswith("generator-v")
    assert data["dataset"]["sizes"] == {"train": 192, "val": 96, "test": 96}
    assert data["selection"]["criterion"].startswith("mean validation acer")
    assert 1 <= data["selection"]["best_epoch"] <= data["selection"]["last_epoch"] == 2
    assert data["resources"]["parameters"] > 0 and data["resources"]["inference_ms_per_sample"] > 0
    assert data["provenance"]["torch"] == torch.__version__ and data["provenance"]["plugins"]["synth"]
    assert len(data["curves"]) == 2 and "val" in data["curves"][0]
    assert not path.with_suffix(".ckpt").exists()  # checkpoint removed once the record is final


def test_best_epoch_is_selected_on_validation(registry, tmp_path):
    record, _ = make_runner(registry, tmp_path).run(plan(registry, **{"recipe.epochs": "3"}))
    scores = [sum(v["accuracy"] for v in c["val"].values()) / len(c["val"]) for c in record.curves]
    assert record.selection.best_epoch == scores.index(max(scores)) + 1
    assert record.val_metrics == record.curves[record.selection.best_epoch - 1]["val"]


PER_EPOCH_SCHEDULE = {"recipe.scheduler": "multistep", "recipe.milestones": "1", "recipe.warmup_epochs": "1",
                      "recipe.scheduler_interval": "epoch"}


@pytest.mark.parametrize("schedule", [{}, PER_EPOCH_SCHEDULE], ids=["per-step", "per-epoch"])
def test_interrupt_then_resume_matches_uninterrupted(registry, tmp_path, schedule):
    overrides = {"recipe.epochs": "3", **schedule}
    reference, _ = make_runner(registry, tmp_path / "ref").run(plan(registry, **overrides))

    def interrupt_after_first_epoch(run, epoch, logs):  # epochs are 1-based for observers
        if epoch == 1:
            raise KeyboardInterrupt

    from mmbench.engine.runner import RunInterrupted

    runner = make_runner(registry, tmp_path, epoch_log=interrupt_after_first_epoch)
    the_plan = plan(registry, **overrides)
    with pytest.raises(RunInterrupted, match="1 completed epoch"):
        runner.run(the_plan)
    checkpoint = tmp_path / "runs" / "synth-rgbd-cls" / "fusion-dropout" / f"{the_plan.run_id}.ckpt"
    assert checkpoint.exists() and not checkpoint.with_suffix(".json").exists()
    resumed, _ = make_runner(registry, tmp_path).run(the_plan, resume=True)
    assert resumed.metrics == reference.metrics
    assert [c["lr"] for c in resumed.curves] == [c["lr"] for c in reference.curves]
    assert resumed.extra == {"resumed_from_epoch": 1}
    if schedule:  # warm-up epoch, the base rate, then ×0.1 from the milestone (one epoch after the warm-up)
        base = reference.recipe["lr"]
        assert [c["lr"] for c in reference.curves] == pytest.approx([base, base, base * 0.1])


def test_resume_refuses_other_config_and_corrupt_checkpoint(registry, tmp_path):
    from mmbench.engine.checkpoint import save_checkpoint

    the_plan = plan(registry)
    checkpoint = tmp_path / "runs" / "synth-rgbd-cls" / "fusion-dropout" / f"{the_plan.run_id}.ckpt"
    save_checkpoint(checkpoint, {"fingerprint": "another-run", "epoch": 1})
    with pytest.raises(MMBenchError, match="different configuration"):
        make_runner(registry, tmp_path).run(the_plan, resume=True)
    checkpoint.write_bytes(checkpoint.read_bytes()[:20])
    with pytest.raises(MMBenchError, match="corrupt or truncated"):
        make_runner(registry, tmp_path).run(the_plan, resume=True)


def test_non_finite_loss_stops_and_marks_record_failed(tmp_path):
    plugin = tmp_path / "nanplugin.py"
    plugin.write_text(textwrap.dedent(NAN_PLUGIN.format(bad_step=8)))
    registry = Registry.load(plugins=[str(plugin)])
    from mmbench.engine.runner import RunFailed

    the_plan = plan(registry, method="goes-nan")
    with pytest.raises(RunFailed, match="loss term 'aux' became non-finite at epoch 2"):
        make_runner(registry, tmp_path).run(the_plan)
    record = json.loads((tmp_path / "runs" / "synth-rgbd-cls" / "goes-nan" / f"{the_plan.run_id}.json").read_text())
    assert record["status"] == "failed"
    assert record["failure"]["epoch"] == 2 and record["failure"]["term"] == "aux"
    assert record["metrics"] == {}


def test_all_subsets_encode_each_modality_once(registry, tmp_path):
    from mmbench.data.arrays import ArrayBatches, load_task_data, make_loader
    from mmbench.engine.runner import Runner

    the_plan = plan(registry, method="fusion", task="synth-rgbdi-pad")
    runner = Runner(registry, out=tmp_path, device="cpu")
    data = load_task_data(the_plan.task, the_plan.dataset, the_plan.recipe)
    module = the_plan.method.builder()(the_plan.task, the_plan.config, runner.context(the_plan, data)).eval()
    calls = {m: 0 for m in data.modalities}
    for name, encoder in module.net.encoders.items():
        encoder.register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
    batch = next(iter(make_loader(ArrayBatches(data.test, data.stats, data.modalities), 16, shuffle=False)))
    with torch.no_grad():
        outputs = module.predict_subsets(batch, list(the_plan.subsets))
        assert len(outputs) == 7
        assert calls == {"rgb": 1, "depth": 1, "ir": 1}
        for subset in the_plan.subsets:  # same logits as predicting the subset alone
            torch.testing.assert_close(outputs[subset], module.predict(batch, subset))


def test_missing_modality_features_are_zeros(registry, tmp_path):
    from mmbench.models import FusionNet, subset_mask

    net = FusionNet(("rgb", "depth"), {"rgb": (3, 16, 16), "depth": (1, 16, 16)}, "classification", 4, width=8).eval()
    batch = {"rgb": torch.randn(2, 3, 16, 16), "depth": torch.randn(2, 1, 16, 16)}
    zeroed = {"rgb": batch["rgb"], "depth": torch.zeros(2, 1, 16, 16)}
    mask = subset_mask(("rgb", "depth"), ("rgb",), 2, "cpu")
    with torch.no_grad():
        features = net.encode(batch, ["rgb"])
        direct = net.head(net.fuse(features, mask))
        fused = net.fuse(net.encode(zeroed), mask)
    torch.testing.assert_close(direct, net.head(fused))
    assert fused[-1][:, 64:].abs().sum() == 0  # the depth half of the concatenation is zero


def test_modality_dropout_never_drops_everything():
    from mmbench.models import modality_dropout_mask

    torch.manual_seed(0)
    mask = modality_dropout_mask(20000, 3, 0.6)
    assert bool((mask.sum(dim=1) >= 1).all())
    # conditional Bernoulli: P(kept) = 0.4 / (1 - 0.6**3)
    assert mask.mean().item() == pytest.approx(0.4 / (1 - 0.6**3), abs=0.01)


TEACHER_PLUGIN = """
from mmbench import MethodSpec, hookimpl

def build(task, config, ctx):
    from torch import nn
    from mmbench.engine import TrainedModel
    from mmbench_baselines import UnimodalConfig
    from mmbench_baselines.models import build_unimodal
    teacher = ctx.models["teacher"]
    assert isinstance(teacher, TrainedModel) and not isinstance(teacher, nn.Module)
    assert teacher.method == "fusion" and teacher.modalities == ("rgb", "depth")
    student = build_unimodal(task, UnimodalConfig(modality="depth"), ctx)
    student.teacher = teacher  # a plain attribute: outside the module tree
    encoder = teacher.encoder("rgb")
    assert not any(p.requires_grad for p in encoder.parameters()) and not encoder.training
    return student

@hookimpl
def mmbench_methods():
    return [MethodSpec(name="needs-teacher", description="test", build=build, kinds=frozenset({"classification"}),
                       requires=lambda task, modalities, config: {"teacher": ("fusion", {})},
                       trained_modalities=lambda mods, cfg: ("depth",),
                       deploy_subsets=lambda subsets, trained, cfg: (("depth",),))]
"""


def _teacher_registry(tmp_path):
    plugin = tmp_path / "teacherplugin.py"
    plugin.write_text(textwrap.dedent(TEACHER_PLUGIN))
    return Registry.load(plugins=[str(plugin)])


def test_teacher_is_trained_once_as_a_run_then_cached(tmp_path):
    registry = _teacher_registry(tmp_path)
    messages = []
    runner = make_runner(registry, tmp_path, log=messages.append)
    the_plan = plan(registry, method="needs-teacher")
    teacher_id = the_plan.dependencies[0].plan.run_id
    first, _ = runner.run(the_plan)
    assert any(m.startswith("training fusion") for m in messages)
    # the teacher is an ordinary run with its own record; the student's record names it
    teacher_record = tmp_path / "runs" / "synth-rgbd-cls" / "fusion" / f"{teacher_id}.json"
    assert json.loads(teacher_record.read_text())["status"] == "completed"
    (dependency,) = first.dependencies
    assert (dependency.role, dependency.method, dependency.run_id) == ("teacher", "fusion", teacher_id)
    assert dependency.weights_sha256 and len(dependency.weights_sha256) == 64
    teacher_parameters = json.loads(teacher_record.read_text())["resources"]["parameters"]
    assert first.resources.parameters < teacher_parameters  # the teacher is not part of the student
    messages.clear()
    second, _ = make_runner(registry, tmp_path / "other", log=messages.append).run(the_plan)
    assert any(m.startswith("training fusion") for m in messages)  # other artifact dir: trained again
    messages.clear()
    third, _ = make_runner(registry, tmp_path, log=messages.append).run(the_plan)
    assert any(m.startswith("using cached fusion") for m in messages)
    assert first.metrics == second.metrics == third.metrics  # cached or not, same student
    assert len(list((tmp_path / "artifacts").glob("*.pt"))) == 1


def test_interrupted_teacher_resumes_from_its_last_epoch(tmp_path):
    from mmbench.engine.runner import RunInterrupted

    registry = _teacher_registry(tmp_path)
    the_plan = plan(registry, method="needs-teacher", **{"recipe.epochs": "3"})
    reference, _ = make_runner(registry, tmp_path / "reference").run(the_plan)

    def interrupt_teacher(run, epoch, logs):
        if run["method"] == "fusion" and epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted, match="2 completed epoch"):
        make_runner(registry, tmp_path, epoch_log=interrupt_teacher).run(the_plan)
    messages = []
    resumed, _ = make_runner(registry, tmp_path, log=messages.append).run(the_plan)  # no --resume needed
    assert any(m.startswith("resuming fusion") for m in messages)
    teacher = the_plan.dependencies[0].plan
    teacher_record = json.loads((tmp_path / "runs" / "synth-rgbd-cls" / "fusion" / f"{teacher.run_id}.json").read_text())
    assert teacher_record["extra"]["resumed_from_epoch"] == 2
    assert resumed.metrics == reference.metrics


def test_loader_workers_do_not_change_results(registry, tmp_path):
    inline, _ = make_runner(registry, tmp_path).run(plan(registry, method="fusion"))
    workers, _ = make_runner(registry, tmp_path).run(plan(registry, method="fusion", **{"recipe.num_workers": "2"}))
    assert inline.run_id != workers.run_id and inline.metrics == workers.metrics


SEESAW_PLUGIN = """
import torch
from mmbench import ALL_KINDS, MethodSpec, hookimpl
from mmbench.engine import MethodModule

GOOD_EPOCH = {"rgb": 1, "depth": 2, "rgb+depth": 3}  # each subset is right at one epoch only

class Seesaw(MethodModule):
    def __init__(self, task, config, ctx):
        super().__init__()
        self.classes = task.num_classes
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.register_buffer("epoch", torch.zeros((), dtype=torch.long))
        self.paired_modalities = PAIRED

    def on_epoch_start(self, epoch, num_epochs):
        self.epoch.fill_(epoch + 1)

    def training_step(self, batch, step):
        labels = batch.get("targets", {"rgb": batch["target"], "depth": batch["target"]})
        same = float(torch.equal(labels["rgb"], labels["depth"]) and torch.equal(labels["rgb"], batch["target"]))
        return {"ce": (self.weight ** 2).sum() + 1.0, "paired": self.weight.sum() * 0 + same}

    def predict(self, batch, modalities):
        target = batch["target"]
        right = GOOD_EPOCH["+".join(modalities)] == int(self.epoch)
        return torch.nn.functional.one_hot(target if right else (target + 1) % self.classes, self.classes).float()

@hookimpl
def mmbench_methods():
    return [MethodSpec(name="seesaw", description="test", build=Seesaw, kinds=ALL_KINDS, min_modalities=2,
                       recipe=RECIPE)]
"""


def seesaw_registry(tmp_path, recipe="{}", paired=True):
    plugin = tmp_path / "seesaw.py"
    plugin.write_text(textwrap.dedent(SEESAW_PLUGIN.replace("RECIPE", recipe).replace("PAIRED", str(paired))))
    return Registry.load(plugins=[str(plugin)])


def test_per_subset_selection_tests_each_subset_at_its_own_best_epoch(tmp_path):
    registry = seesaw_registry(tmp_path, recipe='{"selection": "per-subset"}')
    the_plan = plan(registry, method="seesaw", **{"recipe.epochs": "3"})
    assert the_plan.recipe.selection == "per-subset"
    record, _ = make_runner(registry, tmp_path).run(the_plan)
    assert record.selection.subset_epochs == {"rgb": 1, "depth": 2, "rgb+depth": 3}
    assert all(m["accuracy"] == 1.0 for m in record.metrics["best"].values())  # each at its right epoch
    assert record.metrics["last"]["rgb"]["accuracy"] == 0.0 and record.metrics["last"]["rgb+depth"]["accuracy"] == 1.0
    assert record.val_metrics["depth"]["accuracy"] == 1.0 and "own best epoch" in record.selection.criterion

    mean = plan(registry, method="seesaw", **{"recipe.epochs": "3", "recipe.selection": "mean"})
    record, _ = make_runner(registry, tmp_path).run(mean)
    assert record.selection.subset_epochs is None
    assert sorted(m["accuracy"] for m in record.metrics["best"].values()) == [0.0, 0.0, 1.0]


def test_unpaired_modalities_come_from_independent_loaders(tmp_path):
    for paired in (True, False):
        registry = seesaw_registry(tmp_path, paired=paired)
        record, _ = make_runner(registry, tmp_path).run(plan(registry, method="seesaw", **{"recipe.epochs": "1"}))
        assert record.curves[0]["loss"]["paired"] == (1.0 if paired else 0.0)  # every batch's labels differ


def test_per_subset_selection_survives_an_interruption(tmp_path):
    """The per-subset bests are checkpointed: interrupted after epoch 2, resumed, the record is
    the uninterrupted one (rgb's best weights come from epoch 1, before the interruption)."""
    from mmbench.engine.runner import RunInterrupted

    registry = seesaw_registry(tmp_path, recipe='{"selection": "per-subset"}')
    the_plan = plan(registry, method="seesaw", **{"recipe.epochs": "3"})

    def interrupt_after_second_epoch(run, epoch, logs):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted, match="2 completed epoch"):
        make_runner(registry, tmp_path, epoch_log=interrupt_after_second_epoch).run(the_plan)
    resumed, _ = make_runner(registry, tmp_path).run(the_plan, resume=True)
    assert resumed.extra == {"resumed_from_epoch": 2}
    assert resumed.selection.subset_epochs == {"rgb": 1, "depth": 2, "rgb+depth": 3}
    assert all(m["accuracy"] == 1.0 for m in resumed.metrics["best"].values())
