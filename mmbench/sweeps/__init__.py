"""``mmbench sweep``: a grid of runs, executed locally, on Ray or on Slurm, restartable.

Runs already recorded are skipped (their run ids are content-addressed), so re-running a killed
sweep executes only what is missing; ``--force`` re-runs everything. The trained models that runs
depend on (teachers) are jobs of their own on a lower level: the sweep runs level by level, so a
teacher is trained once, before the runs that need it, and resumes from its last epoch when a
killed sweep is re-run (the artifact cache's file lock stays as a safety net). One failed run
never stops the sweep: it is retried up to ``--retries`` times and reported with its error in the
summary.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmbench.errors import MMBenchError
from mmbench.plugins import Registry
from mmbench.records import read_record
from mmbench.sweeps.executors import Executor, RunResult, last_error
from mmbench.sweeps.grid import (
    Grid,
    PlannedJob,
    SweepJob,
    expand,
    grid_from_mapping,
    load_grid_file,
    plan_jobs,
)

__all__ = ["Grid", "PlannedJob", "SweepJob", "SweepSummary", "expand", "grid_from_mapping", "load_grid_file",
           "make_executor", "plan_jobs", "plan_sweep", "run_sweep"]


@dataclass
class SweepSummary:
    done: list[PlannedJob] = field(default_factory=list)
    skipped: list[PlannedJob] = field(default_factory=list)
    failed: list[tuple[PlannedJob, str]] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)


def plan_sweep(grid: Grid, registry: Registry, out: Path, force: bool = False) -> list[PlannedJob]:
    """Every job of ``grid`` planned against ``out`` (dependencies first); a misspelled method or
    task name, or a grid with no valid run, is an error."""
    for method in grid.methods:  # a misspelled name is a mistake, not an "invalid combination"
        registry.method(method)
    for task in grid.tasks:
        registry.task(task)
    planned = plan_jobs(expand(grid, registry), registry, out, force=force)
    if planned and all(p.status == "invalid" for p in planned):
        raise MMBenchError(f"none of the sweep's {len(planned)} run(s) is valid; the first: "
                           f"{planned[0].job.describe()}: {planned[0].reason}")
    return planned


def plugin_options(plugins: Sequence[str], disable: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The sweep's plugins as ``--plugin`` options for every run (files as absolute paths, so a
    run on another node or in another folder finds them) and the environment that keeps
    ``MMBENCH_PLUGINS`` from registering them a second time in the run."""
    from mmbench.plugins import (
        DISABLE_ENV,
        PLUGINS_ENV,
        disabled_plugins,
        is_file_target,
        local_plugin_targets,
    )

    options = []
    for target in local_plugin_targets(plugins):
        if is_file_target(target):
            target = str(Path(target).expanduser().resolve())
        options += ["--plugin", target]
    for name in disabled_plugins(disable):
        options += ["--disable", name]
    return options, {PLUGINS_ENV: "", DISABLE_ENV: ""}


def make_executor(
    kind: str, out: Path, jobs: int = 1, plugins: Sequence[str] = (), disable: Sequence[str] = (),
    run_options: Mapping[str, Any] | None = None, address: str | None = None, partition: str | None = None,
    time_min: int = 240, cpus_per_run: float = 1, gpus_per_run: float = 0, submitit_cluster: str | None = None,
) -> Executor:
    """The executor of ``mmbench sweep --executor kind``; ``run_options`` (``device``,
    ``data_dir``, ``force``, ``loggers``) are passed to every run."""
    from mmbench.sweeps.executors import LocalExecutor, RayExecutor, SlurmExecutor

    options = dict(run_options or {})
    plugin_args, env = plugin_options(plugins, disable)
    extra = [*(["--device", options["device"]] if options.get("device") else []),
             *(["--data-dir", options["data_dir"]] if options.get("data_dir") else []),
             *(["--force"] if options.get("force") else []),
             *[arg for name in options.get("loggers", ()) for arg in ("--logger", name)], *plugin_args]
    if kind == "ray":
        return RayExecutor(out, address, cpus_per_run, gpus_per_run, extra, env)
    if kind == "slurm":
        return SlurmExecutor(out, partition, time_min, int(gpus_per_run), int(max(cpus_per_run, 1)),
                             cluster=submitit_cluster, extra=extra, env=env)
    if kind != "local":
        raise MMBenchError(f"unknown executor '{kind}': use local, ray or slurm.")
    return LocalExecutor(out, jobs, extra, env)


def _succeeded(result: RunResult) -> bool:
    if result.returncode != 0 or result.entry.record is None or not result.entry.record.exists():
        return False
    try:
        return read_record(result.entry.record).status == "completed"
    except Exception:
        return False


def run_sweep(planned: list[PlannedJob], executor: Executor, retries: int = 1,
              on_result: Callable[[PlannedJob, str], None] | None = None) -> SweepSummary:
    """Execute the pending jobs; failed ones are retried up to ``retries`` times."""
    summary = SweepSummary(skipped=[p for p in planned if p.status != "pending"])
    pending = [p for p in planned if p.status == "pending"]
    for level in sorted({p.level for p in pending}):
        _run_level([p for p in pending if p.level == level], executor, retries, summary, on_result)
    return summary


def _run_level(todo: list[PlannedJob], executor: Executor, retries: int, summary: SweepSummary,
               on_result: Callable[[PlannedJob, str], None] | None) -> None:
    for attempt in range(retries + 1):
        if not todo:
            break
        failed: list[tuple[PlannedJob, str]] = []

        def done(result: RunResult, attempt: int = attempt, failed: list = failed) -> None:
            summary.attempts[result.entry.run_id] = attempt + 1
            if _succeeded(result):
                summary.done.append(result.entry)
                status = "done"
            else:
                reason = last_error(result.log)
                failed.append((result.entry, reason))
                status = "failed" if attempt == retries else "retry"
            if on_result is not None:
                on_result(result.entry, status)

        executor.run(todo, done)
        todo = [entry for entry, _ in failed]
        if attempt == retries:
            summary.failed.extend(failed)
