"""``mmbench sweep``: a grid of runs, executed locally, on Ray or on Slurm, restartable.

Runs already recorded are skipped (their run ids are content-addressed), so re-running a killed
sweep executes only what is missing; ``--force`` re-runs everything. Shared artifacts (teachers)
are trained once: the artifact cache holds an exclusive file lock while one is produced, and runs
that need it wait and load it. One failed run never stops the sweep: it is retried up to
``--retries`` times and reported with its error in the summary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mmbench.records import read_record
from mmbench.sweep.executors import Executor, RunResult, last_error
from mmbench.sweep.grid import (
    Grid,
    PlannedJob,
    SweepJob,
    expand,
    grid_from_mapping,
    load_grid_file,
    plan_jobs,
)

__all__ = ["Grid", "PlannedJob", "SweepJob", "SweepSummary", "expand", "grid_from_mapping", "load_grid_file",
           "plan_jobs", "run_sweep"]


@dataclass
class SweepSummary:
    done: list[PlannedJob] = field(default_factory=list)
    skipped: list[PlannedJob] = field(default_factory=list)
    failed: list[tuple[PlannedJob, str]] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)


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
    todo = [p for p in planned if p.status == "pending"]
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
            summary.failed = failed
    return summary
