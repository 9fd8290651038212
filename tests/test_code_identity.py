"""Edited code never reuses what older code made: a dataset plugin's decode / generate re-keys the
data caches (ArraySource, GeneratorSource, a hub fixture), a helper module of a ``--plugin`` file
or of an editable install re-keys the run id, and versions enter the run id."""

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import make_runner
from mmbench.plan import plan_run
from mmbench.plugins import Registry

OVERRIDES = {"recipe.epochs": "1", "recipe.width": "8", "recipe.batch_size": "16"}

PLUGIN = '''
from mmbench import ArraySource, DatasetSpec, GeneratorSource, HubSource, Recipe, TaskSpec, hookimpl
import {helper} as helper

@hookimpl
def mmbench_datasets():
    return [DatasetSpec(name="edited", description="", modalities={{"a": 4, "b": 3}}, splits=("train", "test"),
                        {source})]

@hookimpl
def mmbench_tasks():
    return [TaskSpec(name="edited-cls", description="", dataset="edited", kind="classification", num_classes=2,
                     recipes={{"smoke": Recipe(epochs=1, batch_size=16, width=8)}})]
'''

SOURCES = {
    "arrays": 'source=ArraySource(helper.generate, version="1")',
    "generator": 'source=GeneratorSource(helper.write, version="1", data_files={"train": "data/train.parquet", '
                 '"test": "data/test.parquet"}), decode=helper.decode',
    "hub": 'source=HubSource("mmbench-tests/edited", "' + "e" * 40 + '", data_files={"train": "data/train.parquet", '
           '"test": "data/test.parquet"}), decode=helper.decode',
}

HELPER = '''
import numpy as np

LABEL_FLIP = {flip}


def rows(split, flip=0):
    rng = np.random.default_rng(0 if split == "train" else 1)
    a, b = rng.normal(size=(64, 4)).astype(np.float32), rng.normal(size=(64, 3)).astype(np.float32)
    return a, b, ((a[:, 0] + b[:, 0] > 0).astype(np.int64) + flip) % 2


def generate(split):
    a, b, target = rows(split, LABEL_FLIP)
    return {{"a": a, "b": b, "target": target}}


def write(out_dir):
    import datasets
    for split in ("train", "test"):
        a, b, target = rows(split)  # decode flips
        (out_dir / "data").mkdir(parents=True, exist_ok=True)
        datasets.Dataset.from_dict({{"a": a.tolist(), "b": b.tolist(), "label": target.tolist()}}).to_parquet(
            str(out_dir / "data" / f"{{split}}.parquet"))


def decode(row):
    label = (np.asarray(row["label"]) + LABEL_FLIP) % 2
    return {{"a": np.asarray(row["a"], np.float32), "b": np.asarray(row["b"], np.float32), "target": label}}
'''


def _hub_fixture() -> None:
    import datasets

    from mmbench.testing import write_hub_fixture

    def columns(split):
        rng = np.random.default_rng(0 if split == "train" else 1)
        a, b = rng.normal(size=(64, 4)), rng.normal(size=(64, 3))
        return {"a": a.tolist(), "b": b.tolist(), "label": (a[:, 0] + b[:, 0] > 0).astype(int).tolist()}

    features = datasets.Features({"a": datasets.Sequence(datasets.Value("float32")),
                                  "b": datasets.Sequence(datasets.Value("float32")), "label": datasets.Value("int64")})
    write_hub_fixture("mmbench-tests/edited", "e" * 40,
                      {f"data/{split}.parquet": columns(split) for split in ("train", "test")}, features)


def _write_plugin(folder: Path, kind: str, flip: int) -> Path:
    helper = f"edited_helper_{kind}"
    (folder / f"{helper}.py").write_text(HELPER.format(flip=flip))
    plugin = folder / f"edited_{kind}.py"
    plugin.write_text(PLUGIN.format(helper=helper, source=SOURCES[kind]))
    return plugin


@pytest.mark.parametrize("kind", ["arrays", "generator", "hub"])
def test_editing_a_dataset_helper_gives_a_new_run_id_new_caches_and_new_numbers(kind, tmp_path, monkeypatch):
    """The decode / generate function lives in a helper module beside the plugin file: editing it
    alone changes the source hash, so the run id, the cache key and the numbers all change."""
    import sys

    monkeypatch.syspath_prepend(str(tmp_path))
    # The two helper versions have one size and may be written within one second: a bytecode cache
    # validated by mtime and size would then serve the first version again.
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    if kind == "hub":
        _hub_fixture()
    records, caches = [], []
    for flip in (0, 1):
        plugin = _write_plugin(tmp_path, kind, flip)
        sys.modules.pop(f"edited_helper_{kind}", None)  # a new process would import the edited helper afresh
        registry = Registry.load(plugins=[str(plugin)])
        plan = plan_run(registry, "fusion", "edited-cls", 0, OVERRIDES)
        record, _ = make_runner(registry, tmp_path / f"runs{flip}").run(plan)
        records.append(record)
        caches.append(sorted(p.parent for p in (_cache_root() / "edited").rglob("meta.json")))
    first, edited = records
    assert first.run_id != edited.run_id
    assert first.provenance.plugin_sources[f"edited_{kind}"] != edited.provenance.plugin_sources[f"edited_{kind}"]
    assert len(caches[1]) > len(caches[0])  # the edited code built caches of its own
    assert first.metrics != edited.metrics  # flipped labels: the numbers moved with the code


def _cache_root() -> Path:
    from mmbench.files import mmbench_home

    return mmbench_home() / "cache"


EDITABLE_PLUGIN = '''
from mmbench import MethodSpec, hookimpl
from edpkg.common import SCALE
import edhelpers

@hookimpl
def mmbench_methods():
    return [MethodSpec(name="ed-fusion", description=f"scaled {SCALE} {edhelpers.NOTE}",
                       build="mmbench_baselines.models:build_fusion", config=__import__("mmbench_baselines").FusionConfig,
                       kinds=frozenset({"classification"}))]
'''


@pytest.fixture
def editable_dist(tmp_path, monkeypatch):
    """An editable install as pip leaves one: a dist-info whose entry point names ``edpkg.plugin``
    (not the package's ``__init__``), a ``.pth`` naming the source folder, which also holds a
    top-level helper module the plugin imports."""
    site, src = tmp_path / "site", tmp_path / "src"
    (src / "edpkg").mkdir(parents=True)
    site.mkdir()
    (src / "edpkg" / "__init__.py").write_text("")
    (src / "edpkg" / "plugin.py").write_text(EDITABLE_PLUGIN)
    (src / "edpkg" / "common.py").write_text("SCALE = 1\n")
    (src / "edhelpers.py").write_text("NOTE = 'a'\n")
    (src / "unrelated.py").write_text("X = 1\n")  # not imported: not part of the plugin's code
    dist = site / "edpkg-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: edpkg\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[mmbench]\ned = edpkg.plugin\n")
    (dist / "direct_url.json").write_text(json.dumps({"url": f"file://{src}", "dir_info": {"editable": True}}))
    (site / "_edpkg.pth").write_text(f"{src}\n")
    (dist / "RECORD").write_text("_edpkg.pth,,\nedpkg-0.1.0.dist-info/METADATA,,\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(src))
    return src


def _editable_plan(registry):
    return plan_run(registry, "ed-fusion", "synth-rgbd-cls", 0, OVERRIDES)


@pytest.mark.parametrize("edited", ["edpkg/common.py", "edhelpers.py"])
def test_editing_a_helper_of_an_editable_install_gives_a_new_run_id(editable_dist, edited):
    first = _editable_plan(Registry.load())
    assert first.plugin.source_hash and first.plugin.version == "0.1.0"
    (editable_dist / "unrelated.py").write_text("X = 2\n")
    assert _editable_plan(Registry.load()).run_id == first.run_id  # a module nobody imports is not the plugin's code
    (editable_dist / edited).write_text((editable_dist / edited).read_text() + "# edited\n")
    again = _editable_plan(Registry.load())
    assert again.plugin.source_hash != first.plugin.source_hash and again.run_id != first.run_id


def test_a_plugin_files_sibling_modules_are_hashed_transitively(tmp_path):
    from mmbench.plugin_source import code_files

    (tmp_path / "plugin.py").write_text("from first import x\nimport os, json\n")
    (tmp_path / "first.py").write_text("from second import y\n")
    (tmp_path / "second.py").write_text("y = 1\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "table.csv").write_text("a,b\n")
    (tmp_path / "first.py").write_text("from second import y\nimport pkg.sub\n")
    (tmp_path / "other.py").write_text("")
    names = {p.relative_to(tmp_path).as_posix() for p in code_files([tmp_path / "plugin.py"], [tmp_path])}
    assert names == {"plugin.py", "first.py", "second.py", "pkg/__init__.py", "pkg/table.csv"}


def test_versions_enter_the_run_id(registry, monkeypatch):
    import mmbench

    plan = plan_run(registry, "fusion", "synth-rgbd-cls", 0)
    assert plan.identity["versions"] == {"mmbench": mmbench.__version__, "task": registry.plugin_of("task", "synth-rgbd-cls").version,
                                         "dataset": registry.plugin_of("dataset", "synth-rgbd-cls").version}
    monkeypatch.setattr(mmbench, "__version__", "99.0.0")
    assert plan_run(registry, "fusion", "synth-rgbd-cls", 0).run_id != plan.run_id


def test_built_in_plugins_have_versions_of_their_own(registry):
    import mmbench_baselines
    import mmbench_synth

    versions = registry.plugin_versions()
    assert versions["baselines"] == mmbench_baselines.__version__ and versions["synth"] == mmbench_synth.__version__
    assert registry.dataset("synth-rgbd-cls").code_identity.startswith(mmbench_synth.__version__)


def test_scenario_is_accepted_with_a_deprecation_warning():
    from mmbench import ALL_KINDS, MethodSpec, MMBenchError

    with pytest.warns(DeprecationWarning, match=r"MethodSpec\(scenario=...\) is deprecated.*use MethodSpec\(family=...\)"):
        spec = MethodSpec(name="old", description="", build=lambda *a: None, kinds=ALL_KINDS, scenario="distillation")
    assert spec.family == "distillation"
    with pytest.raises(MMBenchError, match="family 'teacher' is not one of baseline, incomplete, distillation"):
        MethodSpec(name="bad", description="", build=lambda *a: None, kinds=ALL_KINDS, family="teacher")


OLD_PACKAGE = textwrap.dedent('''
    from mmbench import ALL_KINDS, MethodSpec, hookimpl
    from mmbench_baselines import FusionConfig

    @hookimpl
    def mmbench_methods():
        return [MethodSpec(name="old-style", description="written against mmbench 0.1", kinds=ALL_KINDS,
                           build="mmbench_baselines.models:build_fusion", config=FusionConfig, scenario="baseline")]
''')


def test_a_package_written_against_the_previous_release_still_registers(tmp_path):
    plugin = tmp_path / "old_style.py"
    plugin.write_text(OLD_PACKAGE)
    with pytest.warns(DeprecationWarning):
        registry = Registry.load(plugins=[str(plugin)])
    assert registry.method("old-style").family == "baseline" and not registry.broken
