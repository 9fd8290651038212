"""``mmbench run``: validate everything, then train and evaluate one run per seed."""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mmbench.cli.output import StdoutConsole
from mmbench.config import parse_assignments
from mmbench.loggers import enable_loggers
from mmbench.plan import RunPlan
from mmbench.records import RunRecord, read_record, record_path
from mmbench.specs import subset_key
from mmbench.threads import check_threads


def _progress(console: Console) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[rate]:.0f} samples/s"),
        TimeElapsedColumn(), console=console, transient=True,
    )


def _epoch_printer(console: Console, plan: RunPlan):
    primary = plan.task.primary

    def show(run: dict[str, Any], epoch: int, logs: dict[str, float]) -> None:
        losses = " ".join(f"{k.removeprefix('loss/')} {v:.4f}" for k, v in logs.items() if k.startswith("loss/"))
        vals = [v for k, v in logs.items() if k.startswith("val/") and k.endswith("/" + primary)]
        mean = sum(vals) / len(vals) if vals else float("nan")
        console.print(
            f"[{run['method']} seed {run['seed']}] epoch {epoch}/{plan.recipe.epochs}: {losses} | "
            f"val {primary} (mean over subsets) {mean:.4f} | {logs['train_seconds']:.1f} s",
            highlight=False, markup=False,
        )

    return show


def _mean_std(values: list[float], n: int) -> str:
    mean = 100 * statistics.fmean(values)
    if n > 1 and len(values) > 1:
        return f"{mean:.2f} ± {100 * statistics.stdev(values):.2f}"
    return f"{mean:.2f}"


def _reference_rows(records: list[RunRecord], metrics: list[str]) -> list[tuple[str, str, list[str]]]:
    """``(label, subset, cells)`` of the TEACHER / STUDENT references, mean ± std over seeds."""
    grouped: dict[tuple[str, str], list[dict[str, float]]] = {}
    for record in records:
        for ref in record.references:
            for subset, values in ref.metrics.items():
                grouped.setdefault((ref.role, subset), []).append(values)
    rows = []
    for (role, subset), values in grouped.items():
        cells = [_mean_std([v[m] for v in values if m in v], len(records)) if any(m in v for v in values) else "-"
                 for m in metrics]
        rows.append((f"{role.upper()} ({subset})", subset, cells))
    return rows


def results_table(records: list[RunRecord], plan: RunPlan) -> Table:
    """Per-subset test results (● present / ○ missing), mean ± std over seeds, best-val epoch;
    for distillation runs also the TEACHER and undistilled STUDENT references."""
    from mmbench.results import aggregate, records_to_frame

    frame = records_to_frame([(Path("."), r) for r in records])
    best = aggregate(frame, "best")
    last = aggregate(frame, "last")
    task = plan.task
    n = len(records)
    arrow = "↑" if task.higher_is_better else "↓"
    title = f"{plan.method.name} on {task.name} — test, {n} seed(s), model selected on validation"
    if plan.distillation is not None:
        setup = plan.distillation
        teacher = subset_key(setup.teacher) if setup.teacher else "none"
        title += f"\n{setup.scenario} KD, teacher: {teacher}, student(s): {', '.join(map(subset_key, setup.students))}"
    table = Table(title=title, title_justify="left")
    table.add_column("model")
    for modality in plan.modalities:
        table.add_column(modality, justify="center")
    metrics = list(task.metric_names)
    for metric in metrics:
        table.add_column(f"{metric} {arrow if metric == task.primary else ''}".strip(), justify="right")
    table.add_column(f"{task.primary} (last epoch)", justify="right")

    def cell(frame_, subset: str, metric: str) -> str:
        row = frame_[(frame_["subset"] == subset) & (frame_["metric"] == metric)]
        if row.empty:
            return "-"
        mean, std = 100 * row["mean"].iloc[0], 100 * row["std"].iloc[0]
        return f"{mean:.2f} ± {std:.2f}" if n > 1 else f"{mean:.2f}"

    def marks(subset: str) -> list[str]:
        if subset == "mean":
            return ["" for _ in plan.modalities]
        present = subset.split("+")
        return ["●" if m in present else "○" for m in plan.modalities]

    subsets = [*plan.subset_names, "mean"] if len(plan.subsets) > 1 else plan.subset_names
    for subset in subsets:
        label = "mean" if subset == "mean" else plan.method.name
        table.add_row(label, *marks(subset), *(cell(best, subset, m) for m in metrics), cell(last, subset, task.primary))
    for label, subset, cells in _reference_rows(records, metrics):
        table.add_row(label, *marks(subset), *cells, "-")
    return table


def dry_run_table(plans: list[RunPlan], status: Any) -> Table:
    """What ``mmbench run`` would do: each seed's run and, before it, the runs it depends on
    (``status(plan)`` says whether each is cached)."""
    first = plans[0]
    table = Table(title=f"{first.method.name} on {first.task.name} ({first.profile}): {len(plans)} run(s), dependencies "
                  "first", title_justify="left")
    for column in ("run", "role", "method", "options", "run id", "status"):
        table.add_column(column, overflow="fold")
    for plan in plans:
        for dependency in plan.dependencies:
            dep = dependency.plan
            options = " ".join(f"{k}={v}" for k, v in dependency.options.items())
            table.add_row(f"seed {plan.seed}", dependency.role, dep.method.name, options, dep.run_id, status(dep))
        options = " ".join(f"{k}={v}" for k, v in plan.overrides.items())
        table.add_row(f"seed {plan.seed}", "run", plan.method.name, options, plan.run_id, status(plan, main=True))
    return table


def network_table(summary: Any, segmentation: bool) -> Table:
    """One network of ``--dry-run``: inputs, encoder, decoder, weights, parameters per module."""
    inputs = ", ".join(f"{m} {'×'.join(map(str, shape))}" for m, shape in summary.inputs.items())
    network = f"backbone {summary.backbone}" + (f", decoder {summary.decoder} ({summary.context})" if segmentation else "")
    weights = (f"{summary.pretrained.name} ({summary.pretrained.path.name}, sha256 {summary.pretrained.sha256})"
               if summary.pretrained is not None else "none (trained from scratch)")
    table = Table(title=f"{summary.role}: {summary.method} ({summary.run_id}) — inputs {inputs}; {network}; "
                  f"pretrained weights: {weights}", title_justify="left")
    for column, justify in (("module", "left"), ("class", "left"), ("parameters", "right")):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for row in summary.rows:
        table.add_row(row.name, row.kind, f"{row.parameters:,}")
    table.add_row("total", "", f"{summary.parameters:,}", style="bold")
    return table


def run_command(args: argparse.Namespace) -> int:
    from mmbench import api

    check_threads(args.threads)  # before any data or torch import, like every other input check
    enable_loggers(args.loggers)
    overrides = parse_assignments(args.overrides)
    if getattr(args, "compile", False):
        overrides["recipe.compile"] = "true"
    registry, plans = api.prepare(args.method, args.task, args.seeds, overrides, args.profile,
                                  plugins=args.plugin or (), disable=args.disable or (), yes=args.yes)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    for info in registry.broken:
        err.print(f"warning: plugin '{info.name}' is broken and was skipped: {info.error}", markup=False)
    if args.dry_run:
        out = StdoutConsole(min_pipe_width=160)
        out.print(dry_run_table(plans, _status(args.out)))
        from mmbench.engine.summary import network_summaries

        for summary in network_summaries(plans[0]):  # every seed builds the same networks
            out.print(network_table(summary, plans[0].task.kind == "segmentation"))
        return 0

    from mmbench.engine.distributed import world_from_env

    world = world_from_env()
    if not world.main:
        err = Console(stderr=True, quiet=True)
    interactive = err.is_terminal and not args.no_progress and world.main
    progress = _progress(err) if interactive else None
    if progress is not None:
        progress.start()
    try:
        records = api.execute(
            registry, plans, out=args.out, device=args.device, data_dir=args.data_dir, resume=args.resume,
            force=args.force, save_weights=args.save_weights, rebuild_cache=args.rebuild_cache, threads=args.threads,
            log=lambda message: err.print(message, markup=False), progress=progress,
            epoch_log=None if interactive else _epoch_printer(err, plans[0]),
        )
    finally:
        if progress is not None:
            progress.stop()
    if not world.main:
        return 0
    StdoutConsole(min_pipe_width=160).print(results_table(records, plans[0]))
    return 0


def _status(out: str) -> Any:
    """A run's state for ``--dry-run``: recorded in ``out`` / weights cached / to run."""
    from mmbench.artifacts import ArtifactCache

    artifacts = ArtifactCache()

    def status(plan: RunPlan, main: bool = False) -> str:
        record = record_path(Path(out), plan.task.name, plan.method.name, plan.run_id)
        recorded = record.exists() and read_record(record).status == "completed"
        if main:
            return "recorded" if recorded else "to run"
        cached = artifacts.status(plan.run_id)
        if cached != "missing":
            return cached
        return "to train" + (" (resumes its checkpoint)" if record.with_suffix(".ckpt").exists() else "")

    return status
