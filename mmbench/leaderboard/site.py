"""Build the static leaderboard site from run records and reported numbers.

    site/index.html                    tasks, methods
    site/tasks/<task>.html             method × subset table, plots, gallery
    site/tasks/<task>/leaderboard.csv  (and .json) the aggregated table
    site/methods/<method>.html         paper, code, plugin, config defaults, results across tasks
    site/runs/<run_id>.html            one full record
    site/style.css

The site is written into a temporary folder next to ``out`` and swapped in when complete, so a
failed build never leaves a half-written site; identical inputs give byte-identical files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from mmbench.errors import MMBenchError, unknown_name_error
from mmbench.files import atomic_write, describe_os_error, share_like_created
from mmbench.leaderboard import plots
from mmbench.leaderboard.reported import load_reported
from mmbench.leaderboard.tables import (
    SIGNIFICANCE_TEST,
    Row,
    TaskTable,
    build_task_table,
    percent,
    subset_header,
)
from mmbench.records import RunRecord
from mmbench.results import iter_records, records_to_frame, variant_labels

SITE_MARKER = ".mmbench-site"
LOWER_IS_BETTER = {"acer", "apcer", "bpcer", "error"}
DEFAULT_BASELINE = "fusion-dropout"
PLOTTED_ROWS = 20
"""A task page's plots draw the reference rows and the best this many method rows."""


@dataclass
class BuildSummary:
    out: Path
    records: int
    tasks: int
    pages: int


def slug(name: str) -> str:
    """A file name for a task, method or run id: safe characters kept, anything else (``/``,
    ``..``, markup) replaced, with a short hash so that different names never collide."""
    safe = re.sub(r"[^A-Za-z0-9._+-]", "_", name).lstrip(".") or "_"
    if safe == name:
        return name
    return f"{safe[:60]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def environment() -> Environment:
    env = Environment(loader=PackageLoader("mmbench.leaderboard", "templates"),
                      autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["slug"] = slug
    return env


def collect_records(inputs: list[Path], profile: str | None) -> list[tuple[Path, RunRecord]]:
    """Valid records under ``inputs``, each run once, optionally one profile. Of two records of
    one run id, a completed one wins over a failed one; two completed ones must report the same
    numbers (the same folder given twice), else the build stops naming both files."""
    seen: dict[str, tuple[Path, RunRecord]] = {}
    for path, record in iter_records(inputs):
        if profile is not None and record.profile != profile:
            continue
        first = seen.get(record.run_id)
        if first is None or (first[1].status != "completed" and record.status == "completed"):
            seen[record.run_id] = (path, record)
        elif record.status == "completed" and first[1].status == "completed" and \
                (first[1].metrics, first[1].references) != (record.metrics, record.references):
            raise MMBenchError(f"run {record.run_id} has two records with different numbers: {first[0]} and {path}; "
                               "keep one of them (mmbench reproduce RECORD says which the installed code gives).")
    return sorted(seen.values(), key=lambda item: (item[1].task.name, item[1].method.name, item[1].seed, item[1].run_id))


class SiteBuilder:
    """Holds the inputs of one build and renders every page into ``root``."""

    def __init__(self, records: list[tuple[Path, RunRecord]], reported: pd.DataFrame, baseline: str,
                 profile: str | None, plugins: Sequence[str] = (), disable: Sequence[str] = ()):
        self.records = records
        self.plugins, self.disable = tuple(plugins), tuple(disable)
        self.by_id = {record.run_id: (path, record) for path, record in records}
        self.reported = reported
        self.baseline = baseline
        self.profile = profile
        self.frame = self._latest_versions(records_to_frame(records, references=True))
        self.labels = variant_labels(self.frame) if not self.frame.empty else {}
        self.env = environment()
        self.pages = 0
        self._registry: Any = None

    def _installed(self) -> Any:
        """The installed plugins' registry, loaded once per build."""
        if self._registry is None:
            from mmbench.plugins import Registry

            self._registry = Registry.load(plugins=self.plugins, disabled=self.disable)
        return self._registry

    def _method_spec(self, method: str) -> Any:
        """The installed plugin's spec of ``method``, or ``None``."""
        try:
            return self._installed().method(method)
        except MMBenchError:
            return None

    def _task_spec(self, name: str) -> tuple[Any, Any] | None:
        """The installed task ``name`` and its dataset, or ``None``."""
        try:
            task = self._installed().task(name)
            return task, self._installed().dataset_of(task)
        except MMBenchError:
            return None

    def _plugin_version(self, plugin: str) -> str | None:
        """The installed version of plugin ``plugin`` (``None``: not installed)."""
        return {p.name: p.version for p in self._installed().plugins if not p.error}.get(plugin)

    def version_note(self, records: list[RunRecord]) -> str:
        """``made with mmbench 0.1.0; installed 0.2.0`` (and the same for the method's plugin) where
        ``records`` were made by other versions than the installed ones; empty where they were not."""
        import mmbench

        notes = []
        made = sorted({r.provenance.mmbench for r in records})
        if made and made != [mmbench.__version__]:
            notes.append(f"made with mmbench {', '.join(made)}; installed {mmbench.__version__}")
        for plugin in sorted({r.method.plugin for r in records}):
            installed = self._plugin_version(plugin)
            versions = sorted({r.method.version for r in records if r.method.plugin == plugin})
            if installed is not None and versions != [installed]:
                notes.append(f"made with {plugin} {', '.join(versions)}; installed {installed}")
        return " · ".join(notes)

    def _mixed_versions(self, task: str, table: TaskTable) -> list[str]:
        """One line per method or task plugin whose records in this table come from several versions."""
        records = [self.by_id[run][1] for row in table.rows if row.kind == "method" for _, run in row.seeds
                   if run in self.by_id]
        lines = []
        for method in sorted({r.method.name for r in records}):
            versions = sorted({r.method.version for r in records if r.method.name == method})
            if len(versions) > 1:
                plugin = next(r.method.plugin for r in records if r.method.name == method)
                lines.append(f"method '{method}' has records of plugin {plugin} versions {', '.join(versions)}")
        try:
            task_plugin = self._installed().plugin_of("task", task).name
        except MMBenchError:
            task_plugin = None
        versions = sorted({r.provenance.plugins.get(task_plugin, "?") for r in records}) if task_plugin else []
        if len(versions) > 1:
            lines.append(f"its records come from versions {', '.join(versions)} of task plugin {task_plugin}")
        return lines

    @staticmethod
    def _latest_versions(frame: pd.DataFrame) -> pd.DataFrame:
        """Keep each task's newest version; older results are never mixed in (with a warning)."""
        keep = []
        for task, rows in frame.groupby("task", sort=True):
            versions = sorted(rows["task_version"].astype(str).unique())
            if len(versions) > 1:
                warnings.warn(f"task '{task}' has results of versions {', '.join(versions)}; "
                              f"the leaderboard shows version {versions[-1]} only.", RuntimeWarning, stacklevel=2)
            keep.append(rows[rows["task_version"].astype(str) == versions[-1]])
        return pd.concat(keep) if keep else frame

    # -- pages ---------------------------------------------------------------------------
    def render(self, root: Path) -> int:
        tasks = self._task_infos()
        common = {"nav_tasks": [t["name"] for t in tasks], "n_records": len(self.records),
                  "profile_filter": self.profile or "", "significance_test": SIGNIFICANCE_TEST}
        (root / "style.css").write_bytes((Path(__file__).parent / "templates" / "style.css").read_bytes())
        tables = {}
        for info in tasks:
            tables[info["name"]] = self._task_page(root, info, common)
        methods = sorted(m for m in self.frame["method"].unique() if m not in ("TEACHER", "STUDENT")) if not self.frame.empty else []
        for method in methods:
            self._method_page(root, method, tables, common)
        for path, record in self.records:
            self._run_page(root, path, record, common)
        self._write(root / "index.html", self.env.get_template("index.html").render(
            root="", tasks=tasks, methods=methods, **common))
        return self.pages

    def _write(self, path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.pages += path.suffix == ".html"

    def _task_infos(self) -> list[dict[str, Any]]:
        names = sorted(set(self.frame["task"]) | set(self.reported["task"]))
        infos = []
        for name in names:
            installed = self._task_spec(name)
            runs = [r for _, r in self.records if r.task.name == name]
            rows = self.frame[self.frame["task"] == name]
            reported = self.reported[self.reported["task"] == name]
            if runs:
                latest = max(runs, key=lambda r: (r.task.version, r.created))
                metric, higher = latest.task.primary_metric, latest.task.higher_is_better
                modalities, kind = latest.task.modalities, latest.task.kind
                dataset, repo, revision = latest.dataset.name, latest.dataset.repo or "", latest.dataset.revision
            else:
                metric = str(reported["metric"].iloc[0])
                higher, kind, dataset, repo, revision = metric not in LOWER_IS_BETTER, "", name, "", ""
                modalities = _reported_modalities(reported["subset"])
                if installed is not None:  # the installed task's protocol orders the columns
                    task, spec = installed
                    modalities, kind, dataset = list(task.modality_names(spec)), task.kind, spec.name
                    repo, revision = getattr(spec.source, "repo", "") or "", spec.revision
            methods = {m for m in rows["method"].unique() if m not in ("TEACHER", "STUDENT")}
            infos.append({
                "name": name, "kind": kind, "metric": metric, "higher_is_better": higher, "modalities": list(modalities),
                "dataset": dataset, "repo": repo, "revision": revision, "n_methods": len(methods),
                "n_runs": len({r.run_id for r in runs}), "n_reported": len(reported.groupby(["paper", "table", "paper_method"])),
                "updated": max((r.created for r in runs), default=""),
                "versions": ", ".join(sorted({r.task.version for r in runs}))
                or (installed[0].version if installed else "—"),
                "has_distillation": bool((rows["scenario"] != "").any()) if not rows.empty else False,
                "baseline_present": bool((rows["method"] == self.baseline).any()) if not rows.empty else False,
            })
        return infos

    def _task_page(self, root: Path, info: dict[str, Any], common: dict[str, Any]) -> TaskTable:
        name = info["name"]
        table = build_task_table(self.frame, self.reported, name, info["metric"], info["higher_is_better"],
                                 info["modalities"], self.labels, self.baseline)
        for row in table.rows:
            if row.kind == "method":
                row.version_note = self.version_note([self.by_id[run][1] for _, run in row.seeds if run in self.by_id])
        mixed = self._mixed_versions(name, table)
        for line in mixed:
            warnings.warn(f"task '{name}': {line}; one table compares them as one code. Re-run the older records "
                          "(mmbench sweep / mmbench reproduce --out) to compare like with like.", RuntimeWarning,
                          stacklevel=2)
        groups: list[list[Row]] = []
        for row in table.rows:
            if row.kind == "reported" and groups and groups[-1][0].kind == "method" and groups[-1][0].method == row.method:
                groups[-1].append(row)
            else:
                groups.append([row])
        folder = root / "tasks" / slug(name)
        folder.mkdir(parents=True, exist_ok=True)
        csv_frame = pd.DataFrame(table.csv_rows)
        atomic_write(folder / "leaderboard.csv", lambda f: csv_frame.to_csv(f, index=False, lineterminator="\n"), mode="w")
        json_text = json.dumps({"task": name, "metric": info["metric"], "higher_is_better": info["higher_is_better"],
                                "rows": _json_safe(table.csv_rows)}, indent=2, sort_keys=True, allow_nan=False) + "\n"
        (folder / "leaderboard.json").write_text(json_text, encoding="utf-8")
        plotted, omitted = self._plotted(table, PLOTTED_ROWS)
        html = self.env.get_template("task.html").render(
            root="../", t=info, table=table, groups=groups, header=subset_header(info["modalities"], table.subsets),
            mixed_versions=mixed,
            bars=self._bars(table, plotted, info), curves=self._curves(plotted, info),
            gallery=self._gallery(table, folder), plot_omitted=omitted, plotted_rows=PLOTTED_ROWS,
            deviations=self._task_deviations(name, {r.method for r in table.rows if r.kind != "reference"}), **common)
        self._write(root / "tasks" / f"{slug(name)}.html", html)
        return table

    def _task_deviations(self, task: str, methods: set[str]) -> list[dict[str, str]]:
        """The fidelity ledger of ``task``: the installed task's known differences from the
        official protocols, then those of each method shown that concern it."""
        installed = self._task_spec(task)
        rows = [_deviation_row("every method", d) for d in (installed[0].deviations if installed else ())]
        for method in sorted(m for m in methods if m):
            spec = self._method_spec(method)
            rows += [_deviation_row(method, d) for d in (spec.deviations if spec else ()) if not d.tasks or task in d.tasks]
        return rows

    @staticmethod
    def _plotted(table: TaskTable, limit: int) -> tuple[list[Row], int]:
        """The reference rows and the best ``limit`` method rows (the table's order), and how
        many method rows that leaves out: a plot of hundreds of rows is unreadable and slow."""
        references = [r for r in table.rows if r.kind == "reference"]
        methods = [r for r in table.rows if r.kind == "method"]
        return references + methods[:limit], max(len(methods) - limit, 0)

    def _bars(self, table: TaskTable, rows: list[Row], info: dict[str, Any]) -> Markup | str:
        if not rows:
            return ""
        means = [[c.sort for c in r.cells] for r in rows]
        stds = [[c.std for c in r.cells] for r in rows]
        svg = plots.subset_bars([r.label for r in rows], table.subsets, means, stds, info["metric"], f"bars-{info['name']}")
        return Markup(svg)

    def _curves(self, rows: list[Row], info: dict[str, Any]) -> Markup | str:
        series = []
        for row in rows:
            if row.kind != "method" or row.customized:  # a customized row's runs are other rows' curves
                continue
            per_epoch: dict[int, list[float]] = defaultdict(list)
            for _seed, run_id in row.seeds:
                record = self.by_id[run_id][1]
                for point in record.curves:
                    values = [m[info["metric"]] for m in point.get("val", {}).values() if info["metric"] in m]
                    if values:
                        per_epoch[int(point["epoch"])].append(sum(values) / len(values))
            if per_epoch:
                epochs = sorted(per_epoch)
                series.append((row.label, epochs, [100 * sum(per_epoch[e]) / len(per_epoch[e]) for e in epochs]))
        if not series:
            return ""
        return Markup(plots.curves(series, f"validation {info['metric']} (%)", f"curves-{info['name']}"))

    def _gallery(self, table: TaskTable, folder: Path) -> list[dict[str, Any]]:
        """Per fixed sample: the modalities and ground truth once, then each method's prediction."""
        samples: dict[int, list[dict[str, str]]] = {}
        inputs_done: set[int] = set()
        for row in table.rows:
            if row.kind != "method" or not row.seeds or row.customized:
                continue
            path, record = self.by_id[row.seeds[0][1]]
            for entry in record.gallery:
                source = _gallery_file(path, entry.path)
                if source is None:
                    continue
                if entry.kind == "prediction":
                    caption = row.label
                elif entry.sample in inputs_done:
                    continue
                else:
                    caption = entry.kind
                target = folder / "gallery" / slug(f"{record.run_id}-{entry.sample}-{entry.kind}.png")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
                samples.setdefault(entry.sample, []).append(
                    {"src": f"{slug(table.name)}/gallery/{target.name}", "caption": caption})
            inputs_done.update(e.sample for e in record.gallery)
        return [{"sample": s, "images": images} for s, images in sorted(samples.items())]

    def _method_page(self, root: Path, method: str, tables: dict[str, TaskTable], common: dict[str, Any]) -> None:
        records = [r for _, r in self.records if r.method.name == method]
        first = records[0]
        defaults, note, description = _config_defaults(self._method_spec(method))
        results = []
        for task, table in sorted(tables.items()):
            for row in table.rows:
                if row.kind == "method" and row.method == method:
                    filled = [(s, c) for s, c in zip(table.subsets, row.cells, strict=True) if c.text]
                    column, cell = filled[-1] if filled else ("", None)
                    results.append({"task": task, "label": row.label, "setting": row.setting, "profile": row.profile,
                                    "device": row.device, "seeds": row.seeds, "column": column,
                                    "text": cell.text if cell else "",
                                    "sort": "" if cell is None or cell.sort is None else f"{cell.sort:.6f}"})
        repo = first.method.repo.split()[0] if first.method.repo else ""
        info = {"name": method, "paper": first.method.paper, "repo": first.method.repo,
                "repo_url": repo if repo.startswith("https://") else "", "plugin": first.method.plugin,
                "versions": ", ".join(sorted({r.method.version for r in records})), "description": description,
                "defaults": defaults, "defaults_note": note, "results": results,
                "deviations": [_deviation_row(", ".join(d.tasks) or "every task", d)
                               for d in getattr(self._method_spec(method), "deviations", ())]}
        self._write(root / "methods" / f"{slug(method)}.html",
                    self.env.get_template("method.html").render(root="../", m=info, **common))

    def _run_page(self, root: Path, path: Path, record: RunRecord, common: dict[str, Any]) -> None:
        best = record.metrics.get("best", {})
        metric_names = sorted({k for values in best.values() for k in values})
        rows = [(subset, {k: percent(v) for k, v in values.items()}) for subset, values in best.items()]
        series = []
        for point in record.curves:
            values = [m[record.task.primary_metric] for m in point.get("val", {}).values()
                      if record.task.primary_metric in m]
            if values:
                series.append((int(point["epoch"]), 100 * sum(values) / len(values)))
        svg = Markup(plots.line([e for e, _ in series], [v for _, v in series], "epoch",
                                f"validation {record.task.primary_metric} (%)")) if series else ""
        dependencies = [(d.role, d.method, d.run_id, d.run_id in self.by_id) for d in record.dependencies]
        html = self.env.get_template("run.html").render(
            root="../", r=record, metric_names=metric_names, best_metrics=rows, curves=svg, dependencies=dependencies,
            version_note=self.version_note([record]),
            record_json=json.dumps(record.model_dump(mode="json"), indent=2, sort_keys=True), **common)
        self._write(root / "runs" / f"{slug(record.run_id)}.html", html)


def _json_safe(value: Any) -> Any:
    """``value`` with every non-finite float as ``None`` (JSON has no NaN or infinity)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _gallery_file(record_path: Path, relative: str) -> Path | None:
    """The gallery PNG a record names, only if it is a ``.png`` inside the record's folder."""
    folder = record_path.parent.resolve()
    candidate = (folder / relative).resolve()
    if candidate.suffix != ".png" or not candidate.is_relative_to(folder) or not candidate.is_file():
        warnings.warn(f"skipped gallery image '{relative}' of {record_path}: not a PNG inside the record's folder",
                      RuntimeWarning, stacklevel=2)
        return None
    return candidate


def _config_defaults(spec: Any) -> tuple[list[tuple[str, str]], str, str]:
    """The method's config fields and defaults from its installed plugin (``spec`` ``None``: not installed)."""
    if spec is None:
        return [], "The plugin of this method is not installed where the site was built.", ""
    fields = dataclasses.fields(spec.config) if dataclasses.is_dataclass(spec.config) else ()
    defaults = []
    for f in fields:
        if f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            value = "(required)"
        defaults.append((f.name, json.dumps(value) if not isinstance(value, str) else value))
    return defaults, "This method has no options.", spec.description


def _deviation_row(scope: str, deviation: Any) -> dict[str, str]:
    return {"scope": scope, "aspect": deviation.aspect, "official": deviation.official, "mmbench": deviation.mmbench,
            "source": deviation.source}


def _reported_modalities(subsets: Any) -> list[str]:
    """Modalities named in reported subsets, in the order they appear within subsets (ties by
    name: never set order, which changes with the interpreter's hash seed)."""
    parts = [s.split("+") for s in subsets if s != "mean"]
    names = {m for p in parts for m in p}
    return sorted(names, key=lambda m: (min(p.index(m) for p in parts if m in p), m))


def build_site(inputs: list[Path], out: Path, reported_dir: Path | None = None, profile: str | None = None,
               baseline: str = DEFAULT_BASELINE, require_baseline: bool = False, plugins: Sequence[str] = (),
               disable: Sequence[str] = ()) -> BuildSummary:
    """Render the site for the records under ``inputs`` into ``out`` (replaced atomically; an
    existing non-site folder is never overwritten, and nothing but this build's own temporary
    folders is ever deleted). ``require_baseline``: the baseline was asked for by name and must
    be among the runs. ``plugins`` / ``disable``: as ``--plugin`` / ``--disable`` (the method
    pages show the configs and versions of the plugins loaded so)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / SITE_MARKER).exists())):
        raise MMBenchError(f"{out} exists and is not an mmbench site; choose an empty or new --out folder.")
    records = collect_records([Path(p) for p in inputs], profile)
    reported = load_reported(reported_dir)
    if not records and reported.empty:
        raise MMBenchError(f"no run records under {', '.join(map(str, inputs))}"
                           + (f" with profile '{profile}'" if profile else "") + "; nothing to build.")
    methods = {record.method.name for _, record in records}
    if require_baseline and baseline not in methods:
        raise unknown_name_error("baseline method", baseline, methods,
                                 hint="--baseline must be a method with runs among the inputs; no ▲/▼ markers "
                                      "could be drawn against it.")
    builder = SiteBuilder(records, reported, baseline, profile, plugins, disable)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", suffix=".tmp", dir=out.parent))
    except OSError as exc:
        raise describe_os_error(exc, out.parent, "choose another --out folder.") from None
    try:
        pages = builder.render(staging)
        (staging / SITE_MARKER).write_text("built by mmbench leaderboard build\n")
        share_like_created(staging, directory=True)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", suffix=".tmp", dir=out.parent))
            os.rename(out, old)  # onto our own empty folder: never a path that merely matches a pattern
            try:
                os.rename(staging, out)
            except OSError:
                os.rename(old, out)  # put the previous site back
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, out)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise describe_os_error(exc, out, "choose another --out folder.") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    tasks = len(set(builder.frame["task"]) | set(reported["task"])) if not builder.frame.empty else reported["task"].nunique()
    return BuildSummary(out=out, records=len(records), tasks=tasks, pages=pages)
