"""Crash safety through the real CLI: Ctrl-C, SIGTERM (a scheduler's warning) and kill -9 leave a
checkpoint that --resume continues to the same result as an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_cli

ARGS = ["run", "--method", "fusion", "--task", "synth-rgbd-cls", "--set", "recipe.epochs=4",
        "--set", "recipe.limit_train=1536", "--set", "recipe.limit_eval=96", "--set", "recipe.width=8",
        "--no-progress"]


def _default_sigint() -> None:
    # a shell running the suite in the background ignores SIGINT, and children inherit that
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(out):
    return subprocess.Popen([sys.executable, "-m", "mmbench", *ARGS, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
                            preexec_fn=_default_sigint)


def wait_for_checkpoint(out, process, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = list(out.rglob("*.ckpt"))
        if found and process.poll() is None:
            return found[0]
        if process.poll() is not None:
            pytest.fail(f"run ended before a checkpoint appeared: {process.communicate()}")
        time.sleep(0.05)
    pytest.fail("no checkpoint appeared")


def metrics(out):
    (path,) = out.rglob("*.json")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    result = run_cli(*ARGS, "--out", str(out))
    assert result.returncode == 0, result.stderr
    return metrics(out)


@pytest.mark.slow
def test_kill_9_then_resume_gives_the_same_metrics(tmp_path, reference):
    process = start(tmp_path)
    wait_for_checkpoint(tmp_path, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not list(tmp_path.rglob("*.json"))  # nothing half-written
    result = run_cli(*ARGS, "--out", str(tmp_path), "--resume")
    assert result.returncode == 0, result.stderr
    record = metrics(tmp_path)
    assert record["metrics"] == reference["metrics"]
    assert record["extra"]["resumed_from_epoch"] >= 1
    assert not list(tmp_path.rglob("*.ckpt"))


@pytest.mark.slow
@pytest.mark.parametrize("signum, code, said", [(signal.SIGINT, 130, "interrupted"),
                                                (signal.SIGTERM, 143, "terminated (SIGTERM)")])
def test_ctrl_c_or_sigterm_keeps_checkpoint_and_says_how_to_resume(tmp_path, reference, signum, code, said):
    process = start(tmp_path)
    checkpoint = wait_for_checkpoint(tmp_path, process)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {said}; ") and "--resume" in errors[0], stderr
    assert "Traceback" not in stderr
    assert checkpoint.exists() and not list(tmp_path.rglob("*.json"))
    result = run_cli(*ARGS, "--out", str(tmp_path), "--resume")
    assert result.returncode == 0, result.stderr
    assert metrics(tmp_path)["metrics"] == reference["metrics"]


SWEEP_SETS = ARGS[ARGS.index("--set"):ARGS.index("--no-progress")]  # the run's --set options


def _sweep(out) -> list[str]:
    return ["sweep", "--methods", "fusion", "--tasks", "synth-rgbd-cls", "--seeds", "0-1", "--jobs", "2",
            *SWEEP_SETS, "--out", str(out)]


@pytest.mark.slow
@pytest.mark.parametrize("signum, code, said", [(signal.SIGINT, 130, "interrupted"),
                                                (signal.SIGTERM, 143, "terminated (SIGTERM)")])
def test_a_signal_to_a_local_sweep_stops_its_runs_at_their_checkpoints(tmp_path, signum, code, said):
    """SIGTERM to the sweep alone, or Ctrl-C to its process group: both running runs stop at their
    last checkpoint within seconds, the sweep exits 143 / 130 saying how many it stopped, and a
    re-run resumes them (SIGTERM case) to the records of an uninterrupted run."""
    runs = tmp_path / "runs"
    process = subprocess.Popen([sys.executable, "-m", "mmbench", *_sweep(runs)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint, start_new_session=True)
    deadline = time.time() + 300
    while len(list(runs.rglob("*.ckpt"))) < 2:
        if process.poll() is not None or time.time() > deadline:
            pytest.fail(f"the sweep ended before both runs checkpointed: {process.communicate()}")
        time.sleep(0.05)
    if signum == signal.SIGINT:
        os.killpg(process.pid, signum)  # a terminal's Ctrl-C
    else:
        process.send_signal(signum)  # a scheduler's SIGTERM, to the sweep only
    started = time.time()
    _, stderr = process.communicate(timeout=120)
    assert time.time() - started < 60
    assert process.returncode == code, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: sweep {said}: 2 run(s) under way stopped at their "
                                                     "last checkpoint"), stderr
    assert "Re-run the same command" in errors[0] and "Traceback" not in stderr
    assert len(list(runs.rglob("*.ckpt"))) == 2 and not list(runs.glob("synth-rgbd-cls/*/*.json"))
    if signum == signal.SIGINT:
        return
    resumed = run_cli(*_sweep(runs))
    assert resumed.returncode == 0, resumed.stderr
    records = {r["seed"]: r for r in map(json.loads, map(Path.read_text, runs.glob("synth-rgbd-cls/*/*.json")))}
    assert sorted(records) == [0, 1] and all(r["extra"]["resumed_from_epoch"] >= 1 for r in records.values())
    reference = tmp_path / "reference"
    assert run_cli(*ARGS, "--threads", "1", "--out", str(reference)).returncode == 0  # a sweep run's thread count
    assert metrics(reference)["metrics"] == records[0]["metrics"]
