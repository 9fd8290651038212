"""A sweep: a grid of methods × tasks × ``--set`` values × distillation scenarios × seeds,
expanded into independent runs identified by their content-addressed run ids.

The grid comes from command-line lists or a TOML / YAML file with the same keys::

    methods = ["kd", "dkd", "mlkd"]
    tasks = ["synth-mssar-cls"]
    seeds = "0-4"                      # or [0, 1, 2]
    scenarios = ["cross-modal", "multi-modal"]   # distillation methods only
    profile = "smoke"
    [set]
    logit_standardization = ["false", "true"]

A file may instead hold several grids as ``[[grid]]`` tables (each with the keys above; the
top-level ``seeds``, ``profile``, ``scenarios`` and ``set`` are their defaults) and describe
itself with ``title``, ``paper``, ``table`` and ``note`` — the reproduction files of
``leaderboards/reproduce/``, where each method of a paper's table needs its own settings.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmbench.artifacts import ArtifactCache
from mmbench.config import parse_seeds
from mmbench.errors import MMBenchError, echo
from mmbench.plan import RunPlan, plan_run
from mmbench.plugins import Registry
from mmbench.records import read_record, record_path

GRID_KEYS = {"methods", "tasks", "seeds", "scenarios", "set", "profile"}
FILE_KEYS = GRID_KEYS | {"grid", "title", "paper", "table", "note"}
"""The keys of a sweep file: a grid's, or ``[[grid]]`` tables with defaults and a description."""


@dataclass(frozen=True)
class SweepJob:
    """One run of the grid, as the ``mmbench run`` arguments that reproduce it."""

    method: str
    task: str
    seed: int
    overrides: tuple[tuple[str, str], ...] = ()
    profile: str = "smoke"

    def run_args(self) -> list[str]:
        args = ["run", "--method", self.method, "--task", self.task, "--seeds", str(self.seed),
                "--profile", self.profile, "--no-progress"]
        for key, value in self.overrides:
            args += ["--set", f"{key}={value}"]
        return args

    def describe(self) -> str:
        sets = " ".join(f"{k}={v}" for k, v in self.overrides)
        return f"{self.method} on {self.task}, seed {self.seed}" + (f" ({sets})" if sets else "")


@dataclass
class PlannedJob:
    job: SweepJob
    run_id: str = ""
    record: Path | None = None
    status: str = "pending"  # pending, recorded, cached, duplicate, invalid
    reason: str = ""
    level: int = 0
    """Jobs run level by level: a dependency (a teacher) is on a lower level than every run that needs it."""
    save_weights: bool = False
    """A dependency: its weights go to the artifact cache for the runs that need it."""
    needed_by: int = 0
    """How many pending runs of the sweep need this one (0: nothing depends on it)."""


@dataclass
class Grid:
    methods: list[str]
    tasks: list[str]
    seeds: list[int]
    sets: dict[str, list[str]] = field(default_factory=dict)
    scenarios: list[str] = field(default_factory=list)
    profile: str = "smoke"
    parts: list[Grid] = field(default_factory=list)
    """A file's ``[[grid]]`` tables: the sweep is the union of their runs (``methods`` / ``tasks``
    above then list every part's, for checking the names)."""
    title: str = ""


def as_list(value: Any, key: str) -> list[str]:
    """A sweep key's values: a list, or a comma-separated string."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, Sequence):
        return [str(v) for v in value]
    raise MMBenchError(f"sweep key '{key}' must be a list or a comma-separated string, got {value!r}.")


def _seed_list(seeds: Any, source: str) -> list[int]:
    """A sweep file's ``seeds``, checked as ``--seeds`` is: ``3``, ``"0-4"``, ``"0,2,5"`` or a list
    of whole numbers between 0 and 2³² − 1."""
    if isinstance(seeds, bool) or not isinstance(seeds, str | int | list | tuple):
        raise MMBenchError(f"{source}: 'seeds' must be a whole number, a range such as \"0-4\" or a list of whole "
                           f"numbers, got {echo(seeds)}.")
    if isinstance(seeds, list | tuple):
        wrong = [s for s in seeds if isinstance(s, bool) or not isinstance(s, int)]
        if wrong or not seeds:
            raise MMBenchError(f"{source}: 'seeds' must list whole numbers, got {echo(wrong[0] if wrong else seeds)}.")
        seeds = ",".join(str(s) for s in seeds)
    try:
        return parse_seeds(str(seeds))
    except MMBenchError as exc:
        raise MMBenchError(f"{source}: 'seeds': {exc}") from None


def grid_from_mapping(data: Mapping[str, Any], source: str) -> Grid:
    if "grid" in data:
        return _grids_from_mapping(data, source)
    unknown = sorted(set(data) - GRID_KEYS)
    if unknown:
        raise MMBenchError(f"{source}: unknown key(s) {', '.join(unknown)}; a sweep has {', '.join(sorted(GRID_KEYS))}.")
    for key in ("methods", "tasks"):
        if not data.get(key):
            raise MMBenchError(f"{source}: '{key}' is required (e.g. {key} = [\"...\"]).")
    seed_list = _seed_list(data.get("seeds", "0"), source)
    sets = data.get("set", {}) or {}
    if not isinstance(sets, Mapping):
        raise MMBenchError(f"{source}: 'set' must be a table of key = [values].")
    return Grid(methods=as_list(data["methods"], "methods"), tasks=as_list(data["tasks"], "tasks"),
                seeds=seed_list, sets={str(k): as_list(v, f"set.{k}") for k, v in sets.items()},
                scenarios=as_list(data.get("scenarios", []), "scenarios"), profile=str(data.get("profile", "smoke")))


def _grids_from_mapping(data: Mapping[str, Any], source: str) -> Grid:
    """A file of ``[[grid]]`` tables; the top-level grid keys are each table's defaults."""
    unknown = sorted(set(data) - FILE_KEYS)
    if unknown:
        raise MMBenchError(f"{source}: unknown key(s) {', '.join(unknown)}; a file of [[grid]] tables has "
                           f"{', '.join(sorted(FILE_KEYS))}.")
    tables = data["grid"]
    if not isinstance(tables, list) or not tables or not all(isinstance(t, Mapping) for t in tables):
        raise MMBenchError(f"{source}: 'grid' must be one or more [[grid]] tables.")
    defaults = {k: v for k, v in data.items() if k in GRID_KEYS}
    parts = []
    for number, table in enumerate(tables, start=1):
        merged = {**defaults, **table, "set": {**(defaults.get("set") or {}), **(table.get("set") or {})}}
        parts.append(grid_from_mapping(merged, f"{source}, [[grid]] {number}"))
    return Grid(methods=list(dict.fromkeys(m for p in parts for m in p.methods)),
                tasks=list(dict.fromkeys(t for p in parts for t in p.tasks)), seeds=parts[0].seeds,
                profile=parts[0].profile, parts=parts, title=str(data.get("title", "")))


def load_grid_file(path: Path) -> Grid:
    """A sweep file (``.toml``, ``.yaml`` / ``.yml``); errors name the file and what is wrong."""
    if not path.is_file():
        raise MMBenchError(f"sweep file {path} does not exist.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise MMBenchError(f"sweep file {path} is not UTF-8 text (at byte offset {exc.start}); save it as UTF-8.") from None
    try:
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            raise MMBenchError(f"sweep file {path}: use a .toml or .yaml file.")
    except MMBenchError:
        raise
    except Exception as exc:  # tomllib / yaml parse errors
        raise MMBenchError(f"sweep file {path} does not parse: {exc}".splitlines()[0]) from None
    if not isinstance(data, Mapping):
        raise MMBenchError(f"sweep file {path}: expected a table of keys at the top level.")
    return grid_from_mapping(data, str(path))


MAX_RUNS_WITHOUT_YES = 100
"""As ``mmbench run --seeds``: a larger sweep must be confirmed (``--yes``) before anything is planned."""


def check_size(runs: int, yes: bool) -> None:
    """Refuse a grid of more than :data:`MAX_RUNS_WITHOUT_YES` runs unless confirmed."""
    if runs > MAX_RUNS_WITHOUT_YES and not yes:
        raise MMBenchError(f"this sweep asks for {runs} runs; add --yes to confirm more than {MAX_RUNS_WITHOUT_YES} "
                           "(--dry-run --yes lists them).")


def expand(grid: Grid, registry: Registry) -> list[SweepJob]:
    """Every run of the grid, in a stable order (tasks, methods, settings, seeds). Scenarios apply
    to distillation methods with a ``scenario`` option only; other methods run once per setting. A file of ``[[grid]]``
    tables: each table's runs in turn, a run listed twice once."""
    if grid.parts:
        return list(dict.fromkeys(job for part in grid.parts for job in expand(part, registry)))
    jobs = []
    keys = sorted(grid.sets)
    for task, method in itertools.product(grid.tasks, grid.methods):
        try:
            spec = registry.method(method)
            # scenarios are an option of the teacher-student methods; a teacher-free one (DisCoM-KD) has none
            distills = spec.distillation is not None and "scenario" in {f.name for f in dataclasses.fields(spec.config)}
        except MMBenchError:
            distills = False  # reported as invalid by plan_jobs
        scenarios = grid.scenarios if distills and grid.scenarios else [None]
        for values in itertools.product(*(grid.sets[k] for k in keys)):
            for scenario in scenarios:
                overrides = list(zip(keys, values, strict=True))
                if scenario is not None:
                    overrides.append(("scenario", scenario))
                for seed in grid.seeds:
                    jobs.append(SweepJob(method, task, seed, tuple(overrides), grid.profile))
    return list(dict.fromkeys(jobs))


def _level(plan: RunPlan) -> int:
    return 1 + max(_level(d.plan) for d in plan.dependencies) if plan.dependencies else 0


def _completed(path: Path) -> bool:
    try:
        return path.exists() and read_record(path).status == "completed"
    except MMBenchError:
        return False


def plan_jobs(jobs: list[SweepJob], registry: Registry, out: Path, force: bool = False,
              artifacts: ArtifactCache | None = None) -> list[PlannedJob]:
    """Resolve each job's run id; mark runs already recorded (completed) and invalid combinations
    (e.g. a segmentation-only method on a classification task) with the reason.

    The trained models the pending runs depend on (teachers) become jobs of their own, first:
    each is planned once, on a lower level than the runs that need it, and runs with
    ``--save-weights`` unless its weights are already in the artifact cache."""
    artifacts = artifacts or ArtifactCache()
    planned: list[PlannedJob] = []
    dependencies: dict[str, PlannedJob] = {}
    seen: dict[str, SweepJob] = {}
    for job in jobs:
        entry = PlannedJob(job)
        try:
            plan = plan_run(registry, job.method, job.task, job.seed, dict(job.overrides), job.profile)
        except MMBenchError as exc:
            entry.status, entry.reason = "invalid", str(exc)
            planned.append(entry)
            continue
        entry.run_id, entry.level = plan.run_id, _level(plan)
        entry.record = record_path(out, job.task, job.method, plan.run_id)
        if plan.run_id in seen:  # e.g. an explicit --set equal to the default
            entry.status, entry.reason = "duplicate", f"same run as {seen[plan.run_id].describe()}"
            planned.append(entry)
            continue
        seen[plan.run_id] = job
        if not force and _completed(entry.record):
            entry.status, entry.reason = "recorded", str(entry.record)
        planned.append(entry)
        if entry.status == "pending":
            for dependency in plan.all_dependencies():
                _add_dependency(dependencies, dependency, out, artifacts)
    by_id = {p.run_id: p for p in planned if p.run_id and p.status in ("pending", "recorded")}
    extra = []
    for run_id, dependency in dependencies.items():
        own = by_id.get(run_id)
        if own is not None:  # the grid has this run itself: it keeps its weights for the others
            if dependency.status == "pending":
                own.status, own.reason, own.save_weights = "pending", "", True
            own.needed_by = dependency.needed_by
        else:
            extra.append(dependency)
    return sorted(extra, key=lambda p: p.level) + planned


def _add_dependency(dependencies: dict[str, PlannedJob], plan: RunPlan, out: Path, artifacts: ArtifactCache) -> None:
    if plan.run_id in dependencies:
        dependencies[plan.run_id].needed_by += 1
        return
    job = SweepJob(plan.method.name, plan.task.name, plan.seed, tuple(sorted(plan.overrides.items())), plan.profile)
    entry = PlannedJob(job, run_id=plan.run_id, record=record_path(out, plan.task.name, plan.method.name, plan.run_id),
                       level=_level(plan), save_weights=True, needed_by=1)
    cached = artifacts.status(plan.run_id)
    if cached == "cached":
        entry.status, entry.reason = "cached", "weights in the artifact cache"
    elif cached != "missing":
        entry.reason = cached
    dependencies[plan.run_id] = entry
