"""Plugin authors' mistakes found at registration, in check-plugin or at run time, each one line:
bad modality names, a hook returning a dict, a dependency asked for an absent modality, private
imports; and ``--plugin`` reaching ``mmbench leaderboard build``."""

import json
import textwrap
from pathlib import Path

import pytest
import torch

from mmbench.cli import main
from mmbench.plugins import Registry

COMMITTED = Path(__file__).resolve().parents[1] / "leaderboards" / "runs"

DATASET_PLUGIN = '''
from mmbench import ArraySource, DatasetSpec, hookimpl

@hookimpl
def mmbench_datasets():
    return [DatasetSpec(name="named", description="", modalities={{{name!r}: 3, "b": 2}},
                        source=ArraySource(lambda split: {{}}, version="1"))]
'''


@pytest.mark.parametrize(("name", "message"), [
    ("a/b", "modality name 'a/b' is not allowed: use letters, digits and '_', starting with a letter"),
    ("a+b", "modality name 'a+b' is not allowed"),
    ("", "modality name '' is not allowed"),
    ("index", "modality name 'index' is reserved"),
    ("target", "modality name 'target' is reserved"),
])
def test_a_bad_modality_name_is_one_line_at_registration(tmp_path, name, message):
    plugin = tmp_path / "named.py"
    plugin.write_text(DATASET_PLUGIN.format(name=name))
    (broken,) = Registry.load(plugins=[str(plugin)]).broken
    assert broken.name == "named" and message in broken.error and "\n" not in broken.error


def test_a_hook_returning_a_dict_says_so(tmp_path):
    plugin = tmp_path / "dicty.py"
    plugin.write_text(textwrap.dedent('''
        from mmbench import hookimpl

        @hookimpl
        def mmbench_methods():
            return {"fusion": "x"}
    '''))
    (broken,) = Registry.load(plugins=[str(plugin)]).broken
    assert broken.error == "mmbench_methods() returned a dict; return a list of MethodSpec: [MethodSpec(...), ...]"


def test_a_dependency_asked_for_an_absent_modality_names_itself():
    from mmbench.engine import AbsentModalityError, MethodModule, TrainedModel, restrict_batch

    class Teacher(MethodModule):
        def training_step(self, batch, step):
            return {}

        def predict(self, batch, modalities):
            return batch["rgb"].mean() + batch["depth"].mean()

    teacher = TrainedModel(Teacher(), "fusion", "abc123", ("rgb", "depth"))
    batch = restrict_batch({"rgb": torch.ones(2, 1), "depth": torch.ones(2, 1), "target": torch.zeros(2)}, ("rgb",))
    with pytest.raises(AbsentModalityError, match=r"dependency fusion \(run abc123\) got a batch without modality "
                                                  r"'depth' \(absent in deployment subset 'rgb'\) in predict\(\); pass "
                                                  r"modalities=\.\.\. naming only the present ones"):
        teacher.predict(batch)
    with pytest.raises(AbsentModalityError, match=r"in features\(\)"):
        teacher.features(batch)


PRIVATE = '''
from mmbench import ALL_KINDS, MethodSpec, hookimpl
from mmbench.data.cache import TARGET
from mmbench.engine import Features, RunContext
from mmbench.models import task_loss, not_a_public_name

@hookimpl
def mmbench_methods():
    return [MethodSpec(name="private-user", description=TARGET, build="mmbench_baselines.models:build_fusion",
                       config=__import__("mmbench_baselines").FusionConfig, kinds=ALL_KINDS)]
'''


def test_check_plugin_warns_about_private_imports(tmp_path):
    from mmbench.cli.check import private_import_warnings

    plugin = tmp_path / "private_user.py"
    plugin.write_text(PRIVATE.replace(", not_a_public_name", ""))
    (tmp_path / "helper_mod.py").write_text("from mmbench.records import RunRecord\n")
    plugin.write_text(plugin.read_text() + "import helper_mod\n")
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        registry = Registry.load(plugins=[str(plugin)])
        info = next(p for p in registry.plugins if p.name == "private_user")
        warnings = private_import_warnings(info)
    finally:
        sys.path.remove(str(tmp_path))
    assert len(warnings) == 2, warnings
    assert any("private_user.py line 3: imports the private module mmbench.data.cache" in w for w in warnings)
    assert any("helper_mod.py line 1: imports the private module mmbench.records" in w for w in warnings)
    assert all("not part of the public API (mmbench, mmbench.engine, mmbench.models, mmbench.testing)" in w
               for w in warnings)
    assert not [w for p in Registry.load().plugins for w in private_import_warnings(p)]  # the built-ins: none


@pytest.mark.slow
def test_a_package_written_against_0_1_passes_check_plugin(tmp_path, capsys):
    from test_code_identity import OLD_PACKAGE

    plugin = tmp_path / "old_style.py"
    plugin.write_text(OLD_PACKAGE)
    assert main(["--plugin", str(plugin), "check-plugin", "old_style"]) == 0
    assert "old-style" in capsys.readouterr().out


@pytest.mark.slow
def test_check_plugin_prints_the_warnings(tmp_path, capsys):
    plugin = tmp_path / "private_user.py"
    plugin.write_text(PRIVATE.replace(", not_a_public_name", ""))
    assert main(["--plugin", str(plugin), "check-plugin", "private_user"]) == 0
    assert "warning: plugin 'private_user': private_user.py line 3: imports the private module mmbench.data.cache" in \
        capsys.readouterr().err


def test_leaderboard_build_loads_the_plugin_option(tmp_path):
    """A method of a --plugin file has its config shown on its page, not 'plugin not installed'."""
    from mmbench.leaderboard.site import build_site

    plugin = tmp_path / "siteplug.py"
    plugin.write_text(textwrap.dedent('''
        from dataclasses import dataclass
        from mmbench import ALL_KINDS, MethodSpec, hookimpl

        @dataclass(frozen=True)
        class Config:
            sharpness: float = 2.5

        @hookimpl
        def mmbench_methods():
            return [MethodSpec(name="sharp", description="", build=lambda *a: None, config=Config, kinds=ALL_KINDS)]
    '''))
    record = json.loads(sorted(COMMITTED.glob("cls-mfeat/fusion/*.json"))[0].read_text())
    record["method"].update(name="sharp", plugin="siteplug")
    record["config"] = {"sharpness": 2.5}
    runs = tmp_path / "runs" / "cls-mfeat" / "sharp"
    runs.mkdir(parents=True)
    (runs / f"{record['run_id']}.json").write_text(json.dumps(record))
    build_site([tmp_path / "runs"], tmp_path / "without", reported_dir=None)
    assert "sharpness" not in (tmp_path / "without" / "methods" / "sharp.html").read_text()
    build_site([tmp_path / "runs"], tmp_path / "site", reported_dir=None, plugins=[str(plugin)])
    page = (tmp_path / "site" / "methods" / "sharp.html").read_text()
    assert "sharpness" in page and "2.5" in page
