"""The command line as a user meets it: start-up cost, listings, and one clear line per bad input."""

import json
import subprocess
import sys

import pytest

from conftest import FAST, one_line_error, run_cli


def imports_torch(*args: str) -> bool:
    code = (
        "import sys; from mmbench.cli import main\n"
        f"try:\n    main({list(args)!r})\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NOTORCH')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return result.stdout.strip().splitlines()[-1] == "TORCH"


@pytest.mark.parametrize("args", [("--help",), ("list",), ("list", "--json"), ("plugins",), ("run", "--help")])
def test_help_and_listings_do_not_import_torch(args):
    assert not imports_torch(*args)


def test_list_json_names_everything():
    result = run_cli("list", "--json")
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert {m["name"] for m in listing["methods"]} >= {"unimodal", "fusion", "fusion-dropout", "se-fusion"}
    tasks = {t["name"]: t for t in listing["tasks"]}
    assert tasks["synth-rgbdi-pad"]["metric"] == "acer"
    datasets = {d["name"]: d for d in listing["datasets"]}
    assert datasets["synth-rgbd-cls"]["revision"].startswith("generator-v")


@pytest.mark.parametrize(("args", "expected"), [
    (["--method", "fusion-drop"], "unknown method 'fusion-drop'. Did you mean 'fusion-dropout'?"),
    (["--task", "synth-rgbd-clss"], "Did you mean 'synth-rgbd-cls'?"),
    (["--set", "pp=0.3"], "unknown option 'pp'. Did you mean 'p'?"),
    (["--set", "p=lots"], "invalid value 'lots' for p: expected float"),
    (["--set", "p=1.5"], "p must be in [0, 1)"),
    (["--set", "recipe.epochs=zero"], "invalid value 'zero' for recipe.epochs"),
    (["--set", "noequals"], "expected key=value"),
    (["--seeds", "3-1"], "invalid seed range '3-1'"),
    (["--method", "unimodal", "--set", "modality=ir"], "modality 'ir' is not one of the task's (rgb, depth)"),
    (["--profile", "huge"], "has no 'huge' profile"),
    (["--device", "cuda:0"], "no CUDA device is available"),
])
def test_bad_input_is_one_clear_line(args, expected, tmp_path):
    result = run_cli("run", *args, "--out", str(tmp_path / "runs"))
    assert expected in one_line_error(result)
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("*.json"))


def test_unwritable_out(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    line = one_line_error(run_cli("run", "--out", str(blocker / "runs")))
    assert "runs is a file, not a folder; choose a writable --out directory" in line


def test_debug_shows_traceback(tmp_path):
    result = run_cli("run", "--method", "nope", "--debug", "--out", str(tmp_path))
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_broken_plugin_is_one_line_and_others_still_run(tmp_path):
    bad = tmp_path / "broken_plugin.py"
    bad.write_text("import not_a_module_anywhere\n")
    result = run_cli("--plugin", str(bad), "plugins")
    assert result.returncode == 0 and "broken" in result.stdout
    listed = {p["name"]: p for p in json.loads(run_cli("--plugin", str(bad), "plugins", "--json").stdout)}
    assert "No module named 'not_a_module_anywhere'" in listed["broken_plugin"]["error"]
    assert listed["baselines"]["error"] is None
    result = run_cli("--plugin", str(bad), "list", "methods")
    assert result.returncode == 0 and "fusion" in result.stdout
    assert "plugin 'broken_plugin'" in result.stderr


def test_method_that_cannot_serve_task_kind(tmp_path):
    plugin = tmp_path / "clsonly.py"
    plugin.write_text(
        "from mmbench import MethodSpec, hookimpl\n"
        "@hookimpl\n"
        "def mmbench_methods():\n"
        "    return [MethodSpec(name='cls-only', description='x', build=lambda t, c, x: None,"
        " kinds=frozenset({'classification'}))]\n"
    )
    line = one_line_error(run_cli("--plugin", str(plugin), "run", "--method", "cls-only", "--task", "synth-rgbd-seg",
                                  "--out", str(tmp_path / "runs")))
    assert "supports classification tasks; 'synth-rgbd-seg' is a segmentation task" in line


@pytest.mark.slow
def test_run_several_seeds_prints_table_and_skips_recorded(tmp_path):
    out = tmp_path / "runs"
    args = ["run", "--method", "fusion", "--task", "synth-rgbd-cls", "--seeds", "0-1", *FAST, "--out", str(out)]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    records = sorted((out / "synth-rgbd-cls" / "fusion").glob("*.json"))
    assert len(records) == 2
    assert "±" in first.stdout and "mean" in first.stdout
    second = run_cli(*args)
    assert second.returncode == 0 and second.stderr.count("already recorded") == 2
    assert sorted((out / "synth-rgbd-cls" / "fusion").glob("*.json")) == records


def test_task_with_unknown_dataset(tmp_path):
    plugin = tmp_path / "orphan.py"
    plugin.write_text(
        "from mmbench import Recipe, TaskSpec, hookimpl\n"
        "@hookimpl\n"
        "def mmbench_tasks():\n"
        "    return [TaskSpec(name='orphan', description='x', dataset='synth-rgbd-clss', kind='classification',"
        " num_classes=2, recipes={'smoke': Recipe()})]\n"
    )
    line = one_line_error(run_cli("--plugin", str(plugin), "run", "--task", "orphan", "--out", str(tmp_path / "r")))
    assert "task 'orphan' uses a dataset that is not available: unknown dataset 'synth-rgbd-clss'" in line
    assert "Did you mean 'synth-rgbd-cls'?" in line


@pytest.mark.slow
def test_nan_loss_and_corrupt_checkpoint_through_the_cli(tmp_path):
    from conftest import NAN_PLUGIN

    plugin = tmp_path / "nanplugin.py"
    plugin.write_text(NAN_PLUGIN.format(bad_step=3))
    out = tmp_path / "runs"
    result = run_cli("--plugin", str(plugin), "run", "--method", "goes-nan", *FAST, "--out", str(out))
    line = one_line_error(result)
    assert "loss term 'aux' became non-finite at epoch 1" in line and "marked failed" in line
    (record,) = out.rglob("*.json")
    assert json.loads(record.read_text())["status"] == "failed"

    checkpoint = record.with_suffix(".ckpt")
    checkpoint.write_bytes(b"\x80\x02not a checkpoint")
    result = run_cli("--plugin", str(plugin), "run", "--method", "goes-nan", *FAST, "--out", str(out), "--resume")
    assert "is corrupt or truncated" in one_line_error(result) and "delete it" in result.stderr


def test_check_plugin_reports_each_spec(tmp_path):
    plugin = tmp_path / "halfgood.py"
    plugin.write_text(
        "from mmbench import MethodSpec, hookimpl\n"
        "from mmbench_baselines import FusionConfig; from mmbench_baselines.models import build_fusion\n"
        "def bad(task, config, ctx):\n"
        "    return object()\n"
        "def crash(task, config, ctx):\n"
        "    raise TypeError('bad layer size')\n"
        "@hookimpl\n"
        "def mmbench_methods():\n"
        "    return [MethodSpec(name='good', description='', build=build_fusion, config=FusionConfig,"
        " kinds=frozenset({'classification'})),\n"
        "            MethodSpec(name='bad', description='', build=bad, kinds=frozenset({'classification'})),\n"
        "            MethodSpec(name='crash', description='', build=crash, kinds=frozenset({'classification'}))]\n"
    )
    result = run_cli("--plugin", str(plugin), "check-plugin", "halfgood")
    assert result.returncode == 1, result.stderr
    flat = " ".join(result.stdout.split())
    assert "good │ ok" in flat and "failed" in flat and "MethodModule" in flat
    assert "TypeError: bad layer size" in flat  # any exception from plugin code is a failed check
    assert "Did you mean 'halfgood'" in one_line_error(run_cli("--plugin", str(plugin), "check-plugin", "halfgod"))


def test_the_datasets_table_shows_short_revisions_and_the_json_whole_ones(capsys, monkeypatch):
    """EuroSAT's two joined 40-character shas crushed every other column of the table."""
    import json as json_module

    from mmbench.cli import main

    monkeypatch.setenv("COLUMNS", "140")
    assert main(["list", "datasets"]) == 0
    table = capsys.readouterr().out
    assert "1ce6f1bfb56d+0c8997d72b71" in table and "1ce6f1bfb56db63fd91b6ecc466ea67f2509774c" not in table
    assert main(["list", "datasets", "--json"]) == 0
    datasets = {d["name"]: d for d in json_module.loads(capsys.readouterr().out)["datasets"]}
    assert datasets["eurosat-mssar"]["revision"] == ("1ce6f1bfb56db63fd91b6ecc466ea67f2509774c+"
                                                     "0c8997d72b71af1ff162e33ab0bce265d9430083")
