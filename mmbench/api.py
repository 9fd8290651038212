"""The Python entry points, for notebooks and scripts: :func:`run` and :func:`sweep`, with exactly
the semantics of ``mmbench run`` and ``mmbench sweep`` (the command line is a thin layer over
them)::

    import mmbench

    records = mmbench.run("kd", "synth-mssar-cls", seeds="0-2", overrides={"teacher": "ms"}, out="runs")
    print(records[0].metrics["best"])

Errors are :class:`mmbench.MMBenchError` with the CLI's one-line message.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mmbench.config import parse_seeds
from mmbench.errors import MMBenchError, echo
from mmbench.files import ensure_writable, mmbench_home
from mmbench.plan import RunPlan, plan_run
from mmbench.plugins import Registry
from mmbench.records import RunRecord, read_record
from mmbench.threads import check_parallel, check_threads, set_threads

DEFAULT_METHOD = "fusion-dropout"
DEFAULT_TASK = "synth-rgbd-cls"
MAX_SEEDS_WITHOUT_YES = 100

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def seed_list(seeds: int | str | Sequence[int]) -> list[int]:
    """``3`` / ``"3"``, ``"0-4"``, ``"0,2,5"`` (the CLI's ``--seeds``) or a list of seeds."""
    if isinstance(seeds, int | str):
        return parse_seeds(str(seeds))
    return parse_seeds(",".join(str(int(s)) for s in seeds))


def prepare(
    method: str = DEFAULT_METHOD, task: str = DEFAULT_TASK, seeds: int | str | Sequence[int] = 0,
    overrides: Mapping[str, Any] | None = None, profile: str = "smoke", plugins: Sequence[str] = (),
    disable: Sequence[str] = (), yes: bool = False,
) -> tuple[Registry, list[RunPlan]]:
    """Load the plugins and validate the request into one plan per seed (dependencies included);
    nothing is trained or written."""
    chosen = seed_list(seeds)
    if len(chosen) > MAX_SEEDS_WITHOUT_YES and not yes:
        raise MMBenchError(f"--seeds {echo(seeds)} asks for {len(chosen)} runs; add --yes to confirm more than "
                           f"{MAX_SEEDS_WITHOUT_YES}.")
    options = {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in (overrides or {}).items()}
    registry = Registry.load(plugins=plugins, disabled=disable)
    return registry, [plan_run(registry, method, task, seed, options, profile) for seed in chosen]


def execute(
    registry: Registry, plans: Sequence[RunPlan], out: str | Path = "runs", device: str = "auto",
    data_dir: str | None = None, resume: bool = False, force: bool = False, save_weights: bool = False,
    rebuild_cache: bool = False, threads: int | None = None, log: Log | None = _stderr,
    progress: Any = None, epoch_log: Callable[[dict[str, Any], int, dict[str, float]], None] | None = None,
    artifacts: Any = None, oversubscribe: bool = False,
) -> list[RunRecord]:
    """Run ``plans`` (skipping those already recorded in ``out`` unless ``force``) and return
    their records, in order. ``artifacts``: the :class:`mmbench.artifacts.ArtifactCache` to take
    and keep trained dependencies in (default: the one under ``$MMBENCH_HOME``); ``oversubscribe``:
    allow more ``threads`` than cores (a record re-run with the thread count it was made with)."""
    log = log or (lambda message: None)
    out = Path(out)
    ensure_writable(out)
    ensure_writable(mmbench_home(), remedy="set MMBENCH_HOME to a writable folder with space for the data caches.")

    from mmbench.engine.distributed import initialise, world_from_env
    from mmbench.engine.runner import Runner  # imports torch

    set_threads(threads, oversubscribe)
    for plan in plans:
        check_parallel("recipe.num_workers", plan.recipe.num_workers)
    world = world_from_env()  # torchrun: one process per rank; rank 0 reports
    runner = Runner(registry, out=out, device=device, data_dir=data_dir, progress=progress, rebuild_cache=rebuild_cache,
                    log=log, epoch_log=epoch_log, world=world, artifacts=artifacts)
    initialise(world, runner.device)
    records: list[RunRecord] = []
    for plan in plans:
        existing = runner.existing(plan)
        weights_missing = save_weights and runner.dependency_status(plan) != "cached"
        if existing and not force and not weights_missing:
            log(f"seed {plan.seed}: already recorded at {existing} (use --force to run again)")
            records.append(read_record(existing))
            continue
        log(f"{plan.method.name} on {plan.task.name}, seed {plan.seed}, profile {plan.profile}, device {runner.device}"
            + (f" x {world.size} processes" if world.active else "") + f", run {plan.run_id}")
        record, path = runner.run(plan, resume=resume, force=force, save_weights=save_weights)
        records.append(record)
        log(f"seed {plan.seed}: record written to {path}")
    return records


def run(
    method: str = DEFAULT_METHOD, task: str = DEFAULT_TASK, seeds: int | str | Sequence[int] = 0,
    overrides: Mapping[str, Any] | None = None, profile: str = "smoke", out: str | Path = "runs",
    device: str = "auto", data_dir: str | None = None, resume: bool = False, force: bool = False,
    save_weights: bool = False, threads: int | None = None, plugins: Sequence[str] = (),
    disable: Sequence[str] = (), rebuild_cache: bool = False, yes: bool = False, log: Log | None = _stderr,
) -> list[RunRecord]:
    """Train and evaluate ``method`` on ``task`` once per seed, as ``mmbench run`` does: the
    trained models it depends on first, records written to ``out/<task>/<method>/<run id>.json``,
    runs already recorded there reused. ``overrides`` are the ``--set`` options (method options,
    ``recipe.*``, ``dataset.*``); ``log`` receives the progress lines (``None``: silent)."""
    check_threads(threads)
    registry, plans = prepare(method, task, seeds, overrides, profile, plugins, disable, yes)
    return execute(registry, plans, out, device, data_dir, resume, force, save_weights, rebuild_cache, threads, log)


def sweep(
    methods: str | Sequence[str], tasks: str | Sequence[str], seeds: int | str | Sequence[int] = 0,
    sets: Mapping[str, str | Sequence[str]] | None = None, scenarios: str | Sequence[str] = (),
    profile: str = "smoke", out: str | Path = "runs", executor: str = "local", jobs: int = 1, retries: int = 1,
    force: bool = False, device: str | None = None, data_dir: str | None = None, plugins: Sequence[str] = (),
    disable: Sequence[str] = (), on_result: Callable[[Any, str], None] | None = None, yes: bool = False,
    **executor_options: Any,
) -> Any:
    """Run a grid (methods × tasks × seeds × ``sets`` values × distillation ``scenarios``) as
    ``mmbench sweep`` does — dependencies first, recorded runs skipped, failed runs retried, more
    than 100 runs only with ``yes=True`` — and
    return its :class:`mmbench.sweeps.SweepSummary`. ``executor``: ``local`` (``jobs`` at once),
    ``ray`` or ``slurm`` (``executor_options`` as the CLI's: address, partition, time_min,
    cpus_per_run, gpus_per_run, submitit_cluster)."""
    from mmbench.sweeps import grid_from_mapping, make_executor, plan_sweep, run_sweep
    from mmbench.sweeps.grid import check_size, expand

    grid = grid_from_mapping({"methods": methods, "tasks": tasks, "seeds": seed_list(seeds), "set": dict(sets or {}),
                              "scenarios": scenarios, "profile": profile}, "mmbench.sweep()")
    registry = Registry.load(plugins=plugins, disabled=disable)
    check_size(len(expand(grid, registry)), yes)
    planned = plan_sweep(grid, registry, Path(out), force)
    ensure_writable(Path(out))
    runner_options = {"device": device, "data_dir": data_dir, "force": force}
    chosen = make_executor(executor, Path(out), jobs=jobs, plugins=plugins, disable=disable, run_options=runner_options,
                           **executor_options)
    return run_sweep(planned, chosen, retries=retries, on_result=on_result)
