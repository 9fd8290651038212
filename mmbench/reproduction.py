"""``mmbench reproduce``: re-run what a record describes and compare every number with it.

A record is also its recipe: method, task, seed, resolved config, recipe, dataset revision and
options, profile, the ``--set`` options as given (:attr:`RunRecord.overrides`; derived from the
resolved config for records older than that field) and, on CPU, torch's thread count. The plan is
made again with the installed plugins and checked against the record before anything runs (a
method option that now resolves differently is reported, never silently re-run with other
settings); then the run and its dependencies are trained from scratch (a private artifact cache:
no teacher is taken from an earlier run) and every metric of every subset — ``best`` and ``last``
test metrics, validation metrics, the TEACHER / STUDENT references — is compared with the record.

Outcomes: ``identical`` (every value equal, bit for bit), ``within-tolerance`` (``tolerance``
given: every |Δ| at most it), ``differs`` (largest |Δ| and where) and ``cannot`` (not reproducible
here, with the reason: another device kind or torch version without a tolerance, a plugin that is
not installed, missing data, a plan that no longer resolves as recorded). Bit-identity is
expected only on the same device kind, torch version, (CPU) thread count and, on the CPU, the same
kind of processor (:func:`mmbench.provenance.cpu_kind`): a CPU record that differs and was made on
another kind says so.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mmbench.errors import MMBenchError
from mmbench.records import RunRecord

Status = Literal["identical", "within-tolerance", "differs", "cannot"]
EXIT_CODES: dict[str, int] = {"identical": 0, "within-tolerance": 0, "differs": 1, "cannot": 3}
"""``mmbench reproduce`` exits with the worst outcome's code: 1 when a record differs, else 3 when one
could not be reproduced here, else 0."""


@dataclass(frozen=True)
class Outcome:
    """What re-running one record gave."""

    path: Path
    record: RunRecord
    status: Status
    detail: str = ""
    largest: tuple[str, float, float] | None = None
    """Where the largest difference is (``best/rgb+depth/miou``), the recorded and the new value."""
    new_path: Path | None = None

    @property
    def delta(self) -> float:
        if self.largest is None:
            return 0.0
        _, old, new = self.largest
        return abs(new - old) if math.isfinite(old) and math.isfinite(new) else math.inf

    def line(self) -> str:
        """One line for the terminal: outcome, record, and why."""
        name = f"{self.record.task.name}/{self.record.method.name}/{self.record.run_id} (seed {self.record.seed})"
        word = {"identical": "identical", "within-tolerance": "within tolerance", "differs": "differs",
                "cannot": "can't reproduce here"}[self.status]
        return f"{word:<20} {name}" + (f": {self.detail}" if self.detail else "")


def _format(value: Any) -> str:
    """A resolved config value as ``--set`` text (the inverse of :func:`mmbench.config.apply_overrides`)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(_format(v) for v in value)
    return str(value)


def _plan_for(registry: Any, record: RunRecord) -> Any:
    """The plan of ``record`` with the installed plugins, checked against what the record resolved."""
    from mmbench.config import to_jsonable
    from mmbench.plan import plan_run

    overrides = dict(record.overrides) if record.overrides is not None else _derived_overrides(registry, record)
    plan = plan_run(registry, record.method.name, record.task.name, record.seed, overrides, record.profile)
    recipe = dataclasses.asdict(plan.recipe)
    gone = sorted(set(record.recipe) - set(recipe))
    if gone:
        raise MMBenchError(f"recipe field(s) {', '.join(gone)} of the record no longer exist")
    mismatch = _first_mismatch(
        [("config", record.config, to_jsonable(plan.config)),
         ("recipe", record.recipe, {k: recipe[k] for k in record.recipe}),
         ("dataset option", record.dataset.options, dict(plan.dataset_options) if record.dataset.options else {}),
         ("dataset revision", {"": record.dataset.revision}, {"": plan.revision}),
         ("subsets", {"": record.subsets}, {"": plan.subset_names})])
    if mismatch:
        raise MMBenchError(f"the plan no longer resolves as recorded: {mismatch}")
    return plan


def _first_mismatch(parts: Sequence[tuple[str, Mapping[str, Any], Mapping[str, Any]]]) -> str | None:
    for label, recorded, planned in parts:
        for key in sorted(set(recorded) | set(planned)):
            old, new = _jsonish(recorded.get(key)), _jsonish(planned.get(key))
            if old != new:
                where = f"{label} {key}".strip()
                return f"{where}: recorded {old!r}, now {new!r}"
    return None


def _jsonish(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonish(v) for v in value]
    return value


def _derived_overrides(registry: Any, record: RunRecord) -> dict[str, str]:
    """For a record without ``overrides``: the options where its resolved config, recipe and
    dataset options differ from what the installed plugins resolve by default."""
    from mmbench.config import to_jsonable
    from mmbench.plan import plan_run

    base = plan_run(registry, record.method.name, record.task.name, record.seed, {}, record.profile)
    config, recipe = to_jsonable(base.config), dataclasses.asdict(base.recipe)
    overrides = {k: _format(v) for k, v in record.config.items() if _jsonish(config.get(k)) != _jsonish(v)}
    overrides.update({f"recipe.{k}": _format(v) for k, v in record.recipe.items()
                      if k in recipe and _jsonish(recipe[k]) != _jsonish(v)})
    overrides.update({f"dataset.{k}": v for k, v in record.dataset.options.items()
                      if base.dataset_options.get(k) != v})
    if record.dataset.revision_overridden:
        overrides["dataset.revision"] = record.dataset.revision
    return overrides


def values_of(record: RunRecord) -> dict[str, float]:
    """Every number a record reports, by where it is: ``best/<subset>/<metric>``, ``last/...``,
    ``val/...`` and ``<role>/<subset>/<metric>`` for the references."""
    values: dict[str, float] = {}
    for selection, per_subset in record.metrics.items():
        for subset, metrics in per_subset.items():
            values.update({f"{selection}/{subset}/{m}": float(v) for m, v in metrics.items()})
    for subset, metrics in record.val_metrics.items():
        values.update({f"val/{subset}/{m}": float(v) for m, v in metrics.items()})
    for ref in record.references:
        for subset, metrics in ref.metrics.items():
            values.update({f"{ref.role}/{subset}/{m}": float(v) for m, v in metrics.items()})
    return values


def compare(recorded: RunRecord, new: RunRecord, tolerance: float | None = None) -> tuple[Status, str, Any]:
    """Compare two records' numbers: the status, a description and the largest difference."""
    if recorded.status != new.status:
        return "differs", f"status {recorded.status} recorded, {new.status} now", None
    if recorded.failure is not None and new.failure is not None and \
            (recorded.failure.epoch, recorded.failure.term) != (new.failure.epoch, new.failure.term):
        return "differs", (f"failed at epoch {recorded.failure.epoch} ({recorded.failure.term}) recorded, at epoch "
                           f"{new.failure.epoch} ({new.failure.term}) now"), None
    old_values, new_values = values_of(recorded), values_of(new)
    missing = sorted(set(old_values) ^ set(new_values))
    if missing:
        side = "missing from the re-run" if missing[0] in old_values else "not in the record"
        return "differs", f"{missing[0]} {side} ({len(missing)} value(s) in one only)", None
    largest: tuple[str, float, float] | None = None
    worst = -1.0
    for key in sorted(old_values):
        old, now = old_values[key], new_values[key]
        if old == now or (math.isnan(old) and math.isnan(now)):
            continue
        delta = abs(now - old) if math.isfinite(old) and math.isfinite(now) else math.inf
        if delta > worst:
            worst, largest = delta, (key, old, now)
    if largest is None:
        return "identical", "", None
    key, old, now = largest
    description = f"largest |Δ| {worst:.3g} at {key} ({old!r} recorded, {now!r} now)"
    if tolerance is not None and worst <= tolerance:
        return "within-tolerance", description + f"; tolerance {tolerance:g}", largest
    return "differs", description, largest


def _environment_gaps(record: RunRecord, device_type: str) -> list[str]:
    """Why bit-identity cannot be expected here (empty: it can)."""
    import torch

    gaps = []
    recorded_type = record.provenance.device.split(":")[0]
    if recorded_type != device_type:
        gaps.append(f"recorded on {recorded_type} ({record.provenance.device_name}), here {device_type}")
    if record.provenance.torch != torch.__version__:
        gaps.append(f"recorded with torch {record.provenance.torch}, here {torch.__version__}")
    return gaps


def same_cpu_kind(record: RunRecord) -> bool:
    """Whether ``record`` is a CPU run made on a processor of this machine's kind."""
    from mmbench.provenance import cpu_kind

    return record.provenance.device.startswith("cpu") and record.provenance.cpu == cpu_kind()


def other_cpu(record: RunRecord) -> str:
    """Why a CPU record may differ here without a code change ("" where the kinds match)."""
    from mmbench.provenance import cpu_kind

    if same_cpu_kind(record):
        return ""
    made = (f"made on {record.provenance.cpu}" if record.provenance.cpu
            else "its record does not say on which processor it was made")
    return (f"{made}, this is {cpu_kind()}: CPU kernels differ between processor kinds, so bit-identity is expected "
            "on the same kind only (re-run it there, or here with mmbench sweep / reproduce --out)")


def choose_sample(records: Sequence[tuple[Path, RunRecord]], count: int,
                  current: Callable[[RunRecord], bool] | None = None) -> list[tuple[Path, RunRecord]]:
    """``count`` records, cheapest first (own training time plus that of the recorded runs it
    depends on), covering every method family (baseline, incomplete, distillation) first, then
    every method plugin, then the rest; records for which ``current`` is true (made by the
    installed versions) before the others. Deterministic."""
    by_id = {record.run_id: record for _, record in records}

    def cost(record: RunRecord) -> float:
        own = record.timings.total_seconds
        return own + sum(by_id[d.run_id].timings.total_seconds for d in record.dependencies if d.run_id in by_id)

    ordered = sorted(records, key=lambda item: (current is not None and not current(item[1]), cost(item[1]),
                                                str(item[0])))
    chosen: list[tuple[Path, RunRecord]] = []
    for key in (lambda r: r.method.family, lambda r: r.method.plugin, lambda r: r.run_id):
        covered = {key(r) for _, r in chosen}
        for item in ordered:
            if len(chosen) >= count:
                return chosen
            if key(item[1]) not in covered and item not in chosen:
                chosen.append(item)
                covered.add(key(item[1]))
    return chosen


def made_by_installed(registry: Any, record: RunRecord) -> bool:
    """Whether ``record`` was made by the installed mmbench and the installed version of its method's plugin."""
    import mmbench

    try:
        installed = registry.plugin_of("method", record.method.name).version
    except MMBenchError:
        return False
    return record.provenance.mmbench == mmbench.__version__ and record.method.version == installed


def reproducible_here(registry: Any, record: RunRecord) -> bool:
    """Whether ``record`` can be expected bit for bit here: made by the installed versions and,
    for a CPU run, on a processor of this machine's kind."""
    cpu = record.provenance.device.startswith("cpu")
    return made_by_installed(registry, record) and (not cpu or same_cpu_kind(record))


def _dependency_order(records: list[tuple[Path, RunRecord]]) -> list[tuple[Path, RunRecord]]:
    """Records that others depend on first, so a re-run teacher is reused by its students."""
    needed = {d.run_id for _, r in records for d in r.dependencies}
    return sorted(records, key=lambda item: (item[1].run_id not in needed, len(item[1].dependencies), str(item[0])))


def reproduce(
    paths: str | Path | Iterable[str | Path], sample: int | None = None, out: str | Path | None = None,
    tolerance: float | None = None, device: str = "auto", data_dir: str | None = None,
    plugins: Sequence[str] = (), disable: Sequence[str] = (), log: Callable[[str], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Re-run the records under ``paths`` (files or results directories) and compare each with
    what it recorded, as ``mmbench reproduce`` does. ``sample``: only that many records (see
    :func:`choose_sample`; records :func:`reproducible_here` first); ``out``: keep the re-run records there (default: a temporary folder,
    removed afterwards); ``tolerance``: compare with this absolute tolerance and run even where
    bit-identity cannot hold (another device kind or torch version); ``device``: ``auto`` uses the
    record's device kind."""
    from mmbench.plugins import Registry
    from mmbench.results import iter_records

    if tolerance is not None and not (math.isfinite(tolerance) and tolerance >= 0):
        raise MMBenchError(f"invalid --tolerance {tolerance}: use a number >= 0, e.g. 0.005 (half a point of a metric in [0, 1]).")
    if sample is not None and sample < 1:
        raise MMBenchError(f"invalid --sample {sample}: use a number of records >= 1.")
    roots = [paths] if isinstance(paths, str | Path) else list(paths)
    records = [(path, record) for path, record in iter_records(roots)]
    if not records:
        raise MMBenchError(f"no run records under {', '.join(str(r) for r in roots)}; give a record file or a results "
                           "directory (OUT of mmbench run / sweep).")
    registry = Registry.load(plugins=plugins, disabled=disable)
    if sample is not None:
        records = choose_sample(records, sample, lambda record: reproducible_here(registry, record))
    log = log or (lambda message: None)
    target = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="mmbench-reproduce-"))
    outcomes = []
    try:
        ordered = _dependency_order(records)
        for number, (path, record) in enumerate(ordered, start=1):
            log(f"[{number}/{len(ordered)}] {path}")
            outcome = _reproduce_one(registry, path, record, target, tolerance, device, data_dir)
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
    finally:
        if out is None:
            shutil.rmtree(target, ignore_errors=True)
    return outcomes


def _reproduce_one(registry: Any, path: Path, record: RunRecord, out: Path, tolerance: float | None,
                   device: str, data_dir: str | None) -> Outcome:
    import torch

    from mmbench.api import execute
    from mmbench.artifacts import ArtifactCache

    def cannot(reason: str) -> Outcome:
        return Outcome(path, record, "cannot", reason)

    recorded_type = record.provenance.device.split(":")[0]
    if device == "auto":
        device = recorded_type if recorded_type != "cuda" or torch.cuda.is_available() else "cpu"
    device_type = device.split(":")[0]
    gaps = _environment_gaps(record, device_type)
    if gaps and tolerance is None:
        return cannot("; ".join(gaps) + " (bit-identity cannot hold: pass --tolerance T to compare within T)")
    try:
        plan = _plan_for(registry, record)
    except MMBenchError as exc:
        return cannot(str(exc))
    threads = record.provenance.threads if device_type == "cpu" else None
    notes = []
    if device_type == "cpu" and threads is None:
        notes.append("threads not recorded: default used")
    from mmbench.engine.runner import RunFailed
    from mmbench.records import read_record, record_path

    try:
        new = execute(registry, [plan], out=out, device=device, data_dir=data_dir, save_weights=True,
                      threads=threads, log=None, artifacts=ArtifactCache(out / ".artifacts"), oversubscribe=True)[0]
    except RunFailed:  # it failed again (a NaN loss): its record says where, compared below
        new = read_record(record_path(out, plan.task.name, plan.method.name, plan.run_id))
    except MMBenchError as exc:
        return cannot(str(exc))
    status, detail, largest = compare(record, new, tolerance)
    if status == "differs" and device_type == "cpu":
        notes.append(other_cpu(record))
    if gaps:
        detail = "; ".join(filter(None, [detail, *gaps]))
    detail = "; ".join(filter(None, [detail, *notes]))
    return Outcome(path, record, status, detail, largest,
                   record_path(out, plan.task.name, plan.method.name, plan.run_id))


def print_outcomes(outcomes: Sequence[Outcome], stream: Any = None) -> None:
    """The summary line after the per-record lines."""
    stream = stream or sys.stdout
    counts = {status: sum(o.status == status for o in outcomes) for status in EXIT_CODES}
    parts = [f"{n} {word}" for word, n in (("identical", counts["identical"]),
                                           ("within tolerance", counts["within-tolerance"]),
                                           ("differ", counts["differs"]),
                                           ("can't be reproduced here", counts["cannot"])) if n]
    print(f"{len(outcomes)} record(s): " + ", ".join(parts), file=stream)


def exit_code(outcomes: Sequence[Outcome]) -> int:
    codes = [EXIT_CODES[o.status] for o in outcomes]
    return 1 if 1 in codes else (3 if 3 in codes else 0)
