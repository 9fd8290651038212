"""The plugin author's path: check-plugin's messages and options, required MethodSpec.kinds, what
`mmbench list` shows and how it behaves in a pipe, plugin files that are missing, disabled or
clash with installed plugins, 1-based epochs for observers, quiet dataset generators."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from conftest import one_line_error, run_cli
from mmbench import ALL_KINDS, MethodSpec, MMBenchError
from mmbench.plugins import Registry

CRASHING = textwrap.dedent('''
    from mmbench import MethodSpec, hookimpl
    from mmbench_baselines import FusionConfig
    from mmbench_baselines.models import build_fusion

    def build(task, config, ctx):
        if task.kind == "anti-spoofing":
            raise ValueError(f"no anti-spoofing head (scale={config.scale})")
        return build_fusion(task, FusionConfig(), ctx)

    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Config:
        scale: float = 1.0
        """How much to scale by."""

    @hookimpl
    def mmbench_methods():
        return [MethodSpec(name="half", description="fails on anti-spoofing", build=build, config=Config,
                           kinds=frozenset({"classification", "anti-spoofing"}))]
''')


def test_check_plugin_names_the_conformance_task_and_kind(tmp_path):
    plugin = tmp_path / "half.py"
    plugin.write_text(CRASHING)
    done = run_cli("--plugin", str(plugin), "check-plugin", "half", "--set", "scale=3", env={"COLUMNS": "300"})
    assert done.returncode == 1, done.stderr
    flat = " ".join(done.stdout.split())
    assert "on conformance task 'conformance-anti-spoofing-rgb-depth-ir' (anti-spoofing): " \
           "ValueError: no anti-spoofing head (scale=3.0)" in flat
    assert "Traceback" not in done.stderr
    debug = run_cli("--plugin", str(plugin), "check-plugin", "half", "--debug")
    assert "Traceback (most recent call last)" in debug.stderr and "raise ValueError" in debug.stderr
    assert "unknown option 'nope'" in " ".join(
        run_cli("--plugin", str(plugin), "check-plugin", "half", "--set", "nope=1", env={"COLUMNS": "300"}).stdout.split())


def test_check_plugin_accepts_a_distribution_name():
    from mmbench.cli.check import _select

    registry = Registry.load()
    chosen = _select(registry, ["mmbench"])
    assert {p.name for p in chosen} == {p.name for p in registry.plugins if p.distribution == "mmbench"}
    assert [p.name for p in _select(registry, ["kd"])] == ["kd"]
    with pytest.raises(MMBenchError, match="unknown plugin 'nosuch'"):
        _select(registry, ["nosuch"])


def test_method_spec_must_declare_kinds():
    with pytest.raises(MMBenchError, match="method 'x' does not declare kinds: set MethodSpec\\(kinds=...\\)"):
        MethodSpec(name="x", description="", build=lambda *a: None)
    with pytest.raises(MMBenchError, match="unknown task kind\\(s\\) detection"):
        MethodSpec(name="x", description="", build=lambda *a: None, kinds=frozenset({"detection"}))
    assert MethodSpec(name="x", description="", build=lambda *a: None, kinds=ALL_KINDS).kinds == ALL_KINDS


def test_undeclared_kinds_make_the_plugin_broken_with_that_line(tmp_path):
    plugin = tmp_path / "nokinds.py"
    plugin.write_text("from mmbench import MethodSpec, hookimpl\n@hookimpl\ndef mmbench_methods():\n"
                      "    return [MethodSpec(name='nokinds', description='', build=lambda t, c, x: None)]\n")
    registry = Registry.load(plugins=[str(plugin)], entry_points=False)
    assert "does not declare kinds" in registry.broken[0].error


def test_one_spec_instead_of_a_list_says_so(tmp_path):
    plugin = tmp_path / "single.py"
    plugin.write_text("from mmbench import MethodSpec, hookimpl, ALL_KINDS\n@hookimpl\ndef mmbench_methods():\n"
                      "    return MethodSpec(name='one', description='', build=print, kinds=ALL_KINDS)\n")
    registry = Registry.load(plugins=[str(plugin)], entry_points=False)
    assert registry.broken[0].error == "mmbench_methods() returned one MethodSpec; return a list of them: [MethodSpec(...)]"


@pytest.mark.parametrize("target, message", [
    ("nope.py", "plugin file nope.py does not exist"),
    ("no_such_module_anywhere", "plugin module 'no_such_module_anywhere' cannot be found"),
])
def test_missing_plugin_is_an_error_not_a_warning(target, message, tmp_path):
    assert message in one_line_error(run_cli("--plugin", target, "list", cwd=tmp_path))
    assert message in one_line_error(run_cli("list", env={"MMBENCH_PLUGINS": target}, cwd=tmp_path))


def test_disable_and_clash_with_an_installed_plugin(tmp_path):
    clash = tmp_path / "kd.py"
    clash.write_text("from mmbench import hookimpl\n@hookimpl\ndef mmbench_methods():\n    return []\n")
    registry = Registry.load(plugins=[str(clash)])
    broken = [p for p in registry.broken if p.module == str(clash)]
    assert broken and "its name 'kd' is already the installed plugin from mmbench" in broken[0].error
    assert "kd" in registry.names("method")  # the installed plugin still works
    assert "kd" not in Registry.load(disabled=["kd"]).names("method")
    done = run_cli("list", "methods", "--json", env={"MMBENCH_DISABLE": "kd,mmanet"})
    names = {m["name"] for m in json.loads(done.stdout)["methods"]}
    assert "dkd" not in names and "mmanet" not in names and "fusion" in names
    plugins = json.loads(run_cli("plugins", "--json", "--disable", "kd").stdout)
    assert {"name": "kd", "status": "disabled"} in plugins


def test_list_in_a_pipe_json_lists_and_one_method_in_full():
    done = subprocess.run(f"set -o pipefail; {sys.executable} -m mmbench list | head -2", shell=True,
                          executable="/bin/bash", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "BrokenPipe" not in done.stderr and "Exception" not in done.stderr, done.stderr
    listing = json.loads(run_cli("list", "--json").stdout)
    kd = next(m for m in listing["methods"] if m["name"] == "kd")
    assert kd["kinds"] == ["anti-spoofing", "classification"]
    mfeat = next(d for d in listing["datasets"] if d["name"] == "uci-mfeat")
    assert isinstance(mfeat["modalities"], dict) and mfeat["modalities"]["fou"] == 76
    described = json.loads(run_cli("list", "methods", "dkd", "--json").stdout)
    options = {o["name"]: o for o in described["options"]}
    assert options["warmup"]["default"] == "20" and options["warmup"]["type"] == "int"
    assert "warm-up" in options["warmup"]["doc"]
    assert described["kinds"] == ["anti-spoofing", "classification"]
    task = json.loads(run_cli("list", "tasks", "synth-rgbd-seg", "--json").stdout)
    assert task["deployment subsets"] == ["rgb+depth", "rgb", "depth"]
    assert "Did you mean 'dkd'" in one_line_error(run_cli("list", "methods", "dkdd"))


def test_names_never_wrap_in_a_narrow_table():
    done = run_cli("list", "methods", env={"COLUMNS": "60"})
    assert done.returncode == 0
    first_column = [line.split("│")[1].strip() for line in done.stdout.splitlines() if line.count("│") > 2]
    assert "fusion-dropout" in first_column and "esanet-dropout" in first_column


OBSERVER_AND_NOISY_GENERATOR = textwrap.dedent('''
    from pathlib import Path

    from mmbench import DatasetSpec, GeneratorSource, Recipe, TaskSpec, hookimpl

    LOG = Path(__file__).with_suffix(".epochs")

    @hookimpl
    def mmbench_epoch_end(run, epoch, logs):
        with LOG.open("a") as handle:
            handle.write(f"{epoch}\\n")

    def generate(out_dir):
        import datasets
        import numpy as np

        (out_dir / "data").mkdir()
        for split, count in (("train", 40), ("test", 20)):
            rng = np.random.default_rng(len(split))
            rows = {"a": rng.normal(size=(count, 4)).tolist(), "b": rng.normal(size=(count, 3)).tolist(),
                    "label": rng.integers(2, size=count).tolist()}
            datasets.Dataset.from_dict(rows).to_parquet(str(out_dir / "data" / f"{split}.parquet"))

    def decode(row):
        import numpy as np
        return {"a": np.asarray(row["a"], np.float32), "b": np.asarray(row["b"], np.float32),
                "target": np.asarray(row["label"])}

    @hookimpl
    def mmbench_datasets():
        return [DatasetSpec(name="noisy", description="", modalities={"a": 4, "b": 3}, decode=decode,
                            source=GeneratorSource(generate, version="1",
                                                   data_files={"train": "data/train.parquet",
                                                               "test": "data/test.parquet"}))]

    @hookimpl
    def mmbench_tasks():
        return [TaskSpec(name="noisy-cls", description="", dataset="noisy", kind="classification",
                         num_classes=2, recipes={"smoke": Recipe(epochs=2, batch_size=8, width=8)})]
''')


def test_observers_get_1_based_epochs_and_generators_stay_quiet(tmp_path):
    plugin = tmp_path / "observed.py"
    plugin.write_text(OBSERVER_AND_NOISY_GENERATOR)
    done = run_cli("--plugin", str(plugin), "run", "--method", "fusion", "--task", "noisy-cls", "--out", str(tmp_path / "r"))
    assert done.returncode == 0, done.stderr
    assert plugin.with_suffix(".epochs").read_text().split() == ["1", "2"]
    assert "epoch 1/2" in done.stderr and "epoch 0/" not in done.stderr
    assert "Creating parquet" not in done.stderr and "ba/s" not in done.stderr, done.stderr
