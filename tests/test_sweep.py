"""mmbench sweep: grid expansion and run-id stability, skip-if-recorded, restart after the sweep
is killed, retries and the summary, the local executor with 2 jobs, the teacher lock across
processes, and the optional executors' messages."""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import one_line_error, run_cli
from mmbench.errors import MMBenchError
from mmbench.sweeps import expand, grid_from_mapping, load_grid_file, plan_jobs

TINY = {"recipe.epochs": "1", "recipe.limit_train": "96", "recipe.limit_eval": "48", "recipe.width": "8",
        "recipe.batch_size": "32"}
TINY_ARGS = [arg for key, value in TINY.items() for arg in ("--set", f"{key}={value}")]


def test_grid_expansion_and_stable_run_ids(registry, tmp_path):
    grid = grid_from_mapping({"methods": "kd,fusion,rfnet", "tasks": ["synth-mssar-cls"], "seeds": "0-1",
                              "scenarios": ["cross-modal", "multi-modal"],
                              "set": {"recipe.epochs": ["1", "2"]}}, "test")
    jobs = expand(grid, registry)
    kd = [j for j in jobs if j.method == "kd"]
    fusion = [j for j in jobs if j.method == "fusion"]
    assert len(kd) == 2 * 2 * 2 and len(fusion) == 2 * 2  # scenarios only multiply distillation methods
    assert {dict(j.overrides).get("scenario") for j in kd} == {"cross-modal", "multi-modal"}
    first = plan_jobs(jobs, registry, tmp_path)
    second = plan_jobs(expand(grid, registry), registry, tmp_path)
    assert [p.run_id for p in first] == [p.run_id for p in second]
    dependencies = [p for p in first if p.needed_by]
    valid = [p for p in first if p.status == "pending" and not p.needed_by]
    assert len({p.run_id for p in valid}) == len(valid) == 12
    # kd's references, planned once per (seed, epochs) and run first: teacher ms (cross-modal),
    # teacher ms+sar fused by sum (multi-modal), student sar (shared by both scenarios)
    assert first[:len(dependencies)] == dependencies and len(dependencies) == 3 * 2 * 2
    assert all(p.save_weights and p.level == 0 and p.job.method in ("unimodal", "fusion") for p in dependencies)
    assert sorted(p.needed_by for p in dependencies) == [1] * 8 + [2] * 4
    assert all(p.level == 1 for p in valid if p.job.method == "kd")
    invalid = [p for p in first if p.status == "invalid"]
    assert invalid and all(p.job.method == "rfnet" and "segmentation" in p.reason for p in invalid)


def test_sweep_files(tmp_path, registry):
    toml = tmp_path / "sweep.toml"
    toml.write_text('methods = ["fusion"]\ntasks = ["synth-rgbd-cls"]\nseeds = "0-2"\n[set]\n"recipe.lr" = ["0.1", "0.01"]\n')
    grid = load_grid_file(toml)
    assert grid.seeds == [0, 1, 2] and grid.sets == {"recipe.lr": ["0.1", "0.01"]} and len(expand(grid, registry)) == 6
    yaml = tmp_path / "sweep.yaml"
    yaml.write_text("methods: [fusion]\ntasks: synth-rgbd-cls\nseeds: [3]\n")
    assert load_grid_file(yaml).seeds == [3]
    (tmp_path / "bad.toml").write_text('methods = ["fusion"]\ntask = ["x"]\n')
    with pytest.raises(MMBenchError, match="unknown key"):
        load_grid_file(tmp_path / "bad.toml")
    (tmp_path / "broken.toml").write_text("methods = [")
    with pytest.raises(MMBenchError, match="does not parse"):
        load_grid_file(tmp_path / "broken.toml")


def test_dry_run_lists_and_skips(tmp_path):
    done = run_cli("sweep", "--methods", "fusion,rfnet", "--tasks", "synth-rgbd-cls", "--seeds", "0-1",
                   "--out", str(tmp_path), "--dry-run", env={"COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    assert "4 run(s), 2 to run" in done.stdout and "invalid" in done.stdout
    assert not list(tmp_path.rglob("*.json"))


@pytest.mark.slow
def test_local_sweep_two_jobs_then_skip(tmp_path):
    args = ["sweep", "--methods", "fusion,unimodal", "--tasks", "synth-rgbd-cls", "--seeds", "0", *TINY_ARGS,
            "--out", str(tmp_path), "--jobs", "2"]
    done = run_cli(*args, env={"COLUMNS": "200"})
    assert done.returncode == 0, done.stdout + done.stderr
    records = sorted(tmp_path.rglob("*.json"))
    assert len(records) == 2 and all(json.loads(r.read_text())["status"] == "completed" for r in records)
    again = run_cli(*args, env={"COLUMNS": "200"})
    assert again.returncode == 0 and "2 recorded" in again.stdout
    assert sorted(tmp_path.rglob("*.json")) == records


@pytest.mark.slow
def test_restart_after_kill_runs_only_the_missing(tmp_path):
    args = [sys.executable, "-m", "mmbench", "sweep", "--methods", "fusion", "--tasks", "synth-rgbd-cls",
            "--seeds", "0-2", *TINY_ARGS, "--out", str(tmp_path), "--jobs", "1"]
    sweep = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not list(tmp_path.rglob("*.json")):
        time.sleep(0.2)
    sweep.send_signal(signal.SIGKILL)
    sweep.wait()
    time.sleep(1.0)  # the killed sweep's run dies with it (PR_SET_PDEATHSIG)
    first = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.json")}
    assert 1 <= len(first) < 3
    done = run_cli(*args[3:], env={"COLUMNS": "200"})
    assert done.returncode == 0, done.stdout + done.stderr
    records = list(tmp_path.rglob("*.json"))
    assert len(records) == 3 and len({json.loads(r.read_text())["seed"] for r in records}) == 3
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in first.items())  # not re-run


@pytest.mark.slow
def test_failed_run_is_retried_and_reported(tmp_path):
    done = run_cli("sweep", "--methods", "fusion", "--tasks", "synth-rgbd-cls", "--seeds", "0", *TINY_ARGS,
                   "--set", "recipe.lr=1e30", "--out", str(tmp_path), "--retries", "1", env={"COLUMNS": "250"})
    assert done.returncode == 1
    summary = " ".join(done.stdout.split()).lower()
    assert "failed │ 1" in summary and "loss" in summary and "recipe.lr" in summary  # the run's error line
    log = next((tmp_path / ".sweep" / "logs").glob("*.log")).read_text()
    assert log.count("fusion on synth-rgbd-cls, seed 0") == 2  # first attempt + one retry


def _produce_once(root: str, counter: str, barrier) -> None:
    import torch

    from mmbench.artifacts import ArtifactCache

    def produce():
        with open(counter, "a") as handle:
            handle.write("trained\n")
        time.sleep(1.0)
        return {"w": torch.ones(2)}

    barrier.wait()
    state, _ = ArtifactCache(Path(root)).get_or_create("teacher-key", produce)
    assert float(state["w"].sum()) == 2.0


def test_concurrent_processes_train_a_teacher_once(tmp_path):
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(3)
    counter = tmp_path / "count.txt"
    workers = [context.Process(target=_produce_once, args=(str(tmp_path / "artifacts"), str(counter), barrier))
               for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    assert counter.read_text().count("trained") == 1


@pytest.mark.parametrize("executor, package", [("ray", "ray"), ("slurm", "submitit")])
def test_optional_executors_say_how_to_install(executor, package, tmp_path):
    if importlib.util.find_spec(package) is not None:
        pytest.skip(f"{package} is installed")
    done = run_cli("sweep", "--methods", "fusion", "--tasks", "synth-rgbd-cls", "--out", str(tmp_path),
                   "--executor", executor)
    assert done.returncode == 2 and f"mmbench[{executor}]" in done.stderr and "Traceback" not in done.stderr


def test_gpus_are_assigned_round_robin(monkeypatch, tmp_path):
    from mmbench.sweeps.executors import LocalExecutor

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    executor = LocalExecutor(tmp_path, jobs=2)
    assert [executor._env(i)["CUDA_VISIBLE_DEVICES"] for i in range(4)] == ["2", "5", "2", "5"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert LocalExecutor(tmp_path, jobs=1)._env(0) == {}


@pytest.mark.slow
@pytest.mark.parametrize("package, executor", [
    ("submitit", ["--executor", "slurm", "--submitit-cluster", "local"]),  # submitit's local job array
    ("ray", ["--executor", "ray", "--cpus-per-run", "1"]),                   # a local Ray instance
])
def test_cluster_executors_run_locally(package, executor, tmp_path):
    pytest.importorskip(package)
    args = ["sweep", "--methods", "fusion,unimodal", "--tasks", "synth-rgbd-cls", "--seeds", "0", *TINY_ARGS,
            "--out", str(tmp_path), *executor]
    done = run_cli(*args, env={"COLUMNS": "200"}, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert len(list(tmp_path.rglob("*.json"))) == 2
    if package == "submitit":
        assert list((tmp_path / ".sweep" / "slurm").rglob("*")), "submitit keeps its job folders"


REPRODUCE = Path(__file__).resolve().parents[1] / "leaderboards" / "reproduce"


def test_grid_tables_take_the_files_defaults_and_expand_to_their_union(registry):
    grid = grid_from_mapping({
        "title": "a table", "seeds": "0-1", "profile": "smoke", "set": {"recipe.epochs": ["1"]},
        "grid": [{"methods": ["fusion"], "tasks": ["synth-rgbd-cls"]},
                 {"methods": ["unimodal"], "tasks": ["synth-rgbd-cls"], "seeds": [3],
                  "set": {"modality": ["depth"], "recipe.epochs": ["2"]}}],
    }, "t.toml")
    jobs = expand(grid, registry)
    assert grid.title == "a table" and grid.methods == ["fusion", "unimodal"]
    assert [(j.method, j.seed, dict(j.overrides)) for j in jobs] == [
        ("fusion", 0, {"recipe.epochs": "1"}), ("fusion", 1, {"recipe.epochs": "1"}),
        ("unimodal", 3, {"modality": "depth", "recipe.epochs": "2"})]
    for bad, message in (({"grid": [], "title": "x"}, "one or more"), ({"grid": [{"methods": ["fusion"]}]}, "'tasks'"),
                         ({"grid": [{"methods": ["fusion"], "tasks": ["t"]}], "titel": "x"}, "unknown key")):
        with pytest.raises(MMBenchError, match=message):
            grid_from_mapping(bad, "t.toml")


def test_a_grid_file_keeps_its_methods_but_takes_seeds_from_the_command_line(tmp_path):
    path = REPRODUCE / "osmd-table3.toml"
    result = run_cli("sweep", str(path), "--methods", "fusion", "--dry-run", cwd=tmp_path)
    assert "lists its methods and tasks per [[grid]] table" in result.stderr and result.returncode == 2
    result = run_cli("sweep", str(path), "--seeds", "7", "--dry-run", "--out", str(tmp_path / "runs"), cwd=tmp_path,
                     env={"COLUMNS": "250"})
    assert result.returncode == 0, result.stderr
    assert "OS-MD Table 3" in result.stdout and "seed 7 (privileged=ir)" in result.stdout and "seed 0" not in result.stdout


def test_every_reproduce_file_expands_to_valid_runs_and_covers_its_tables_reported_methods(
        registry, tmp_path, monkeypatch):
    """One sweep file per seed-paper table; with the weights in place every run of each is valid,
    and every reported row of that table that an installed method can run on its task is in it."""
    import pandas as pd
    from test_esanet import esanet_nbt1d_file
    from test_pretrained import write_weights

    from mmbench.sweeps import plan_sweep
    from mmbench.weights import user_weights_dir

    monkeypatch.setenv("MMBENCH_HOME", str(tmp_path / "home"))
    write_weights(tmp_path, monkeypatch, "resnet50")
    user_weights_dir().mkdir(parents=True)
    esanet_nbt1d_file(tmp_path)[0].rename(user_weights_dir() / "r34_NBt1D.pth")
    reported = pd.concat([pd.read_csv(p, dtype=str, keep_default_na=False).assign(paper_file=p.stem)
                          for p in (REPRODUCE.parent / "reported").glob("*.csv")])
    files = sorted(p for p in REPRODUCE.glob("*.toml") if p.name != "site.toml")
    assert [f.name for f in files] == [f"{paper}-table{n}.toml" for paper, tables in
                                       (("discomkd", "12"), ("mmanet", "2345"), ("osmd", "123")) for n in tables]
    for path in files:
        grid = load_grid_file(path)
        planned = plan_sweep(grid, registry, tmp_path / "runs")
        assert planned and not [p for p in planned if p.status == "invalid"], path.name
        assert grid.title and all(part.profile == "full" for part in grid.parts), path.name
        projected = re.search(r"# Projected GPU time \(no GPU here\): [\d.]+ h for (\d+) runs", path.read_text())
        counted = sum(1 for p in planned if not ("cls-tristar" == p.job.task))  # TRISTAR declares no sizes
        assert projected and int(projected.group(1)) == counted, (path.name, "stale projected GPU time")
        paper, table = path.stem.split("-table")
        cells = reported[(reported["paper_file"] == paper) & (reported["table"] == f"Table {table}")
                         & ~reported["method"].isin(["", "TEACHER", "STUDENT"])]
        runs = {(p.job.task, p.job.method) for p in planned}
        for _, cell in cells.iterrows():
            spec, task = registry.method(cell["method"]), registry.task(cell["task"])
            if spec.kinds is None or task.kind in spec.kinds:
                assert (cell["task"], cell["method"]) in runs, (path.name, cell["task"], cell["method"])
            if "customized=true" in cell["config"] and cell["subset"] != "mean":  # a model trained on this subset
                every = "+".join(task.modality_names(registry.dataset_of(task)))
                trained = {dict(p.job.overrides).get("modalities", every) for p in planned
                           if (p.job.task, p.job.method) == (cell["task"], cell["method"])}
                assert cell["subset"] in trained, (path.name, cell["method"], cell["subset"])


def test_estimate_times_each_network_once_and_counts_the_runs(registry):
    import torch

    from mmbench.engine.estimate import estimate_runs, split_sizes
    from mmbench.plan import plan_run

    tiny = {**TINY, "recipe.epochs": "3"}
    plans = [plan_run(registry, method, "synth-rgbdi-pad", seed, tiny) for method in ("fusion", "mmanet")
             for seed in (0, 1)]
    plans.append(plan_run(registry, "fusion", "cls-tristar", 0, {}))  # bring-your-own, no release sizes
    plans.append(plan_run(registry, "fusion", "cls-casia-surf", 0, {}))  # the release's sizes (MMANet §4.1)
    torch.set_num_threads(1)
    fusion, mmanet, tristar, casia = estimate_runs(plans, torch.device("cpu"))
    assert (fusion.runs, mmanet.runs, tristar.runs, casia.runs) == (2, 2, 1, 1)
    assert split_sizes(plans[0]) == fusion.sizes and (fusion.sizes.train, fusion.sizes.val) == (96, 48)
    assert fusion.step_seconds > 0 and fusion.eval_seconds > 0
    assert mmanet.step_seconds > fusion.step_seconds  # MAD / MAR and its teacher are on in the timed state
    assert min(mmanet.step_flops, fusion.step_flops, fusion.eval_flops) > 0
    assert fusion.steps_per_epoch == 96 // 32
    expected = (3 * (3 * fusion.step_seconds + 1 * fusion.eval_seconds) + 2 * 1 * fusion.eval_seconds) / 3600
    assert fusion.hours_per_run == pytest.approx(expected)
    assert fusion.flops_per_run == pytest.approx(3 * (3 * fusion.step_flops + fusion.eval_flops) + 2 * fusion.eval_flops)
    assert fusion.projected_hours(20.0) == pytest.approx(fusion.flops_per_run / 20e12 / 3600)
    assert tristar.sizes is None and tristar.hours_per_run is None and tristar.flops_per_run is None
    smoke = plans[-1].recipe  # limit_train / limit_eval apply to the release sizes
    assert (casia.sizes.train, casia.sizes.val, casia.sizes.test) == (
        min(29_000, smoke.limit_train), min(1_000, smoke.limit_eval), min(57_000, smoke.limit_eval))


def test_operations_are_counted_on_two_samples_and_scale_with_the_batch(registry, monkeypatch):
    """Convolutions and matrix products grow with the batch: the count on two samples, scaled,
    equals the count on the whole batch (segmentation, dense outputs)."""
    import torch

    import mmbench.engine.estimate as estimate
    from mmbench.plan import plan_run

    plan = plan_run(registry, "fusion", "synth-rgbd-seg", 0, {**TINY, "recipe.batch_size": "8",
                                                               "recipe.eval_batch_size": "6"})
    torch.set_num_threads(1)
    _, _, step, evaluation = estimate.time_network(plan, torch.device("cpu"), timed=False)
    monkeypatch.setattr(estimate, "FLOP_BATCH", 8)
    _, _, whole_step, _ = estimate.time_network(plan, torch.device("cpu"), timed=False)
    monkeypatch.setattr(estimate, "FLOP_BATCH", 6)
    _, _, _, whole_evaluation = estimate.time_network(plan, torch.device("cpu"), timed=False)
    assert step == pytest.approx(whole_step, rel=1e-6) and evaluation == pytest.approx(whole_evaluation, rel=1e-6)


def test_estimate_prints_hours_per_run_and_in_all(tmp_path):
    result = run_cli("sweep", "--methods", "fusion", "--tasks", "synth-rgbd-cls,cls-casia-surf", "--seeds", "0-1",
                     *TINY_ARGS, "--estimate", "--out", str(tmp_path / "runs"), cwd=tmp_path, env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "estimated time on CPU" in result.stdout and "fusion on synth-rgbd-cls" in result.stdout
    assert "h for 4 run(s) on CPU (" in result.stdout and "PFLOP)" in result.stdout  # casia: its release sizes
    assert not (tmp_path / "runs").exists()
    projected = run_cli("sweep", "--methods", "fusion", "--tasks", "synth-rgbd-cls,cls-tristar", "--seeds", "0",
                        *TINY_ARGS, "--estimate", "--sustained-tflops", "25", "--out", str(tmp_path / "runs"),
                        cwd=tmp_path, env={"COLUMNS": "200"})
    assert projected.returncode == 0, projected.stderr
    assert "projected time at 25 TFLOP/s sustained (operations counted on CPU)" in projected.stdout
    assert "s / step" not in projected.stdout and "GFLOP / step" in projected.stdout
    assert "1 run(s) of datasets that declare no split sizes are not counted" in projected.stdout
    bad = run_cli("sweep", "--methods", "fusion", "--tasks", "synth-rgbd-cls", *TINY_ARGS, "--estimate",
                  "--sustained-tflops", "0", "--out", str(tmp_path / "runs"), cwd=tmp_path)
    assert "--sustained-tflops must be a positive number" in one_line_error(bad)
