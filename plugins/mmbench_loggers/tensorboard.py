"""TensorBoard logging of every run (see :mod:`mmbench_loggers`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mmbench import hookimpl
from mmbench_loggers import active, test_metrics

NAME = "tensorboard"
_writers: dict[str, Any] = {}  # run id → SummaryWriter; dependencies run inside their dependent's run


def log_dir(run: dict[str, Any]) -> Path:
    return Path(run["record_path"]).with_suffix("") / NAME


@hookimpl
def mmbench_run_start(run: dict[str, Any]) -> None:
    if not active(NAME, run):
        return
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(log_dir(run)))
    writer.add_text("run", f"{run['method']} on {run['task']}, seed {run['seed']}, profile {run['profile']}")
    writer.add_text("config", json.dumps({"config": run["config"], "recipe": run["recipe"]}, indent=1, default=str))
    _writers[run["run_id"]] = writer


@hookimpl
def mmbench_epoch_end(run: dict[str, Any], epoch: int, logs: dict[str, float]) -> None:
    writer = _writers.get(run.get("run_id", ""))
    if writer is None:
        return
    for key, value in logs.items():
        writer.add_scalar(key, value, epoch)
    writer.flush()


@hookimpl
def mmbench_run_end(run: dict[str, Any], record: dict[str, Any]) -> None:
    writer = _writers.pop(run.get("run_id", ""), None)
    if writer is None:
        return
    last = (record.get("selection") or {}).get("last_epoch", len(record.get("curves", [])))
    for key, value in test_metrics(record).items():
        writer.add_scalar(key, value, last)
    writer.add_text("status", record["status"] + (f": {record['failure']['message']}" if record.get("failure") else ""))
    writer.close()


@hookimpl
def mmbench_run_abort(run: dict[str, Any], reason: str) -> None:
    writer = _writers.pop(run.get("run_id", ""), None)
    if writer is not None:
        writer.add_text("status", f"aborted: {reason}")
        writer.close()
