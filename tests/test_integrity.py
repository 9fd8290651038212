"""Benchmark integrity: absent modalities cannot reach ``predict``, edited plugin code never reuses
an old record, equivalent settings are one run, generated data has no revision to override, a
swapped input size is refused, and every run says how many threads it used."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
import torch

from conftest import FAST, FAST_OVERRIDES, make_runner, one_line_error, run_cli
from mmbench import ArraySource, DatasetSpec, MMBenchError, Recipe, TaskSpec
from mmbench.engine.module import MethodModule, restrict_batch
from mmbench.plan import plan_run
from mmbench.plugins import Registry
from mmbench.testing import check_method

# A method whose predict forgets to mask: it reads every modality whatever the subset says.
LEAKY = '''
from mmbench import MethodSpec, hookimpl

def build(task, config, ctx):
    import torch
    from torch import nn
    from mmbench.engine import MethodModule
    from mmbench.models import task_loss

    class Leaky(MethodModule):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(len(ctx.modalities), task.num_classes)

        def features(self, batch):
            return torch.stack([batch[m].mean(dim=(1, 2, 3)) for m in ctx.modalities], dim=1)

        def training_step(self, batch, step):
            return {{"ce": task_loss(task, self.linear(self.features(batch)), batch["target"])}}

        def predict(self, batch, modalities):{predict}

    return Leaky()

@hookimpl
def mmbench_methods():
    return [MethodSpec(name="leaky", description="reads absent modalities", build=build,
                       kinds=frozenset({{"classification"}}))]
'''
LEAKY_PREDICT = "\n            return self.linear(self.features(batch))"
# A correct predict, but an encode-once path that multiplies absent modalities by zero: NaN gets through.
LEAKY_SUBSETS = """
            size = len(batch["target"])
            return self.linear(torch.stack([batch[m].mean(dim=(1, 2, 3)) if m in modalities else torch.zeros(size)
                                            for m in ctx.modalities], dim=1))

        def predict_subsets(self, batch, subsets):
            out = {}
            for s in subsets:
                feats = self.features(batch)
                mask = torch.tensor([1.0 if m in s else 0.0 for m in ctx.modalities])
                out[tuple(s)] = self.linear(feats * mask)
            return out"""


def test_subset_batch_has_only_the_present_modalities():
    batch = {"rgb": torch.ones(2), "depth": torch.zeros(2), "target": torch.zeros(2), "index": torch.arange(2)}
    restricted = restrict_batch(batch, ("rgb",))
    assert set(restricted) == {"rgb", "target", "index"} and "depth" not in restricted
    with pytest.raises(KeyError, match="modality 'depth' is absent in deployment subset 'rgb'"):
        restricted["depth"]
    with pytest.raises(KeyError):
        restricted["nope"]


def test_default_predict_subsets_never_hands_predict_an_absent_modality():
    seen = []

    class Recorder(MethodModule):
        def predict(self, batch, modalities):
            seen.append((tuple(modalities), sorted(batch)))
            return batch["target"].float()

    batch = {"rgb": torch.ones(2), "depth": torch.zeros(2), "target": torch.zeros(2), "index": torch.arange(2)}
    Recorder().predict_subsets(batch, [("rgb", "depth"), ("rgb",), ("depth",)])
    assert seen == [(("rgb", "depth"), ["depth", "index", "rgb", "target"]),
                    (("rgb",), ["index", "rgb", "target"]), (("depth",), ["depth", "index", "target"])]


@pytest.mark.parametrize("predict, message", [
    (LEAKY_PREDICT, r"predict read a modality its subset lacks: modality 'depth' is absent in deployment subset 'rgb'"),
    (LEAKY_SUBSETS, r"predict_subsets: the output for subset depth changes when the absent modality 'rgb' "
                    r"is replaced by NaN"),  # x·0 hides noise, not NaN
])
def test_kit_fails_a_method_that_reads_absent_modalities(predict, message, tmp_path):
    plugin = tmp_path / "leaky.py"
    plugin.write_text(LEAKY.format(predict=predict))
    registry = Registry.load(plugins=[str(plugin)], entry_points=False)
    with pytest.raises(AssertionError, match=r"on conformance task 'conformance-classification-rgb-depth' "
                                             r"\(classification\): leaky: " + message):
        check_method(registry.method("leaky"), out=tmp_path / "runs")


def test_engine_run_of_a_leaky_predict_is_one_error_naming_the_modality(tmp_path):
    plugin = tmp_path / "leaky.py"
    plugin.write_text(LEAKY.format(predict=LEAKY_PREDICT))
    done = run_cli("--plugin", str(plugin), "run", "--method", "leaky", *FAST, "--out", str(tmp_path / "runs"))
    assert done.returncode != 0
    assert "modality 'depth' is absent in deployment subset 'rgb'" in one_line_error(done)


def test_editing_a_plugin_file_gives_a_new_run_id(tmp_path):
    plugin = tmp_path / "pooled.py"
    source = LEAKY.format(predict=LEAKY_PREDICT).replace("leaky", "pooled")
    plugin.write_text(source)
    first = plan_run(Registry.load(plugins=[str(plugin)]), "pooled", "synth-rgbd-cls", 0)
    again = plan_run(Registry.load(plugins=[str(plugin)]), "pooled", "synth-rgbd-cls", 0)
    plugin.write_text(source.replace("nn.Linear(len(ctx.modalities)", "nn.Linear(1 * len(ctx.modalities)"))
    edited = plan_run(Registry.load(plugins=[str(plugin)]), "pooled", "synth-rgbd-cls", 0)
    assert first.run_id == again.run_id != edited.run_id
    assert first.plugin.source_hash and first.plugin.source_hash != edited.plugin.source_hash
    assert first.identity["sources"]["method"] == first.plugin.source_hash


def test_source_hash_reaches_the_record_and_splits_leaderboard_variants(tmp_path, monkeypatch):
    from mmbench.results import variant_key

    plugin = tmp_path / "tiny.py"
    plugin.write_text(textwrap.dedent('''
        from mmbench import ALL_KINDS, MethodSpec, hookimpl
        from mmbench_baselines import FusionConfig
        from mmbench_baselines.models import build_fusion

        @hookimpl
        def mmbench_methods():
            return [MethodSpec(name="tiny", description="fusion in a file", build=build_fusion,
                               config=FusionConfig, kinds=ALL_KINDS, min_modalities=2)]
    '''))
    registry = Registry.load(plugins=[str(plugin)])
    overrides = {**FAST_OVERRIDES, "recipe.epochs": "1"}
    record, _ = make_runner(registry, tmp_path / "a").run(plan_run(registry, "tiny", "synth-rgbd-cls", 0, overrides))
    plugin.write_text(plugin.read_text() + "\n# edited\n")
    registry = Registry.load(plugins=[str(plugin)])
    edited, _ = make_runner(registry, tmp_path / "b").run(plan_run(registry, "tiny", "synth-rgbd-cls", 0, overrides))
    assert record.method.source_hash and record.method.source_hash != edited.method.source_hash
    assert record.provenance.plugin_sources["tiny"] == record.method.source_hash
    assert record.run_id != edited.run_id and record.metrics == edited.metrics
    assert variant_key(record) != variant_key(edited)  # the leaderboard never merges two codes


@pytest.mark.parametrize("explicit", [
    {"teacher": "ms"}, {"teacher": "ms", "student": "sar"}, {"scenario": "cross-modal"},
    {"scenario": "cross-modal", "teacher": "ms", "student": "sar"},
])
def test_equivalent_distillation_settings_are_one_run(registry, explicit):
    default = plan_run(registry, "kd", "synth-mssar-cls", 0)
    assert plan_run(registry, "kd", "synth-mssar-cls", 0, explicit).run_id == default.run_id
    assert (default.config.teacher, default.config.student, default.config.scenario) == ("ms", "sar", "cross-modal")
    multi = plan_run(registry, "kd", "synth-mssar-cls", 0, {"scenario": "multi-modal"})
    assert multi.run_id == plan_run(registry, "kd", "synth-mssar-cls", 0, {"teacher": "ms+sar"}).run_id
    assert multi.run_id != default.run_id


def test_ctkd_weights_left_unset_equal_the_explicit_defaults(registry):
    unset = plan_run(registry, "ctkd", "synth-mssar-cls", 0)
    explicit = plan_run(registry, "ctkd", "synth-mssar-cls", 0, {"ce_weight": "0.1", "kd_weight": "0.9",
                                                                  "dkd_weight": "0"})
    assert unset.run_id == explicit.run_id and unset.config.ce_weight == 0.1
    assert plan_run(registry, "ctkd", "synth-mssar-cls", 0, {"base": "dkd"}).config.ce_weight == 1.0


def test_dataset_revision_is_refused_for_generated_data(tmp_path):
    done = run_cli("run", "--set", "dataset.revision=abc123", "--out", str(tmp_path))
    line = one_line_error(done)
    assert "dataset.revision applies to single-repository hub datasets only" in line and "generated locally" in line
    assert not (tmp_path / "synth-rgbd-cls").exists()


def _array_task(input_size, image_shape=(1, 6, 10)):
    def generate(split):
        rng = np.random.default_rng(0 if split == "train" else 1)
        return {"img": rng.normal(size=(20, *image_shape)).astype(np.float32),
                "vec": rng.normal(size=(20, 3)).astype(np.float32), "target": rng.integers(2, size=20)}

    dataset = DatasetSpec(name="arr", description="", modalities={"img": 1, "vec": 3},
                          source=ArraySource(generate, version="1"))
    task = TaskSpec(name="arr-cls", description="", dataset="arr", kind="classification", num_classes=2,
                    input_size=input_size, recipes={"smoke": Recipe(epochs=1, width=8)})
    return task, dataset


def test_swapped_input_size_is_refused_before_anything_is_cached():
    from mmbench.data.arrays import load_task_data

    task, dataset = _array_task(input_size=(10, 6))  # samples are 6 high, 10 wide
    with pytest.raises(MMBenchError, match=r"input_size is \(height, width\) = \(10, 6\) but dataset 'arr' decodes "
                                           r"img as 6×10.*did you mean \(6, 10\)\?"):
        load_task_data(task, dataset, task.recipe("smoke"))
    task, dataset = _array_task(input_size=(12, 20))  # same orientation, larger: resized
    assert load_task_data(task, dataset, task.recipe("smoke")).shapes == {"img": (1, 12, 20), "vec": (3,)}


def test_array_source_goes_straight_into_the_cache_with_statistics():
    from mmbench.data.arrays import load_task_data

    task, dataset = _array_task(input_size=None)
    data = load_task_data(task, dataset, task.recipe("smoke"))
    generated = dataset.source.generate("train")
    train_rows = np.concatenate([data.train.indices, data.val.indices])
    assert len(train_rows) == 20 and len(data.val) == 2  # 10 % carved for validation
    stored = data.train.arrays["img"][np.sort(train_rows)].astype(np.float32)
    assert np.allclose(stored, generated["img"], atol=1e-2)  # float16 storage
    assert np.allclose(data.stats["vec"][0], generated["vec"].mean(axis=0), atol=1e-5)
    assert dataset.revision == "arrays-v1"


@pytest.mark.parametrize("arrays, message", [
    ({"img": np.zeros((4, 1, 6, 10)), "target": np.zeros(4)}, "returned no vec"),
    ({"img": np.zeros((4, 1, 6, 10)), "vec": np.zeros((3, 3)), "target": np.zeros(4)}, "vec has 3"),
    ([1, 2], "must return a dict of arrays"),
])
def test_array_source_mistakes_are_one_clear_error(arrays, message):
    from mmbench.data.arrays import load_task_data

    dataset = DatasetSpec(name=f"bad-{message[:6].replace(' ', '')}", description="", modalities={"img": 1, "vec": 3},
                          source=ArraySource(lambda split: arrays, version="1"))
    task = TaskSpec(name="bad", description="", dataset=dataset.name, kind="classification", num_classes=2,
                    recipes={"smoke": Recipe(epochs=1)})
    with pytest.raises(MMBenchError, match=message):
        load_task_data(task, dataset, task.recipe("smoke"))


def test_threads_are_set_and_recorded(tmp_path):
    done = run_cli("run", "--threads", "1", *FAST, "--set", "recipe.epochs=1", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    record = json.loads(next(tmp_path.rglob("*.json")).read_text())
    assert record["provenance"]["threads"] == 1
    assert "invalid --threads 0" in one_line_error(run_cli("run", "--threads", "0", "--out", str(tmp_path)))


def test_default_threads_follow_the_cpu_affinity_and_sweep_shares(monkeypatch):
    import os

    from mmbench import threads
    from mmbench.sweeps.executors import LocalExecutor

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert threads.available_cores() == 4 and threads.default_threads() == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert threads.default_threads() == 2
    assert LocalExecutor(out=None, jobs=2).extra[-2:] == ["--threads", "2"]
    assert LocalExecutor(out=None, jobs=4).extra[-2:] == ["--threads", "1"]
    with pytest.raises(MMBenchError, match=r"--jobs=8 runs more processes side by side than the 4 core\(s\)"):
        LocalExecutor(out=None, jobs=8)


SWEEP_PLUGIN = '''
from mmbench import ALL_KINDS, MethodSpec, hookimpl
from mmbench_baselines import FusionConfig
from mmbench_baselines.models import build_fusion

@hookimpl
def mmbench_methods():
    return [MethodSpec(name="plugged", description="fusion from a file plugin", build=build_fusion,
                       config=FusionConfig, kinds=ALL_KINDS, min_modalities=2)]
'''


@pytest.mark.slow
@pytest.mark.parametrize("package, executor", [
    (None, ["--executor", "local", "--jobs", "2"]),
    ("submitit", ["--executor", "slurm", "--submitit-cluster", "local"]),
    ("ray", ["--executor", "ray", "--cpus-per-run", "1"]),
])
def test_sweep_passes_its_plugins_to_every_executor(package, executor, tmp_path):
    if package:
        pytest.importorskip(package)
    plugin = tmp_path / "plugged.py"
    plugin.write_text(SWEEP_PLUGIN)
    tiny = ["--set", "recipe.epochs=1", "--set", "recipe.limit_train=96", "--set", "recipe.limit_eval=48",
            "--set", "recipe.width=8", "--set", "recipe.batch_size=32"]
    done = run_cli("--plugin", str(plugin), "sweep", "--methods", "plugged", "--tasks", "synth-rgbd-cls",
                   "--seeds", "0-1", *tiny, "--out", str(tmp_path / "runs"), *executor, env={"COLUMNS": "200"},
                   timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    records = [json.loads(p.read_text()) for p in (tmp_path / "runs").rglob("plugged/*.json")]
    assert len(records) == 2 and all(r["status"] == "completed" for r in records)
    assert all(r["provenance"]["plugin_sources"]["plugged"] == r["method"]["source_hash"] for r in records)
    expected_threads = 1 if package else max(len(__import__("os").sched_getaffinity(0)) // 2, 1)
    assert {r["provenance"]["threads"] for r in records} == {expected_threads}
