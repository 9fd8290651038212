"""``mmbench sweep``: expand a grid of runs and execute it (local / Ray / Slurm)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from rich.console import Console
from rich.table import Table

from mmbench import interrupts
from mmbench.config import parse_seeds
from mmbench.errors import MMBenchError
from mmbench.loggers import enable_loggers, enabled_loggers


class SweepStopped(MMBenchError):
    """Ctrl-C or SIGTERM stopped the sweep: its running runs were told to stop at their last
    checkpoint (or cancelled on Ray / Slurm), none was started after; exits 130 / 143."""

    def __init__(self, interrupt: KeyboardInterrupt):
        runs, how = getattr(interrupt, "runs", 0), getattr(interrupt, "how", "stopped")
        under_way = f"{runs} run(s) under way {how}" if runs else "no run was under way"
        super().__init__(f"sweep {interrupts.describe()}: {under_way}, no new run started, finished records kept. "
                         "Re-run the same command to resume.")

    @property
    def exit_code(self) -> int:
        return interrupts.exit_code()


def add_parser(sub: argparse._SubParsersAction, common) -> None:
    sweep = sub.add_parser(
        "sweep", help="run a grid of methods x tasks x seeds x settings, restartable",
        description="Expand a grid (from FILE and/or the options) into runs and execute them; runs already "
        "recorded in --out are skipped, so a re-run after a crash executes only the missing ones.")
    sweep.add_argument("file", nargs="?", help="sweep file (.toml or .yaml) with methods, tasks, seeds, set, scenarios")
    sweep.add_argument("--methods", help="comma-separated methods (overrides the file)")
    sweep.add_argument("--tasks", help="comma-separated tasks (overrides the file)")
    sweep.add_argument("--seeds", help="seeds: 3, 0-4 or 0,2,5 (default: the file's, else 0)")
    sweep.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=V1,V2",
                       help="a grid axis: every value is a separate run (repeatable)")
    sweep.add_argument("--scenarios", help="distillation scenarios, e.g. cross-modal,multi-modal")
    sweep.add_argument("--profile", help="training profile (default: smoke)")
    sweep.add_argument("--out", default="runs", help="results directory (default: runs)")
    sweep.add_argument("--executor", default="local", choices=["local", "ray", "slurm"])
    sweep.add_argument("--jobs", type=int, default=1, help="local: runs in parallel (default: 1)")
    sweep.add_argument("--address", help="ray: cluster address (default: start a local instance)")
    sweep.add_argument("--partition", help="slurm: partition")
    sweep.add_argument("--time-min", type=int, default=240, help="slurm: time limit per run in minutes")
    sweep.add_argument("--gpus-per-run", type=float, default=0, help="ray / slurm: GPUs per run")
    sweep.add_argument("--cpus-per-run", type=float, default=1, help="ray / slurm: CPUs per run")
    sweep.add_argument("--submitit-cluster", default=None, choices=["slurm", "local", "debug"],
                       help="slurm: submitit backend (default: auto-detect; 'local' runs the job array on this machine)")
    sweep.add_argument("--retries", type=int, default=1, help="re-run a failed run up to N times (default: 1)")
    sweep.add_argument("--device", default=None, help="passed to every run (auto, cpu, cuda)")
    sweep.add_argument("--data-dir", default=None, help="passed to every run")
    sweep.add_argument("--force", action="store_true", help="re-run runs that are already recorded")
    sweep.add_argument("--dry-run", action="store_true", help="print the expanded grid and what would be skipped")
    sweep.add_argument("--yes", action="store_true", help="confirm a sweep of more than 100 runs")
    sweep.add_argument("--estimate", action="store_true",
                       help="time each network of the runs to do on this device (--device), count its operations, "
                            "and print the hours and PFLOP they will take, then exit")
    sweep.add_argument("--sustained-tflops", type=float, default=None, metavar="X",
                       help="with --estimate: count the operations only and project the hours of a device that "
                            "sustains X TFLOP/s (e.g. a GPU you do not have here)")
    from mmbench.cli import add_logger_option

    add_logger_option(sweep)
    common(sweep, suppress=True)


def _set_axis(item: str) -> tuple[str, str]:
    """``KEY=V1,V2`` of ``--set`` → (key, values)."""
    key, sep, values = item.partition("=")
    if not sep or not key.strip() or not values:
        raise MMBenchError(f"invalid --set '{item}': expected KEY=V1,V2, e.g. --set logit_standardization=false,true.")
    return key.strip(), values


def _override_parts(base, args: argparse.Namespace):
    """A file of ``[[grid]]`` tables with --seeds / --profile / --set / --scenarios applied to each."""
    import dataclasses

    from mmbench.sweeps.grid import as_list

    if args.methods or args.tasks:
        raise MMBenchError(f"{args.file} lists its methods and tasks per [[grid]] table; --methods / --tasks cannot "
                           "replace them (edit a copy of the file instead).")
    sets = {key: as_list(values, f"--set {key}") for key, values in map(_set_axis, args.sets)}
    parts = [dataclasses.replace(
        part, seeds=parse_seeds(args.seeds) if args.seeds else part.seeds, profile=args.profile or part.profile,
        scenarios=as_list(args.scenarios, "--scenarios") if args.scenarios else part.scenarios,
        sets={**part.sets, **sets}) for part in base.parts]
    return dataclasses.replace(base, parts=parts, seeds=parts[0].seeds, profile=parts[0].profile)


def _grid(args: argparse.Namespace):
    from mmbench.sweeps import grid_from_mapping, load_grid_file

    base = load_grid_file(Path(args.file)) if args.file else None
    if base is not None and base.parts:
        return _override_parts(base, args)
    data = {"methods": base.methods if base else None, "tasks": base.tasks if base else None,
            "seeds": base.seeds if base else "0", "set": dict(base.sets) if base else {},
            "scenarios": base.scenarios if base else [], "profile": base.profile if base else "smoke"}
    if args.methods:
        data["methods"] = args.methods
    if args.tasks:
        data["tasks"] = args.tasks
    if args.seeds:
        data["seeds"] = parse_seeds(args.seeds)
    if args.scenarios:
        data["scenarios"] = args.scenarios
    if args.profile:
        data["profile"] = args.profile
    for key, values in map(_set_axis, args.sets):
        data["set"][key] = values
    if not data["methods"] or not data["tasks"]:
        raise MMBenchError("a sweep needs methods and tasks: give a sweep file or --methods and --tasks.")
    return grid_from_mapping(data, args.file or "the command line")


def _executor(args: argparse.Namespace, out: Path):
    from mmbench.sweeps import make_executor

    return make_executor(
        args.executor, out, jobs=args.jobs, plugins=args.plugin or (), disable=args.disable or (),
        run_options={"device": args.device, "data_dir": args.data_dir, "force": args.force,
                     "loggers": enabled_loggers()}, address=args.address,
        partition=args.partition, time_min=args.time_min, cpus_per_run=args.cpus_per_run,
        gpus_per_run=args.gpus_per_run, submitit_cluster=args.submitit_cluster,
    )


def _estimate_table(planned, registry, device_name: str, title: str, jobs: int,
                    sustained_tflops: float | None = None) -> Table:
    """``--estimate``: every pending run's network timed on the device (on the CPU with the
    threads each of ``jobs`` parallel runs gets) and its operations counted: hours and PFLOP per
    run and in all; ``sustained_tflops``: hours projected from the operations, nothing timed."""
    from mmbench.engine.estimate import estimate_runs
    from mmbench.engine.runner import resolve_device
    from mmbench.plan import plan_run
    from mmbench.threads import set_threads, share_of_cores

    if sustained_tflops is not None and not (math.isfinite(sustained_tflops) and sustained_tflops > 0):
        raise MMBenchError(f"--sustained-tflops must be a positive number of TFLOP/s, got {sustained_tflops}.")
    device = resolve_device(device_name)
    set_threads(share_of_cores(jobs))
    plans = [plan_run(registry, p.job.method, p.job.task, p.job.seed, dict(p.job.overrides), p.job.profile)
             for p in planned if p.status == "pending"]
    projected = sustained_tflops is not None
    estimates = estimate_runs(plans, device, timed=not projected)
    name = torch_device_name(device)

    def hours(e) -> float | None:
        return e.projected_hours(sustained_tflops) if projected else e.hours_per_run

    known = [e for e in estimates if hours(e) is not None]
    total = sum(hours(e) * e.runs for e in known)
    compute = sum(e.flops_per_run * e.runs for e in known) / 1e15
    where = f"at {sustained_tflops:g} TFLOP/s sustained" if projected else f"on {name}"
    caption = f"{total:.1f} h for {sum(e.runs for e in known)} run(s) {where} ({compute:.1f} PFLOP)"
    unknown = sum(e.runs for e in estimates if hours(e) is None)
    if unknown:
        caption += f"; {unknown} run(s) of datasets that declare no split sizes are not counted"
    heading = (f"projected time at {sustained_tflops:g} TFLOP/s sustained (operations counted on {name})" if projected
               else f"estimated time on {name}")
    table = Table(title=f"{title + chr(10) if title else ''}{heading}", title_justify="left",
                  caption=caption, caption_justify="left")
    timing = () if projected else ("s / step", "s / eval batch")
    for column in ("run", "runs", *timing, "GFLOP / step", "steps / epoch", "epochs", "PFLOP / run", "h / run", "h"):
        table.add_column(column, overflow="fold", justify="left" if column == "run" else "right")
    for e in estimates:
        sets = " ".join(f"{k}={v}" for k, v in sorted(e.plan.overrides.items()))
        run_hours, flops = hours(e), e.flops_per_run
        timed = () if projected else (f"{e.step_seconds:.3f}", f"{e.eval_seconds:.3f}")
        table.add_row(f"{e.plan.method.name} on {e.plan.task.name}" + (f" ({sets})" if sets else ""), str(e.runs),
                      *timed, f"{e.step_flops / 1e9:.1f}",
                      "?" if e.steps_per_epoch is None else str(e.steps_per_epoch), str(e.plan.recipe.epochs),
                      "?" if flops is None else f"{flops / 1e15:.2f}",
                      "?" if run_hours is None else f"{run_hours:.2f}",
                      "?" if run_hours is None else f"{run_hours * e.runs:.1f}")
    return table


def torch_device_name(device) -> str:
    import torch

    return torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"


def sweep_command(args: argparse.Namespace) -> int:
    from mmbench.files import ensure_writable
    from mmbench.plugins import Registry
    from mmbench.sweeps import plan_sweep, run_sweep
    from mmbench.sweeps.grid import check_size, expand

    if args.retries < 0:
        raise MMBenchError(f"--retries must be 0 or more, got {args.retries}.")
    enable_loggers(args.loggers)  # in the environment of every run the sweep starts
    grid = _grid(args)
    registry = Registry.load(plugins=args.plugin or (), disabled=args.disable or ())
    check_size(len(expand(grid, registry)), args.yes)
    out = Path(args.out)
    planned = plan_sweep(grid, registry, out, force=args.force)
    console = Console(highlight=False)
    pending = [p for p in planned if p.status == "pending"]
    if args.estimate:
        console.print(_estimate_table(planned, registry, args.device or "auto", grid.title, args.jobs,
                                      args.sustained_tflops))
        return 0
    if args.dry_run:
        dependencies = sum(1 for p in planned if p.needed_by)
        needed = f"; {dependencies} needed by others, run first" if dependencies else ""
        title = f"{grid.title}\n" if grid.title else ""
        table = Table(title=f"{title}sweep: {len(planned)} run(s), {len(pending)} to run{needed}", title_justify="left")
        for column in ("run", "run id", "status", "note"):
            table.add_column(column, overflow="fold")
        for p in planned:
            note = p.reason
            if p.needed_by:
                note = f"dependency of {p.needed_by} run(s), level {p.level}" + (f"; {note}" if note else "")
            table.add_row(p.job.describe(), p.run_id or "-", "to run" if p.status == "pending" else p.status, note)
        console.print(table)
        return 0
    ensure_writable(out)
    executor = _executor(args, out)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.fields[last]}"), console=Console(stderr=True), transient=False)
    with progress:
        bar = progress.add_task("runs", total=len(pending), last="")

        def on_result(entry, status: str) -> None:
            if status != "retry":
                progress.advance(bar)
            progress.update(bar, last=f"{status}: {entry.job.describe()}")

        try:
            summary = run_sweep(planned, executor, retries=args.retries, on_result=on_result)
        except KeyboardInterrupt as exc:
            progress.stop()
            raise SweepStopped(exc) from None
    table = Table(title=f"sweep summary ({out})", title_justify="left")
    for column in ("status", "runs", "detail"):
        table.add_column(column, overflow="fold")
    table.add_row("done", str(len(summary.done)), "")
    skipped = {}
    for p in summary.skipped:
        skipped[p.status] = skipped.get(p.status, 0) + 1
    table.add_row("skipped", str(len(summary.skipped)), ", ".join(f"{n} {s}" for s, n in sorted(skipped.items())))
    table.add_row("failed", str(len(summary.failed)), "")
    for entry, reason in summary.failed:
        table.add_row("", "", f"{entry.job.describe()}: {reason}")
    for p in summary.skipped:
        if p.status == "invalid":
            table.add_row("", "", f"invalid: {p.job.describe()}: {p.reason}")
    console.print(table)
    return 1 if summary.failed else 0
