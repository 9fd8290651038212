"""Fault injection: bad input and failing machines never record a wrong result or lose data, and
every failure is one `error:` line with a remedy and the right exit status. One test (or more)
per point of the reliability issue, numbered as there."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import FAST_OVERRIDES, make_runner, one_line_error, run_cli
from mmbench.errors import MMBenchError
from mmbench.plan import plan_run
from mmbench.plugins import Registry

TINY = ["--set", "recipe.epochs=1", "--set", "recipe.limit_train=64", "--set", "recipe.limit_eval=32",
        "--set", "recipe.width=8", "--set", "recipe.batch_size=32"]
TINY_OVERRIDES = dict(item.split("=", 1) for item in TINY[1::2])


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes: 'nothing already recorded was changed'."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@contextlib.contextmanager
def small_filesystem(path: Path, size: str = "2m", readonly: bool = False):
    """A real tmpfs of ``size`` at ``path`` (root only); skips the test where it cannot be mounted."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if readonly else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small file system here ({done.stderr.strip()})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


# -- 1-3: wrong results ---------------------------------------------------------------------------

def test_1_non_finite_recipe_values_are_refused_before_anything_runs(tmp_path):
    for value in ("inf", "nan", "-inf", "1e999"):
        line = one_line_error(run_cli("run", "--set", f"recipe.lr={value}", "--out", str(tmp_path)))
        assert f"invalid value '{value}' for recipe.lr: expected a finite number" in line
    assert not list(tmp_path.rglob("*.json"))


BREAKS = textwrap.dedent('''
    from mmbench import ALL_KINDS, MethodSpec, hookimpl
    from mmbench_baselines import FusionConfig
    from mmbench_baselines.models import build_fusion

    def build_nan_weights(task, config, ctx):
        module = build_fusion(task, FusionConfig(), ctx)
        def on_epoch_end(epoch, num_epochs):
            next(module.parameters()).data.fill_(float("nan"))
        module.on_epoch_end = on_epoch_end
        return module

    def build_nan_predictions(task, config, ctx):
        module = build_fusion(task, FusionConfig(), ctx)
        inner = module.predict_subsets
        module.predict_subsets = lambda batch, subsets: {s: v * float("inf") for s, v in inner(batch, subsets).items()}
        return module

    @hookimpl
    def mmbench_methods():
        return [MethodSpec(name="nan-weights", description="", build=build_nan_weights, config=FusionConfig,
                           kinds=ALL_KINDS, min_modalities=2),
                MethodSpec(name="nan-predictions", description="", build=build_nan_predictions, config=FusionConfig,
                           kinds=ALL_KINDS, min_modalities=2)]
''')


@pytest.mark.parametrize("method, term", [("nan-weights", "weights"), ("nan-predictions", "validation predictions")])
def test_1_non_finite_weights_or_predictions_mark_the_run_failed(method, term, tmp_path):
    from mmbench.engine.runner import RunFailed

    plugin = tmp_path / "breaks.py"
    plugin.write_text(BREAKS)
    registry = Registry.load(plugins=[str(plugin)])
    with pytest.raises(RunFailed, match=f"run stopped: {term} .* marked failed"):
        make_runner(registry, tmp_path).run(plan_run(registry, method, "synth-rgbd-cls", 0, TINY_OVERRIDES))
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "runs").rglob("*.json")]
    assert record["status"] == "failed" and record["metrics"] == {} and record["failure"]["epoch"] == 1


def test_2_seeds_beyond_32_bits_are_refused(tmp_path):
    for seeds in ("4294967296", "0,4294967296", "1" * 5000):
        line = one_line_error(run_cli("run", "--seeds", seeds, "--out", str(tmp_path)))
        assert "seed" in line and len(line) < 300
    assert "between 0 and 4294967295" in one_line_error(run_cli("run", "--seeds", "4294967296", "--out", str(tmp_path)))


# -- 4-8: data lost -----------------------------------------------------------------------------

def test_4_leaderboard_build_never_deletes_a_folder_it_did_not_create(tmp_path):
    runs = Path(__file__).resolve().parent.parent / "leaderboards" / "runs" / "synth-rgbdi-pad"
    sibling = tmp_path / ".site.old"
    (sibling / "notes").mkdir(parents=True)
    (sibling / "notes" / "keep.txt").write_text("mine")
    for _ in range(2):  # the second build replaces the first site
        done = run_cli("leaderboard", "build", str(runs), "--out", str(tmp_path / "site"), "--reported", "none")
        assert done.returncode == 0, done.stderr
    assert (sibling / "notes" / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".site.old", "site"]


def test_5_a_record_of_a_newer_schema_is_never_overwritten(tmp_path, registry):
    plan = plan_run(registry, "fusion-dropout", "synth-rgbd-cls", 0, TINY_OVERRIDES)
    path = tmp_path / "synth-rgbd-cls" / "fusion-dropout" / f"{plan.run_id}.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"schema_version": 99, "run_id": plan.run_id}))
    before = tree(tmp_path)
    line = one_line_error(run_cli("run", *TINY, "--out", str(tmp_path)))
    assert "schema_version 99, newer than this mmbench reads" in line
    line = one_line_error(run_cli("run", *TINY, "--out", str(tmp_path), "--force"))
    assert "newer than this mmbench" in line
    assert tree(tmp_path) == before


def _interrupt_at(epoch_to_stop: int):
    def stop(run, epoch, logs):
        if epoch == epoch_to_stop:
            raise KeyboardInterrupt
    return stop


def test_6_an_existing_checkpoint_is_announced_and_never_replaced_by_a_shorter_one(registry, tmp_path):
    from mmbench.engine.checkpoint import checkpoint_epochs
    from mmbench.engine.runner import RunInterrupted

    the_plan = plan_run(registry, "fusion-dropout", "synth-rgbd-cls", 0, {**FAST_OVERRIDES, "recipe.epochs": "3"})
    checkpoint = tmp_path / "runs" / "synth-rgbd-cls" / "fusion-dropout" / f"{the_plan.run_id}.ckpt"
    with pytest.raises(RunInterrupted):
        make_runner(registry, tmp_path, epoch_log=_interrupt_at(2)).run(the_plan)
    assert checkpoint_epochs(checkpoint) == 2
    said = []
    # restarted without --resume, stopped after one epoch: the message tells what the file holds
    with pytest.raises(RunInterrupted, match=r"checkpoint at .* holds 2 completed epoch\(s\)"):
        make_runner(registry, tmp_path, epoch_log=_interrupt_at(1), log=said.append).run(the_plan)
    assert checkpoint_epochs(checkpoint) == 2
    assert any("checkpoint of this run with 2 completed epoch(s) exists" in s and "--resume" in s for s in said)
    with pytest.raises(RunInterrupted):  # --force may replace it
        make_runner(registry, tmp_path, epoch_log=_interrupt_at(1)).run(the_plan, force=True)
    assert checkpoint_epochs(checkpoint) == 1


def test_7_a_second_identical_run_says_the_first_is_in_progress(registry, tmp_path):
    from mmbench.engine.locks import run_lock

    the_plan = plan_run(registry, "fusion-dropout", "synth-rgbd-cls", 0, TINY_OVERRIDES)
    with run_lock(tmp_path, the_plan.run_id):  # the first run, in progress
        line = one_line_error(run_cli("run", *TINY, "--out", str(tmp_path)))
    assert f"run {the_plan.run_id} is already in progress in another process" in line
    assert not list(tmp_path.rglob("*.json")) and not list(tmp_path.rglob("*.ckpt"))


def test_8_a_checkpoint_garbled_in_the_middle_is_refused(registry, tmp_path):
    from mmbench.engine.checkpoint import load_checkpoint, save_checkpoint

    path = tmp_path / "x.ckpt"
    save_checkpoint(path, {"fingerprint": "f", "epoch": 1, "weights": __import__("torch").ones(1000)})
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(MMBenchError, match="is corrupt \\(its sha256 does not match the one stored with it\\); delete it"):
        load_checkpoint(path)
    path.write_bytes(bytes(data[: len(data) // 3]))
    with pytest.raises(MMBenchError, match="corrupt or truncated"):
        load_checkpoint(path)


# -- 9-10: dies without an error line / leaves debris ----------------------------------------------

@pytest.mark.parametrize("how", ["estimate", "while writing"])
def test_9_a_full_disk_under_mmbench_home_is_one_line(how, tmp_path, monkeypatch):
    import shutil

    from mmbench.data import cache
    from mmbench.data.arrays import load_task_data

    monkeypatch.setenv("MMBENCH_HOME", str(tmp_path / "home"))
    registry = Registry.load()
    task = registry.task("synth-rgbd-cls")
    if how == "estimate":
        monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 2**20, 2**20))
    else:
        def full(self, values):
            raise OSError(errno.ENOSPC, "No space left on device")
        monkeypatch.setattr(cache.NpyWriter, "append", full)
    with pytest.raises(MMBenchError, match=r"not enough space under \$MMBENCH_HOME .*free some space or set MMBENCH_HOME"):
        load_task_data(task, registry.dataset_of(task), task.recipe("smoke"))
    leftovers = [p for p in (tmp_path / "home" / "cache").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_9_a_real_small_filesystem_fills_up_with_a_clear_line(tmp_path):
    with small_filesystem(tmp_path / "tiny", size="2m") as home:
        done = run_cli("run", *TINY, "--out", str(tmp_path / "runs"), env={"MMBENCH_HOME": str(home)})
        line = one_line_error(done)
        assert "MMBENCH_HOME" in line and ("not enough space" in line or "is full" in line), line
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert not [p for p in home.rglob("*") if p.name.endswith(".tmp")]


def test_9_temporaries_of_dead_processes_are_cleaned_on_the_next_start(tmp_path):
    from mmbench.files import atomic_directory

    orphan = tmp_path / ".synth-rgbd-cls-v2.pid999999.abcd1234.tmp"
    (orphan / "data").mkdir(parents=True)
    live = tmp_path / f".other.pid{os.getpid()}.abcd1234.tmp"
    live.mkdir()
    old = time.time() - 3600
    os.utime(orphan, (old, old))
    os.utime(live, (old, old))
    with atomic_directory(tmp_path / "fresh") as tmp:
        (tmp / "x").write_text("1")
    assert not orphan.exists() and live.exists() and (tmp_path / "fresh" / "x").exists()


def test_9_a_dead_process_s_temporary_of_this_host_goes_at_once_whatever_its_age(tmp_path):
    """kill -9 during a cache build, re-run within seconds: the dead build's folder is removed on
    the next start (no 60-second wait, no --rebuild-cache). A fresh one of another host (a shared
    file system, where the pid means nothing) stays."""
    from mmbench.files import _host, atomic_directory

    dead = _dead_pid()
    orphan = tmp_path / f".synth-rgbd-cls-v2.pid{dead}@{_host()}.abcd1234.tmp"
    (orphan / "data").mkdir(parents=True)
    elsewhere = tmp_path / f".synth-rgbd-cls-v2.pid{dead}@another-node.abcd1234.tmp"
    elsewhere.mkdir()
    with atomic_directory(tmp_path / "fresh") as tmp:
        assert tmp.name.startswith(f".fresh.pid{os.getpid()}@{_host()}.")
        (tmp / "x").write_text("1")
    assert not orphan.exists() and elsewhere.exists() and (tmp_path / "fresh" / "x").exists()


def _dead_pid() -> int:
    import subprocess

    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


# -- 11-14: input errors are exit 2 with a remedy, before any data is loaded -----------------------

@pytest.mark.parametrize("args, expected", [
    (["--set", "recipe.weight_decay=-1"], "recipe.weight_decay"),
    (["--set", "recipe.momentum=-0.5"], "recipe.momentum"),
    (["--set", "recipe.backbone=resnet9"], "recipe.backbone='resnet9': choose one of resnet18, resnet34"),
    (["--set", "recipe.step_size=0"], "recipe.step_size"),
    (["--set", "recipe.gamma=0"], "recipe.gamma"),
    (["--seeds", "99999999999999999999999999"], "seeds must be between 0 and"),
    (["--seeds", "0-100000"], "add --yes to confirm"),
    (["--threads", "0"], "invalid --threads 0"),
])
def test_11_bad_values_are_refused_before_any_data_is_loaded(args, expected, tmp_path):
    home = tmp_path / "home"
    line = one_line_error(run_cli("run", *args, "--out", str(tmp_path / "runs"), env={"MMBENCH_HOME": str(home)}))
    assert expected in line
    assert not (home / "cache").exists() and not (home / "generated").exists()


def test_11_serve_port_out_of_range(tmp_path):
    from mmbench.leaderboard.site import SITE_MARKER

    site = tmp_path / "site"
    site.mkdir()
    (site / SITE_MARKER).write_text("")
    assert "--port 70000 is not a TCP port" in one_line_error(run_cli("leaderboard", "serve", str(site), "--port", "70000"))


def test_12_out_and_home_that_are_files_or_read_only(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert "is a file, not a folder; choose a writable --out" in one_line_error(run_cli("run", "--out", str(afile / "r")))
    line = one_line_error(run_cli("run", *TINY, "--out", str(tmp_path / "r"), env={"MMBENCH_HOME": str(afile / "h")}))
    assert "is a file, not a folder; set MMBENCH_HOME" in line
    line = one_line_error(run_cli("leaderboard", "build", str(tmp_path), "--out", str(afile / "site"), "--reported",
                                  str(Path(__file__).resolve().parent.parent / "leaderboards" / "reported")))
    assert "is a file, not a folder; choose another --out" in line


def test_12_read_only_folders(tmp_path):
    with small_filesystem(tmp_path / "ro", readonly=True) as ro:
        assert "is on a read-only file system; choose a writable --out" in one_line_error(
            run_cli("run", "--out", str(ro / "runs")))
        assert "is on a read-only file system; set MMBENCH_HOME" in one_line_error(
            run_cli("run", *TINY, "--out", str(tmp_path / "r"), env={"MMBENCH_HOME": str(ro / "home")}))


def test_12_a_full_disk_while_writing_a_checkpoint_names_the_place(registry, tmp_path, monkeypatch):
    from mmbench import files as mmio

    real = mmio.atomic_write

    def full_for_checkpoints(path, write, mode="wb"):
        if str(path).endswith(".ckpt"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, write, mode)

    monkeypatch.setattr("mmbench.engine.checkpoint.atomic_write", full_for_checkpoints)
    with pytest.raises(MMBenchError, match=r"fusion-dropout is full \(no space left on the device\); free some space"):
        make_runner(registry, tmp_path).run(plan_run(registry, "fusion-dropout", "synth-rgbd-cls", 0, FAST_OVERRIDES))


def _cache_files(home: Path, name: str) -> list[Path]:
    return sorted(home.rglob(name))


@pytest.fixture(scope="module")
def built_home(tmp_path_factory):
    """A $MMBENCH_HOME holding synth-rgbd-cls's generated data and caches."""
    from mmbench.data.arrays import load_task_data

    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MMBENCH_HOME", str(home))
        registry = Registry.load()
        task = registry.task("synth-rgbd-cls")
        load_task_data(task, registry.dataset_of(task), task.recipe("smoke"))
    return home


def _load(home: Path, monkeypatch, rebuild: bool = False):
    from mmbench.data.arrays import load_task_data

    monkeypatch.setenv("MMBENCH_HOME", str(home))
    registry = Registry.load()
    task = registry.task("synth-rgbd-cls")
    return load_task_data(task, registry.dataset_of(task), task.recipe("smoke"), rebuild=rebuild)


@pytest.mark.parametrize("damage", ["truncate", "empty", "labels", "meta"])
def test_13_a_damaged_cache_file_is_named_and_rebuild_cache_repairs_it(damage, built_home, tmp_path, monkeypatch):
    import shutil

    from mmbench.data import cache

    home = tmp_path / "home"
    shutil.copytree(built_home, home)
    target = _cache_files(home / "cache", "target.npy")[0]
    intact = np.load(target)
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:-40])
    elif damage == "empty":
        target.write_bytes(b"")
    elif damage == "labels":
        labels = intact.copy()
        labels[0] = 77
        np.save(target, labels)
    else:
        target = target.with_name("meta.json")
        target.write_text("{")
    with pytest.raises(MMBenchError, match=f"the data cache file {target} .*delete it or run with --rebuild-cache"):
        _load(home, monkeypatch)
    monkeypatch.setattr(cache, "_rebuilt", set())
    data = _load(home, monkeypatch, rebuild=True)
    assert np.array_equal(np.asarray(data.test.arrays["target"]), np.load(_cache_files(home / "cache", "target.npy")[0]))
    assert np.array_equal(np.load(_cache_files(home / "cache", "target.npy")[0]), intact)


def test_13_a_damaged_generated_file_is_named(built_home, tmp_path, monkeypatch):
    import shutil

    home = tmp_path / "home"
    shutil.copytree(built_home / "generated", home / "generated")
    parquet = _cache_files(home / "generated", "train*.parquet")[0]
    parquet.write_bytes(b"PAR1" + os.urandom(64))
    with pytest.raises(MMBenchError, match=f"the data file {parquet} is not readable parquet .*--rebuild-cache"):
        _load(home, monkeypatch)


def test_13_rebuild_cache_through_the_cli(tmp_path):
    env = {"MMBENCH_HOME": str(tmp_path / "home")}
    assert run_cli("run", *TINY, "--out", str(tmp_path / "a"), env=env).returncode == 0
    target = _cache_files(tmp_path / "home", "target.npy")[0]
    target.write_bytes(b"")
    assert "--rebuild-cache" in one_line_error(run_cli("run", *TINY, "--out", str(tmp_path / "b"), env=env))
    done = run_cli("run", *TINY, "--out", str(tmp_path / "b"), "--rebuild-cache", env=env)
    assert done.returncode == 0, done.stderr
    first, second = (json.loads(next(p.rglob("*.json")).read_text()) for p in (tmp_path / "a", tmp_path / "b"))
    assert first["metrics"] == second["metrics"]


def test_14_a_sweep_of_misspelled_or_only_invalid_methods_is_exit_2(tmp_path):
    line = one_line_error(run_cli("sweep", "--methods", "fusion-dropuot,kdd", "--tasks", "synth-rgbd-cls",
                                  "--out", str(tmp_path)))
    assert "unknown method 'fusion-dropuot'. Did you mean 'fusion-dropout'?" in line
    line = one_line_error(run_cli("sweep", "--methods", "rfnet,mmformer", "--tasks", "synth-rgbd-cls",
                                  "--out", str(tmp_path)))
    assert "none of the sweep's 2 run(s) is valid" in line and "segmentation" in line


def test_14_an_unknown_baseline_is_an_error(tmp_path):
    runs = Path(__file__).resolve().parent.parent / "leaderboards" / "runs" / "synth-rgbdi-pad"
    line = one_line_error(run_cli("leaderboard", "build", str(runs), "--out", str(tmp_path / "s"), "--baseline", "fusion-dropuot"))
    assert "unknown baseline method 'fusion-dropuot'. Did you mean 'fusion-dropout'?" in line
    assert not (tmp_path / "s").exists()


# -- 15-16: security and hygiene ------------------------------------------------------------------

def test_15_a_name_that_would_escape_out_is_refused_at_registration(tmp_path):
    plugin = tmp_path / "escape.py"
    plugin.write_text("from mmbench import ALL_KINDS, MethodSpec, hookimpl\n"
                      "from mmbench_baselines import FusionConfig; from mmbench_baselines.models import build_fusion\n@hookimpl\ndef mmbench_methods():\n"
                      "    return [MethodSpec(name='../../../x', description='', build=build_fusion, config=FusionConfig,"
                      " kinds=ALL_KINDS)]\n")
    registry = Registry.load(plugins=[str(plugin)], entry_points=False)
    assert "method name '../../../x' is not allowed" in registry.broken[0].error
    done = run_cli("--plugin", str(plugin), "run", "--method", "../../../x", "--out", str(tmp_path / "out" / "runs"))
    assert "unknown method '../../../x'" in one_line_error(done)
    assert not [p for p in tmp_path.rglob("*") if p.suffix in (".json", ".ckpt")]


def test_16_files_follow_the_umask_and_a_completed_run_leaves_no_debris(registry, tmp_path, monkeypatch):
    monkeypatch.setenv("MMBENCH_HOME", str(tmp_path / "home"))
    old = os.umask(0o022)
    try:
        make_runner(registry, tmp_path).run(plan_run(registry, "fusion-dropout", "synth-rgbd-cls", 0, TINY_OVERRIDES))
    finally:
        os.umask(old)
    record = next((tmp_path / "runs").rglob("*.json"))
    assert record.stat().st_mode & 0o777 == 0o644
    cache_dir = _cache_files(tmp_path / "home", "meta.json")[0].parent
    assert cache_dir.stat().st_mode & 0o777 == 0o755
    generated = next((tmp_path / "home" / "generated").iterdir())
    assert generated.stat().st_mode & 0o777 == 0o755
    names = [p.name for p in tmp_path.rglob("*") if p.is_file()]
    assert not [n for n in names if n.endswith((".tmp", ".ckpt"))]


def test_16_echoed_input_is_short_and_escaped(tmp_path):
    line = one_line_error(run_cli("run", "--set", "recipe.lr=" + "9" * 100_000 + "x", "--out", str(tmp_path)))
    assert len(line) < 400 and "more characters" in line
    line = one_line_error(run_cli("run", "--method", "bad\x1b[31mred\nname", "--out", str(tmp_path)))
    assert "\x1b" not in line and "\\x1b" in line and "\\n" in line


def test_16_argparse_mistakes_are_one_error_line():
    for args in (["run", "--nope"], ["leaderboard"], ["list", "things"], ["run", "--threads", "x"]):
        done = run_cli(*args)
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ") and "--help" in done.stderr, done.stderr


@pytest.mark.slow
def test_16_an_unreachable_hub_is_one_line(tmp_path):
    env = {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf"),
           "MMBENCH_HOME": str(tmp_path / "home")}
    done = run_cli("run", "--task", "seg-nyuv2", "--out", str(tmp_path / "runs"), env=env)
    assert "is not in the local hub cache" in one_line_error(done)
    assert "Retry" not in done.stderr and "127.0.0.1:9" not in done.stderr


def test_16_a_standard_library_module_is_not_a_plugin():
    line = one_line_error(run_cli("list", env={"MMBENCH_PLUGINS": "json"}))
    assert "plugin module 'json' is part of Python's standard library" in line


def test_16_early_failures_leave_no_empty_folders(tmp_path):
    one_line_error(run_cli("run", "--set", "recipe.epochs=0", "--out", str(tmp_path / "runs")))
    one_line_error(run_cli("run", "--task", "cls-casia-surf", "--method", "fusion", "--out", str(tmp_path / "runs"),
                           env={"MMBENCH_DATA": ""}))
    assert [p.name for p in (tmp_path / "runs").rglob("*") if p.is_dir()] in ([], [".locks"])
