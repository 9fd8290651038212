"""The TensorBoard and MLflow loggers: idle unless named, then every epoch's loss terms, learning
rate and per-subset validation metrics, and the final record — read back from the event files
and from a local MLflow file store."""

from __future__ import annotations

import json

import pytest

from conftest import FAST_OVERRIDES, make_runner, one_line_error, run_cli
from mmbench.plan import plan_run


@pytest.fixture
def logged_run(registry, tmp_path, monkeypatch):
    monkeypatch.setenv("MMBENCH_LOGGERS", "tensorboard,mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps its file store behind this switch
    record, path = make_runner(registry, tmp_path).run(plan_run(registry, "fusion", "synth-rgbdi-pad", 0, FAST_OVERRIDES))
    return record, path


def test_tensorboard_event_files_hold_every_epoch_and_the_test_metrics(logged_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    record, path = logged_run
    events = EventAccumulator(str(path.with_suffix("") / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    subsets = list(record.metrics["best"])
    assert {"loss/ce", "lr", "train_seconds"} <= tags
    assert {f"val/{s}/acer" for s in subsets} <= tags and {f"test/best/{s}/acer" for s in subsets} <= tags
    for epoch, curve in enumerate(record.curves, start=1):
        logged = {e.step: e.value for e in events.Scalars("loss/ce")}
        assert logged[epoch] == pytest.approx(curve["loss"]["ce"], rel=1e-6)
        val = {e.step: e.value for e in events.Scalars(f"val/{subsets[0]}/acer")}
        assert val[epoch] == pytest.approx(curve["val"][subsets[0]]["acer"], rel=1e-6)
    assert events.Scalars(f"test/best/{subsets[0]}/acer")[0].value == pytest.approx(
        record.metrics["best"][subsets[0]]["acer"], rel=1e-6)


def test_mlflow_run_holds_params_curves_test_metrics_and_the_record(logged_run, tmp_path):
    from mlflow.tracking import MlflowClient

    record, _ = logged_run
    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("mmbench/synth-rgbdi-pad")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["mmbench.run_id"] == record.run_id
    assert run.data.params["recipe.epochs"] == "2" and run.data.params["seed"] == "0"
    history = client.get_metric_history(run.info.run_id, "val/rgb_depth_ir/acer")  # '+' is not a key character
    assert [m.step for m in history] == [1, 2]
    assert history[-1].value == pytest.approx(record.curves[-1]["val"]["rgb+depth+ir"]["acer"], rel=1e-6)
    assert run.data.metrics["test/best/rgb/acer"] == pytest.approx(record.metrics["best"]["rgb"]["acer"], rel=1e-6)
    (tmp_path / "artifacts-read").mkdir()
    local = client.download_artifacts(run.info.run_id, "record.json", str(tmp_path / "artifacts-read"))
    assert json.loads(open(local).read())["run_id"] == record.run_id


def test_loggers_stay_idle_unless_named(registry, tmp_path, monkeypatch):
    monkeypatch.delenv("MMBENCH_LOGGERS", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    _, path = make_runner(registry, tmp_path).run(plan_run(registry, "fusion", "synth-rgbdi-pad", 0,
                                                           {**FAST_OVERRIDES, "recipe.epochs": "1"}))
    assert not (path.with_suffix("") / "tensorboard").exists() and not (tmp_path / "mlruns").exists()


def test_an_unknown_or_uninstalled_logger_is_one_line(tmp_path, monkeypatch):
    result = run_cli("run", "--logger", "wandb", "--dry-run", cwd=tmp_path)
    assert "unknown logger 'wandb'" in one_line_error(result) and "tensorboard, mlflow" in result.stderr
    result = run_cli("sweep", "--methods", "fusion", "--tasks", "synth-rgbd-cls", "--dry-run", cwd=tmp_path,
                     env={"MMBENCH_LOGGERS": "tensorbord"})
    assert "unknown logger 'tensorbord'" in one_line_error(result)
    from mmbench import loggers
    from mmbench.errors import MMBenchError

    monkeypatch.delenv("MMBENCH_LOGGERS", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    real = loggers.importlib.util.find_spec
    monkeypatch.setattr(loggers.importlib.util, "find_spec", lambda name: None if name == "sqlalchemy" else real(name))
    with pytest.raises(MMBenchError, match=r"sqlite.*pip install 'mmbench\[mlflow\]'.*tracking server"):
        loggers.enable_loggers(["mlflow"])  # mlflow-skinny and MLflow 3's default sqlite store
    monkeypatch.setattr(loggers.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MMBenchError, match=r"needs the 'mlflow' package: pip install 'mmbench\[mlflow\]'"):
        loggers.enable_loggers(["mlflow"])


def test_a_sweep_passes_its_loggers_to_every_run(tmp_path, monkeypatch):
    from mmbench.sweeps import make_executor

    monkeypatch.setenv("MMBENCH_LOGGERS", "tensorboard")
    executor = make_executor("local", tmp_path, run_options={"loggers": ("tensorboard",)})
    assert executor.extra[executor.extra.index("--logger") + 1] == "tensorboard"


def test_a_run_stopped_by_an_error_closes_its_loggers(registry, tmp_path, monkeypatch):
    """Without a record there is no ``mmbench_run_end``: ``mmbench_run_abort`` closes the event
    file and ends the MLflow run as FAILED (KILLED on Ctrl-C)."""
    import mmbench_loggers.tensorboard as tensorboard_logger
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from mmbench.engine.loop import Trainer

    monkeypatch.setenv("MMBENCH_LOGGERS", "tensorboard,mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")

    def broken_fit(self):
        self.on_epoch(1, {"loss/ce": 0.5})
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(Trainer, "fit", broken_fit)
    plan = plan_run(registry, "fusion", "synth-rgbdi-pad", 0, FAST_OVERRIDES)
    with pytest.raises(RuntimeError, match="disk on fire"):
        make_runner(registry, tmp_path).run(plan)
    assert plan.run_id not in tensorboard_logger._writers
    folder = next((tmp_path / "runs").rglob("tensorboard"))
    events = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    events.Reload()
    statuses = [t for t in events.Tags()["tensors"] if t.startswith("status")]
    assert statuses and b"aborted: RuntimeError: disk on fire" in events.Tensors(statuses[0])[0].tensor_proto.string_val[0]
    assert [e.value for e in events.Scalars("loss/ce")] == [0.5]
    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("mmbench/synth-rgbdi-pad").experiment_id])
    assert run.info.status == "FAILED" and run.data.tags["mmbench.aborted"] == "RuntimeError: disk on fire"
