"""torchrun with 2 CPU processes (gloo): sharded batches, averaged gradients and summed
confusion matrices reproduce a single-process run with the same global batch; rank 0 alone
writes the record."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli

PLUGIN = str(Path(__file__).with_name("ddp_plugin.py"))
ARGS = ["run", "--method", "conv-nobn", "--task", "synth-rgbd-cls", "--no-progress",
        "--set", "recipe.epochs=2", "--set", "recipe.limit_train=256", "--set", "recipe.limit_eval=128",
        "--set", "recipe.batch_size=32", "--set", "recipe.hflip=false", "--set", "recipe.lr=0.01"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metrics(out: Path) -> dict:
    (record,) = list(out.rglob("*.json"))
    return json.loads(record.read_text())


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    single = run_cli("--plugin", PLUGIN, *ARGS, "--out", str(tmp_path / "single"))
    assert single.returncode == 0, single.stderr[-2000:]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(free_port()),
               "-m", "mmbench", "--plugin", PLUGIN, *ARGS, "--out", str(tmp_path / "ddp")]
    ddp = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert ddp.stdout.count("conv-nobn on synth-rgbd-cls — test") == 1  # rank 0 alone reports
    one, two = metrics(tmp_path / "single"), metrics(tmp_path / "ddp")
    assert two["extra"]["world_size"] == 2 and "world_size" not in one["extra"]
    tests = one["dataset"]["sizes"]["test"]
    assert two["dataset"]["sizes"] == one["dataset"]["sizes"]
    for subset, values in one["metrics"]["best"].items():
        assert abs(two["metrics"]["best"][subset]["accuracy"] - values["accuracy"]) <= 1.5 / tests, subset
    for a, b in zip(one["curves"], two["curves"], strict=True):
        assert a["loss"]["ce"] == pytest.approx(b["loss"]["ce"], rel=1e-3)
    assert not list((tmp_path / "ddp").rglob("*.ckpt"))


def test_global_batch_must_divide(tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(free_port()),
               "-m", "mmbench", "--plugin", PLUGIN, *ARGS[:-6], "--set", "recipe.batch_size=33",
               "--set", "recipe.epochs=1", "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "multiple of 2" in done.stderr


@pytest.mark.slow
def test_compile_flag_trains_the_same_model(tmp_path):
    """--compile runs the training step through torch.compile (inductor, CPU here): same data,
    same seed, the same predictions as eager up to float tolerance."""
    eager = run_cli("--plugin", PLUGIN, *ARGS[:-6], "--set", "recipe.epochs=1", "--out", str(tmp_path / "eager"))
    compiled = run_cli("--plugin", PLUGIN, *ARGS[:-6], "--set", "recipe.epochs=1", "--compile",
                       "--out", str(tmp_path / "compiled"))
    assert eager.returncode == 0 and compiled.returncode == 0, compiled.stderr[-2000:]
    one, two = metrics(tmp_path / "eager"), metrics(tmp_path / "compiled")
    assert two["recipe"]["compile"] is True and one["recipe"]["compile"] is False
    assert one["curves"][0]["loss"]["ce"] == pytest.approx(two["curves"][0]["loss"]["ce"], rel=1e-3)


@pytest.mark.slow
def test_a_teacher_is_trained_across_the_ranks_before_its_student(tmp_path):
    """Under torchrun a dependency is an ordinary distributed run: both ranks train it, rank 0
    writes its record and weights, both load it frozen for the student."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(free_port()),
               "-m", "mmbench", "run", "--method", "kd", "--task", "synth-mssar-cls", "--no-progress",
               "--set", "recipe.epochs=1", "--set", "recipe.limit_train=128", "--set", "recipe.limit_eval=64",
               "--set", "recipe.batch_size=32", "--set", "recipe.width=8", "--out", str(tmp_path)]
    ddp = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    (student,) = [json.loads(p.read_text()) for p in tmp_path.glob("synth-mssar-cls/kd/*.json")]
    teachers = {json.loads(p.read_text())["run_id"] for p in tmp_path.glob("synth-mssar-cls/unimodal/*.json")}
    assert student["extra"]["world_size"] == 2 and {d["run_id"] for d in student["dependencies"]} == teachers
    assert len(teachers) == 2 and not list(tmp_path.rglob("*.ckpt"))


def _conditional_branch(rank: int, init_file: str, results) -> None:
    import torch
    import torch.distributed as dist

    from mmbench.engine.distributed import World, average_gradients

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        shared, branch, unused = (torch.nn.Parameter(torch.ones(3)) for _ in range(3))
        loss = (shared * (rank + 1)).sum()
        if rank == 0:  # the branch runs on rank 0's shard only
            loss = loss + (branch * 4).sum()
        loss.backward()
        average_gradients([shared, branch, unused], World(rank, 2))
        results[rank] = (shared.grad.tolist(), branch.grad.tolist(), unused.grad)
    finally:
        dist.destroy_process_group()


def test_a_gradient_on_some_ranks_only_is_averaged_with_zeros(tmp_path):
    """A parameter used on one rank's shard only: the other rank contributes zeros (the flat
    all-reduce would otherwise mismatch); one used nowhere keeps no gradient."""
    import torch.multiprocessing as mp

    results = mp.Manager().dict()
    mp.spawn(_conditional_branch, args=(str(tmp_path / "init"), results), nprocs=2, join=True)
    for rank in (0, 1):
        shared, branch, unused = results[rank]
        assert shared == [1.5] * 3 and branch == [2.0] * 3 and unused is None
