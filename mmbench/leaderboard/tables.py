"""The per-task leaderboard table: method × deployment subset, as plain data for the templates.

Everything numeric is computed here with pandas (via :mod:`mmbench.results`); templates only
print strings. Values are shown in percent with two decimals, as the seed papers print them.
Cells: mean ± std over seeds with n, a 95 % Student-t interval from 3 seeds on, best / second
per column among the reproduced methods (as displayed, ties share a mark), and a paired t-test
over seeds against the task's reference baseline (the STUDENT reference for distillation rows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mmbench.leaderboard.reported import parse_config
from mmbench.results import mean_interval, paired_test, rank_marks

DECIMALS = 2
REFERENCE_ROLES = ("TEACHER", "STUDENT")
SIGNIFICANCE_TEST = "two-sided paired t-test over seeds, α = 0.05"


@dataclass
class Cell:
    text: str = ""
    sort: float | None = None
    std: float | None = None
    detail: str = ""
    mark: str = ""
    significance: str = ""
    title: str = ""


@dataclass
class Row:
    label: str
    method: str
    kind: str  # "method", "reference" or "reported"
    setting: str = ""
    profile: str = ""
    device: str = ""
    seeds: list[tuple[int, str]] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)
    citation: dict[str, str] = field(default_factory=dict)
    variant: str = ""
    selected_on_test: bool = False
    """Selected on the test split, as the paper (``recipe.selection=paper``): shown flagged and
    never ranked with the validation-selected rows."""
    customized: bool = False
    """Assembled from one model per modality combination (the papers' "customized" rows)."""
    version_note: str = ""
    """Set where the row's records were made by other versions than the installed ones, e.g.
    ``made with mmbench 0.1.0; installed 0.2.0``."""

    @property
    def smoke(self) -> bool:
        return self.profile == "smoke"


@dataclass
class TaskTable:
    name: str
    metric: str
    higher_is_better: bool
    modalities: list[str]
    subsets: list[str]
    rows: list[Row]
    baseline: str
    csv_rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    """The reported rows' notes, each once; a row refers to its note by number."""


def percent(value: float) -> str:
    return f"{100 * value:.{DECIMALS}f}"


def subset_header(modalities: list[str], subsets: list[str]) -> list[list[str]]:
    """The papers' ● / ○ header: one row per modality, one column per subset (blank for mean)."""
    return [["" if s == "mean" else ("●" if m in s.split("+") else "○") for s in subsets] for m in modalities]


def _ordered_subsets(frame: pd.DataFrame, modalities: list[str]) -> list[str]:
    """Protocol order (more modalities first, then task modality order), ``mean`` last."""
    names = [s for s in frame["subset"].unique() if s != "mean"]

    def key(subset: str) -> tuple[int, list[int], str]:
        parts = subset.split("+")
        return -len(parts), [modalities.index(p) if p in modalities else len(modalities) for p in parts], subset

    ordered = sorted(names, key=key)
    return [*ordered, "mean"] if (frame["subset"] == "mean").any() else ordered


def _setting(rows: pd.DataFrame, subsets: list[str]) -> str:
    first = rows.iloc[0]
    if first["method"] == "TEACHER":
        return f"teacher on {first['teacher']}"
    if first["method"] == "STUDENT":
        return "student without distillation"
    if first["scenario"]:
        students = ", ".join(s for s in subsets if s in set(rows["subset"]))
        return f"{first['scenario']}: {first['teacher'] or 'no teacher'} → {students}"
    trained = sorted({s for s in rows["subset"] if s != "mean"}, key=lambda s: -len(s.split("+")))
    return f"deploys {', '.join(trained)}" if len(trained) == 1 else "all modalities, every subset"


def _finite(values: pd.Series) -> bool:
    return bool(values.map(math.isfinite).all())


def _per_seed(rows: pd.DataFrame, subset: str) -> pd.Series:
    values = rows[rows["subset"] == subset].drop_duplicates("seed").set_index("seed")["value"].sort_index()
    return values.astype(float)  # a NaN stays (groupby().first() would skip it)


def _row_cells(rows: pd.DataFrame, subsets: list[str]) -> list[Cell]:
    cells = []
    for subset in subsets:
        values = _per_seed(rows, subset)
        if values.empty:
            cells.append(Cell())
            continue
        if not _finite(values):  # a hand-made or foreign record: shown as such, never ranked
            bad = ", ".join(f"seed {s}: {v}" for s, v in values.items() if not math.isfinite(v))
            cells.append(Cell(text=" / ".join(sorted({str(v) for v in values if not math.isfinite(v)})),
                              detail=f"non-finite metric ({bad})", title=bad))
            continue
        mean, std, n = float(values.mean()), float(values.std()) if len(values) > 1 else 0.0, len(values)
        interval = mean_interval(values.tolist())
        detail = (f"95% CI [{percent(interval[0])}, {percent(interval[1])}]" if interval else
                  f"n={n}: too few seeds for an interval")
        seeds = ", ".join(f"seed {s}: {percent(v)}" for s, v in values.items())
        cells.append(Cell(text=f"{percent(mean)} ± {percent(std)}", sort=mean, std=std, detail=f"n={n} · {detail}",
                          title=seeds))
    return cells


def customized_groups(frame: pd.DataFrame, subsets: list[str]) -> list[tuple[str, str, pd.DataFrame]]:
    """(method, key, rows) of each "customized" row: the runs of one method that differ only by
    the modalities they were trained on (``--set modalities=rgb``, ``rgb+depth``, ...), each
    subset's column taken from the runs trained on exactly that subset, the ``mean`` column (when
    every subset has its model) the per-seed mean over the columns, for the seeds present in all.
    Needs two columns or more."""
    out = []
    runs = frame[frame["customized"] != ""]
    for (method, key), family in runs.groupby(["method", "customized"], sort=True):
        parts = [family[(family["trained"] == subset) & (family["subset"] == subset)]
                 for subset in subsets if subset != "mean"]
        parts = [p for p in parts if not p.empty]
        if len(parts) < 2 or family["trained"].nunique() < 2:
            continue
        rows = pd.concat(parts)
        if "mean" in subsets and len(parts) == len(subsets) - 1:  # comparable with the other rows' mean only when complete
            per_seed = rows.groupby("seed")["value"].agg(["mean", "count"])
            complete = per_seed[per_seed["count"] == len(parts)]
            if not complete.empty:
                means = rows.drop_duplicates("seed").set_index("seed").loc[complete.index].reset_index()
                rows = pd.concat([rows, means.assign(subset="mean", value=complete["mean"].to_numpy())])
        out.append((method, key, rows))
    return out


def _baseline_rows(frame: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Runs of the baseline method's most-seeded variant."""
    rows = frame[frame["method"] == baseline]
    if rows.empty:
        return rows
    counts = rows.groupby("variant")["seed"].nunique()
    best = sorted(counts.index, key=lambda v: (-counts[v], v))[0]
    return rows[rows["variant"] == best]


def _student_rows(frame: pd.DataFrame, subset: str) -> pd.DataFrame:
    students = frame[(frame["method"] == "STUDENT") & (frame["subset"] == subset)]
    return _baseline_rows(students, "STUDENT")


def build_task_table(
    frame: pd.DataFrame, reported: pd.DataFrame, task: str, metric: str, higher_is_better: bool,
    modalities: list[str], labels: dict[tuple[str, str, str], str], baseline: str,
) -> TaskTable:
    """The table of one task from the long results frame (``selection == "best"``, the task's
    primary metric) and the reported numbers of that task."""
    frame = frame[(frame["task"] == task) & (frame["metric"] == metric) & (frame["selection"] == "best")]
    reported = reported[(reported["task"] == task) & (reported["metric"] == metric)]
    subsets = _ordered_subsets(pd.concat([frame[["subset"]], reported[["subset"]]]), modalities)
    baseline_runs = _baseline_rows(frame, baseline)
    rows: list[Row] = []
    groups = [((method, variant), group, False) for (method, variant), group in frame.groupby(["method", "variant"], sort=True)]
    combined = [(method, f"customized-{key}", group) for method, key, group in customized_groups(frame, subsets)]
    groups += [((method, variant), group, True) for method, variant, group in combined]
    for (method, variant), group, customized in groups:
        first = group.iloc[0]
        kind = "reference" if method in REFERENCE_ROLES else "method"
        row = Row(label=f"{method} (customized)" if customized else labels.get((task, method, variant), method),
                  method=method, kind=kind, variant=variant,
                  setting="one model per modality combination" if customized else _setting(group, subsets),
                  profile=str(first["profile"]), device=str(first["device"]),
                  seeds=sorted({(int(s), str(r)) for s, r in zip(group["seed"], group["run_id"], strict=True)}),
                  cells=_row_cells(group, subsets), selected_on_test=first["selected_on"] == "test", customized=customized)
        if kind == "method" and not row.selected_on_test:
            for subset, cell in zip(subsets, row.cells, strict=True):
                if cell.sort is None:
                    continue
                base = _student_rows(frame, subset) if first["scenario"] else baseline_runs
                if not base.empty and method != base.iloc[0]["method"]:
                    cell.significance = paired_test(_per_seed(group, subset), _per_seed(base, subset), higher_is_better)
        rows.append(row)
    _mark(rows, subsets, higher_is_better)
    ordered = _order(rows, subsets, higher_is_better)
    table_rows = _attach_reported(ordered, reported, subsets, frame, higher_is_better)
    csv_rows = _csv_rows(frame, reported, labels, task, combined)
    return TaskTable(name=task, metric=metric, higher_is_better=higher_is_better, modalities=modalities,
                     subsets=subsets, rows=table_rows, baseline=baseline, csv_rows=csv_rows,
                     notes=number_notes(table_rows))


def _mark(rows: list[Row], subsets: list[str], higher_is_better: bool) -> None:
    methods = [r for r in rows if r.kind == "method" and not r.selected_on_test]
    for column in range(len(subsets)):
        values = [r.cells[column].sort for r in methods]
        for row, mark in zip(methods, rank_marks(values, higher_is_better, DECIMALS + 2), strict=True):
            row.cells[column].mark = mark


def _order(rows: list[Row], subsets: list[str], higher_is_better: bool, kind: str = "method") -> list[Row]:
    """References first (TEACHER, STUDENT), then the rows of ``kind`` best first on their last
    filled column (the label breaks ties)."""
    def score(row: Row) -> float:
        filled = [c.sort for c in row.cells if c.sort is not None]
        value = filled[-1] if filled else float("nan")
        return -value if higher_is_better else value

    references = sorted((r for r in rows if r.kind == "reference"), key=lambda r: (REFERENCE_ROLES.index(r.method), r.label))
    ranked = sorted((r for r in rows if r.kind == kind), key=lambda r: (pd.isna(score(r)), score(r), r.label))
    return references + ranked


def _matches(row: Row, reported: pd.Series, frame: pd.DataFrame) -> bool:
    if row.method != reported["method"] or not reported["method"]:
        return False
    wants_customized = parse_config(reported["config"]).get("customized", "").lower() == "true"
    if row.customized or wants_customized:  # a paper's per-combination row is compared with ours only
        return row.customized and wants_customized
    runs = frame[(frame["method"] == row.method) & (frame["variant"] == row.variant)]
    first = runs.iloc[0]
    if reported["scenario"] and first["scenario"] and reported["scenario"] != first["scenario"]:
        return False
    if reported["teacher"] and first["teacher"] and reported["teacher"] != first["teacher"]:
        return False
    wanted = parse_config(reported["config"])
    if not wanted or row.kind != "method":
        return True
    from mmbench.records import read_record

    config = read_record(first["path"]).config

    def text(value: Any) -> str:  # a tuple option (privileged=depth,ir) is recorded as a list
        return ",".join(map(str, value)) if isinstance(value, list) else str(value)

    return all(text(config.get(k, "")).lower() == v.lower() for k, v in wanted.items())


def _attach_reported(rows: list[Row], reported: pd.DataFrame, subsets: list[str], frame: pd.DataFrame,
                     higher_is_better: bool = True) -> list[Row]:
    """Each reproduced row followed by the reported rows of the same method (with Δ = reproduced −
    reported, in points); reported rows nothing reproduces go last."""
    groups = reported.groupby(["paper", "table", "paper_method", "config", "scenario", "teacher", "method"], sort=False)
    placed: dict[int, list[Row]] = {}
    unmatched: list[Row] = []
    for (paper, table, paper_method, _config, _scenario, _teacher, method), cells in groups:
        target = next((i for i, r in enumerate(rows) if _matches(r, cells.iloc[0], frame)), None)
        row = Row(label=f"{paper_method} — reported", method=method, kind="reported",
                  setting=_reported_setting(cells.iloc[0]),
                  citation={"paper": paper, "table": table, "section": cells.iloc[0]["section"],
                            "url": cells.iloc[0]["url"], "note": cells.iloc[0]["note"]})
        by_subset = dict(zip(cells["subset"], cells["value"], strict=True))
        for column, subset in enumerate(subsets):
            if subset not in by_subset:
                row.cells.append(Cell())
                continue
            value = float(by_subset[subset])
            cell = Cell(text=f"{value:.{DECIMALS}f}", sort=value / 100)
            if target is not None and rows[target].cells[column].sort is not None:
                delta = 100 * rows[target].cells[column].sort - value
                cell.detail = f"Δ {delta:+.{DECIMALS}f}"
                cell.title = "reproduced − reported, in points"
            row.cells.append(cell)
        (placed.setdefault(target, []) if target is not None else unmatched).append(row)
    ordered = []
    for i, row in enumerate(rows):
        ordered.append(row)
        ordered.extend(placed.get(i, []))
    return ordered + _order_reported(unmatched, higher_is_better)


def _order_reported(rows: list[Row], higher_is_better: bool) -> list[Row]:
    """Reported rows that nothing reproduces, by paper table (in the order the tables come), each
    table's rows best first on its last filled column, with its best value per column marked."""
    tables: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        tables.setdefault((row.citation["paper"], row.citation["table"]), []).append(row)
    ordered = []
    for group in tables.values():
        ranked = _order(group, [], higher_is_better, kind="reported")
        for column in range(len(ranked[0].cells)):
            values = [r.cells[column].sort for r in ranked]
            for row, mark in zip(ranked, rank_marks(values, higher_is_better, DECIMALS + 2), strict=True):
                row.cells[column].mark = "best" if mark == "best" else ""
        ordered += ranked
    return ordered


def number_notes(rows: list[Row]) -> list[str]:
    """The distinct notes of the reported rows, numbered once: each row keeps its note's number
    (``citation["note_number"]``) instead of repeating its text."""
    notes: list[str] = []
    for row in rows:
        note = row.citation.get("note", "") if row.kind == "reported" else ""
        if note:
            if note not in notes:
                notes.append(note)
            row.citation["note_number"] = str(notes.index(note) + 1)
    return notes


def _reported_setting(cell: pd.Series) -> str:
    if cell["scenario"]:
        return f"{cell['scenario']}: teacher {cell['teacher']}"
    return ""


def _csv_rows(frame: pd.DataFrame, reported: pd.DataFrame, labels: dict, task: str,
              customized: list[tuple[str, str, pd.DataFrame]] = ()) -> list[dict[str, Any]]:
    """Downloadable aggregate: one row per (row label, subset) with mean, std, n and the interval."""
    out = []
    groups = [((method, variant, subset), group, labels.get((task, method, variant), method))
              for (method, variant, subset), group in frame.groupby(["method", "variant", "subset"], sort=True)]
    groups += [((method, variant, subset), group, f"{method} (customized)") for method, variant, rows in customized
               for subset, group in rows.groupby("subset", sort=True)]
    for (method, variant, subset), group, label in groups:
        values = group.drop_duplicates("seed").set_index("seed")["value"].astype(float)
        interval = mean_interval(values.tolist())
        out.append({"source": "reproduced", "row": label, "method": method,
                    "variant": variant, "subset": subset, "metric": group.iloc[0]["metric"],
                    "mean": round(float(values.mean(skipna=False)), 6),
                    "std": (round(float(values.std()), 6) if len(values) > 1 else 0.0) if _finite(values) else None,
                    "n": len(values), "ci95_low": None if interval is None else round(interval[0], 6),
                    "ci95_high": None if interval is None else round(interval[1], 6),
                    "profile": group.iloc[0]["profile"], "device": group.iloc[0]["device"],
                    "selected_on": group.iloc[0]["selected_on"], "citation": ""})
    for _, cell in reported.iterrows():
        out.append({"source": "reported", "row": cell["paper_method"], "method": cell["method"], "variant": "",
                    "subset": cell["subset"], "metric": cell["metric"], "mean": round(float(cell["value"]) / 100, 6),
                    "std": None, "n": None, "ci95_low": None, "ci95_high": None, "profile": "", "device": "",
                    "selected_on": "", "citation": f"{cell['paper']}, {cell['table']} ({cell['url']})"})
    return out
