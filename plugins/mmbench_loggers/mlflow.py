"""MLflow tracking of every run (see :mod:`mmbench_loggers`)."""

from __future__ import annotations

import re
import time
from typing import Any

from mmbench import hookimpl
from mmbench_loggers import active, test_metrics

NAME = "mlflow"
_runs: dict[str, tuple[Any, str]] = {}  # mmbench run id → (client, MLflow run id)


def metric_key(key: str) -> str:
    """``key`` with every character MLflow does not accept (``+`` of ``rgb+depth``, ...) as ``_``."""
    return re.sub(r"[^\w\-. /]", "_", key)


def _params(run: dict[str, Any]) -> dict[str, str]:
    params = {f"config.{k}": v for k, v in run["config"].items()}
    params.update({f"recipe.{k}": v for k, v in run["recipe"].items()})
    params.update(profile=run["profile"], seed=run["seed"])
    return {metric_key(k): str(v)[:500] for k, v in params.items()}


@hookimpl
def mmbench_run_start(run: dict[str, Any]) -> None:
    if not active(NAME, run):
        return
    from mlflow.entities import Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    name = f"mmbench/{run['task']}"
    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment is not None else client.create_experiment(name)
    tags = {"mmbench.run_id": run["run_id"], "mmbench.task": run["task"], "mmbench.method": run["method"],
            "mmbench.seed": str(run["seed"]), "mmbench.profile": run["profile"]}
    created = client.create_run(experiment_id, run_name=f"{run['method']} seed {run['seed']} ({run['run_id']})",
                                tags=tags)
    client.log_batch(created.info.run_id, params=[Param(k, v) for k, v in _params(run).items()])
    _runs[run["run_id"]] = (client, created.info.run_id)


def _log(client: Any, run_id: str, values: dict[str, float], step: int) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(metric_key(k), float(v), now, step) for k, v in values.items()])


@hookimpl
def mmbench_epoch_end(run: dict[str, Any], epoch: int, logs: dict[str, float]) -> None:
    if run.get("run_id", "") in _runs:
        client, run_id = _runs[run["run_id"]]
        _log(client, run_id, logs, epoch)


@hookimpl
def mmbench_run_end(run: dict[str, Any], record: dict[str, Any]) -> None:
    entry = _runs.pop(run.get("run_id", ""), None)
    if entry is None:
        return
    client, run_id = entry
    last = (record.get("selection") or {}).get("last_epoch", len(record.get("curves", [])))
    _log(client, run_id, test_metrics(record), last)
    client.log_dict(run_id, record, "record.json")
    client.set_terminated(run_id, status="FINISHED" if record["status"] == "completed" else "FAILED")


@hookimpl
def mmbench_run_abort(run: dict[str, Any], reason: str) -> None:
    entry = _runs.pop(run.get("run_id", ""), None)
    if entry is not None:
        client, run_id = entry
        client.set_tag(run_id, "mmbench.aborted", reason[:500])
        client.set_terminated(run_id, status="KILLED" if reason == "interrupted" else "FAILED")
