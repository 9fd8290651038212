"""Run records → pandas.

:func:`load_runs` reads every ``*.json`` record under one or more directories into a long table
(one row per run × selection × subset × metric, plus a ``mean`` pseudo-subset per run);
:func:`aggregate` gives mean, std and n over seeds. Runs are grouped by a *variant* key (method
config + recipe + profile) so different settings of one method are never averaged together, and
results of different task versions are kept apart (with a warning naming them).
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from mmbench.errors import MMBenchError
from mmbench.records import NewerSchemaError, RunRecord, read_record

COLUMNS = [
    "run_id", "task", "task_version", "kind", "dataset", "revision", "method", "method_version", "variant",
    "profile", "seed", "device", "status", "selection", "subset", "n_modalities", "metric", "value",
    "higher_is_better", "scenario", "teacher", "path", "selected_on", "trained", "customized", "mmbench_version",
]
GROUP = ["task", "task_version", "method", "variant", "profile", "selection", "subset", "metric"]


def variant_key(record: RunRecord, ignore: tuple[str, ...] = ()) -> str:
    """Short hash of everything but the seed that makes runs of one method differ (but the
    config options in ``ignore``)."""
    config = {k: v for k, v in record.config.items() if k not in ignore}
    fields = {"config": config, "recipe": record.recipe, "profile": record.profile,
              "revision": record.dataset.revision}
    if record.dataset.options:  # another split protocol or preprocessing is another variant
        fields["dataset_options"] = record.dataset.options
    if record.method.source_hash:  # edited plugin code is another variant, never merged with the old one
        fields["source"] = record.method.source_hash
    text = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _reference_variant(record: RunRecord, method: str, overrides: dict[str, str]) -> str:
    fields = {"method": method, "overrides": overrides, "recipe": record.recipe, "profile": record.profile,
              "revision": record.dataset.revision}
    if record.dataset.options:
        fields["dataset_options"] = record.dataset.options
    text = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def iter_records(paths: Iterable[str | Path], strict: bool = False) -> Iterable[tuple[Path, RunRecord]]:
    """Valid records under ``paths`` (files or directories, searched recursively). Invalid or
    foreign JSON files are skipped with a one-line warning (``strict``: raised), except records of
    a newer schema, which are always an error."""
    for root in paths:
        root = Path(root)
        if not root.exists():
            raise MMBenchError(f"no such results directory: {root}")
        files = [root] if root.is_file() else sorted(root.rglob("*.json"))
        for path in files:
            try:
                yield path, read_record(path)
            except MMBenchError as exc:
                if strict or isinstance(exc, NewerSchemaError):
                    raise
                warnings.warn(f"skipped {exc}", RuntimeWarning, stacklevel=2)


def _distillation_columns(record: RunRecord) -> dict[str, str]:
    info = record.distillation
    if info is None:
        return {"scenario": "", "teacher": ""}
    return {"scenario": info.scenario, "teacher": "+".join(info.teacher or [])}


def records_to_frame(
    records: Iterable[tuple[Path, RunRecord]], include_failed: bool = False, references: bool = False,
) -> pd.DataFrame:
    """Long table of the records. ``references``: also one row set per TEACHER / STUDENT
    reference of each distillation run, as methods named ``TEACHER`` / ``STUDENT`` (their
    variant is the reference's run config, so references of different teachers stay apart; one
    reference shared by several runs of a seed counts once)."""
    rows = []
    seen_references: set[tuple[str, str]] = set()
    for path, record in records:
        if record.status != "completed" and not include_failed:
            continue
        base = {
            "run_id": record.run_id, "task": record.task.name, "task_version": record.task.version,
            "kind": record.task.kind, "dataset": record.dataset.name, "revision": record.dataset.revision,
            "method": record.method.name, "method_version": record.method.version, "variant": variant_key(record),
            "profile": record.profile, "seed": record.seed, "device": record.provenance.device,
            "status": record.status, "higher_is_better": record.task.higher_is_better, "path": str(path),
            "selected_on": record.selection.split if record.selection else "validation",
            "trained": "+".join(record.trained_modalities), "mmbench_version": record.provenance.mmbench,
            # runs that differ only by the modalities they train on: one "customized" row together
            "customized": variant_key(record, ignore=("modalities",)) if "modalities" in record.config else "",
            **_distillation_columns(record),
        }
        for selection, per_subset in record.metrics.items():
            for subset, values in per_subset.items():
                for metric, value in values.items():
                    rows.append({**base, "selection": selection, "subset": subset,
                                 "n_modalities": subset.count("+") + 1, "metric": metric, "value": value})
            if len(per_subset) > 1:
                metrics = next(iter(per_subset.values())).keys()
                for metric in metrics:
                    mean = sum(v[metric] for v in per_subset.values()) / len(per_subset)
                    rows.append({**base, "selection": selection, "subset": "mean", "n_modalities": 0,
                                 "metric": metric, "value": mean})
        for ref in record.references if references else ():
            if (ref.run_id, ref.role) in seen_references:
                continue
            seen_references.add((ref.run_id, ref.role))
            ref_base = {**base, "run_id": ref.run_id, "method": ref.role.upper(), "scenario": "", "selected_on": "validation",
                        "trained": "+".join(ref.trained_modalities), "customized": "",
                        "variant": _reference_variant(record, ref.method, ref.overrides),
                        "teacher": "+".join(ref.trained_modalities) if ref.role == "teacher" else ""}
            for subset, values in ref.metrics.items():
                for metric, value in values.items():
                    rows.append({**ref_base, "selection": "best", "subset": subset,
                                 "n_modalities": subset.count("+") + 1, "metric": metric, "value": value})
    return pd.DataFrame(rows, columns=COLUMNS)


def load_runs(*paths: str | Path, include_failed: bool = False, references: bool = False) -> pd.DataFrame:
    """Long-format table of the run records under ``paths`` (default: ``runs``); ``references``
    adds the TEACHER / STUDENT reference rows of distillation runs."""
    return records_to_frame(iter_records(paths or ("runs",)), include_failed=include_failed, references=references)


def aggregate(frame: pd.DataFrame, selection: str = "best") -> pd.DataFrame:
    """Mean, sample std (0 for one seed) and n over seeds per (task, version, method, variant,
    profile, subset, metric) for ``selection`` (``best``: best-validation epoch; ``last``)."""
    frame = frame[frame["selection"] == selection]
    for task, versions in frame.groupby("task")["task_version"].unique().items():
        if len(versions) > 1:
            warnings.warn(
                f"task '{task}' has results of versions {', '.join(sorted(map(str, versions)))}; "
                "they are aggregated separately and must not be compared.",
                RuntimeWarning, stacklevel=2,
            )
    grouped = frame.groupby(GROUP, sort=True)["value"]
    result = grouped.agg(mean="mean", std="std", n="count").reset_index()
    result["std"] = result["std"].fillna(0.0)
    return result


def variant_labels(frame: pd.DataFrame) -> dict[tuple[str, str, str], str]:
    """A readable label per ``(task, method, variant)``: the method name, followed — when a method
    has several variants in a task — by what tells them apart (config values, recipe fields,
    profile, teacher), e.g. ``unimodal (modality=depth)``."""
    labels: dict[tuple[str, str, str], str] = {}
    for (task, method), rows in frame.groupby(["task", "method"], sort=True):
        variants = sorted(rows["variant"].unique())
        if method in ("TEACHER", "STUDENT"):  # named by their modalities, as the papers' tables do
            for v in variants:
                these = rows[rows["variant"] == v]
                modalities = these["teacher"].iloc[0] or "+".join(sorted(set(these["subset"]) - {"mean"}))
                labels[(task, method, v)] = f"{method} ({modalities})"
            continue
        if len(variants) == 1:
            labels[(task, method, variants[0])] = method
            continue
        settings = {v: _variant_settings(rows[rows["variant"] == v]) for v in variants}
        keys = sorted({k for s in settings.values() for k in s})
        differing = [k for k in keys if len({str(settings[v].get(k)) for v in variants}) > 1]
        for v in variants:
            parts = [f"{k}={settings[v][k]}" for k in differing if k in settings[v]]
            labels[(task, method, v)] = f"{method} ({', '.join(parts) or v})"
    return labels


def _variant_settings(rows: pd.DataFrame) -> dict[str, str]:
    """Flat settings of one variant, read from its first record."""
    first = rows.iloc[0]
    settings = {"profile": str(first["profile"])}
    if first["teacher"]:
        settings["teacher"] = str(first["teacher"])
    path = first["path"]
    if first["method"] in ("TEACHER", "STUDENT") or not path:
        return settings
    record = read_record(Path(path))
    settings.update({k: json.dumps(v) if isinstance(v, dict | list) else str(v) for k, v in record.config.items()})
    settings.update({f"recipe.{k}": str(v) for k, v in record.recipe.items()})
    if record.method.source_hash:
        settings["source"] = record.method.source_hash
    return settings


def mean_interval(values: Iterable[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """Student-t confidence interval of the mean over seeds; ``None`` below 3 values (an interval
    from two seeds says nothing)."""
    from scipy import stats

    values = [float(v) for v in values]
    if len(values) < 3 or not all(math.isfinite(v) for v in values):
        return None
    series = pd.Series(values)
    half = float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * series.std() / len(values) ** 0.5)
    return float(series.mean()) - half, float(series.mean()) + half


def paired_test(method: pd.Series, baseline: pd.Series, higher_is_better: bool, alpha: float = 0.05) -> str:
    """Two-sided paired t-test over the seeds both series have (indexed by seed): ``"better"`` /
    ``"worse"`` when significant at ``alpha``, ``"same"`` otherwise, ``""`` with fewer than 3 pairs."""
    from scipy import stats

    common = method.index.intersection(baseline.index)
    if len(common) < 3:
        return ""
    a, b = method.loc[common].astype(float), baseline.loc[common].astype(float)
    if not (a.map(math.isfinite).all() and b.map(math.isfinite).all()):
        return ""
    differences = a - b
    if float(differences.std()) == 0.0:
        significant = float(differences.abs().max()) > 0.0  # constant non-zero gap over every seed
    else:
        significant = bool(stats.ttest_rel(a, b).pvalue < alpha)
    if not significant:
        return "same"
    return "better" if (float(differences.mean()) > 0) == higher_is_better else "worse"


def rank_marks(values: Iterable[float | None], higher_is_better: bool, decimals: int = 1) -> list[str]:
    """``"best"`` / ``"second"`` / ``""`` per value, compared as displayed (rounded to
    ``decimals``): ties share a mark, and the second mark goes to the next distinct value."""
    shown = [None if v is None or pd.isna(v) else round(float(v), decimals) for v in values]
    distinct = sorted({v for v in shown if v is not None}, reverse=higher_is_better)
    best = distinct[0] if distinct else None
    second = distinct[1] if len(distinct) > 1 else None
    return ["best" if v is not None and v == best else "second" if v is not None and v == second else ""
            for v in shown]
