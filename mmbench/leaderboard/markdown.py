"""Markdown result tables generated from run records: the tables of the documentation's results
page (``docs/results.md``) are these, checked by a test against the committed records
(``leaderboards/runs``).

A block ``<!-- results task=T [wall-time=METHOD] -->`` … ``<!-- /results -->`` holds the
table of task ``T``: one row per method variant (mean ± std over seeds, in percent, test split,
best-validation epoch, the task's primary metric), one column per deployment subset and their
mean, a setting column for distillation runs (and their TEACHER / STUDENT references), and with
``wall-time`` the wall time per run — training the runs it depends on included — relative to
``METHOD``. Rows made by another mmbench version than the installed one are marked †.

A block ``<!-- ledger -->`` … ``<!-- /ledger -->`` holds the fidelity ledger: every known difference
of a full protocol from the official code that the installed plugins declare
(``TaskSpec.deviations``, ``MethodSpec.deviations``), one row each.

    python -m mmbench.leaderboard.markdown docs/results.md leaderboards/runs    # rewrite the blocks
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

import mmbench
from mmbench.leaderboard.tables import _ordered_subsets
from mmbench.records import RunRecord
from mmbench.results import iter_records, records_to_frame

BLOCK = re.compile(r"(<!-- results (?P<options>[^>]*?) -->\n)(?P<table>.*?)(<!-- /results -->)", re.S)
LEDGER = re.compile(r"(<!-- ledger -->\n)(?P<table>.*?)(<!-- /ledger -->)", re.S)
REFERENCES = ("TEACHER", "STUDENT")


def _cell(values: pd.Series) -> str:
    if values.empty:
        return ""
    std = float(values.std()) if len(values) > 1 else 0.0
    return f"{100 * float(values.mean()):.1f} ± {100 * std:.1f}"


SHOWN_AS_SETTING = ("teacher", "student", "scenario")


def _label(method: str, config: dict, others: list[dict]) -> str:
    """The method, plus the config values that tell it from its other variants in the table (the
    distillation setup is the setting column's)."""
    differing = sorted(k for k in config if k not in SHOWN_AS_SETTING
                       and any(str(o.get(k)) != str(config[k]) for o in others))
    shown = [f"{k}={config[k]}" for k in differing if config[k] is not None]
    if method in ("unimodal",) and "modality" in config:
        return f"{method} ({config['modality']})"
    return f"{method} ({', '.join(shown)})" if shown else method


def _cost(record: RunRecord, by_id: dict[str, RunRecord]) -> float:
    """Wall time of a run and of the recorded runs it depends on (transitively)."""
    return record.timings.total_seconds + sum(_cost(by_id[d.run_id], by_id) for d in record.dependencies
                                              if d.run_id in by_id)


def results_table(records: Sequence[tuple[Path, RunRecord]], task: str, wall_time: str | None = None) -> str:
    """The markdown table of ``task`` (see the module docstring)."""
    own = [(p, r) for p, r in records if r.task.name == task and r.status == "completed"]
    if not own:
        return f"(no records of {task})\n"
    latest = max((r for _, r in own), key=lambda r: r.task.version)
    metric, modalities = latest.task.primary_metric, latest.task.modalities
    frame = records_to_frame(own, references=True)
    frame = frame[(frame["metric"] == metric) & (frame["selection"] == "best")]
    subsets = _ordered_subsets(frame, modalities)
    by_id = {r.run_id: r for _, r in records}
    by_path = {str(p): r for p, r in own}
    distillation = bool((frame["scenario"] != "").any())
    rows = []
    for (method, _variant), group in frame.groupby(["method", "variant"], sort=True):
        runs = [by_path[p] for p in dict.fromkeys(group["path"]) if p in by_path]
        if method in REFERENCES:
            first = group.iloc[0]
            label = f"{method} ({first['trained']})"
            setting = "teacher" if method == "TEACHER" else "student without distillation"
            config = {}
            old = any(r.provenance.mmbench != mmbench.__version__ for r in runs)
        else:
            config = runs[0].config
            setting = ""
            if runs[0].distillation is not None:
                info = runs[0].distillation
                students = ", ".join("+".join(s) for s in info.students)
                setting = f"{info.scenario}: {'+'.join(info.teacher) if info.teacher else 'no teacher'} → {students}"
            old = any(r.provenance.mmbench != mmbench.__version__ for r in runs)
            label = ""
        seeds = group["seed"].nunique()
        cells = [_cell(group[group["subset"] == s].groupby("seed")["value"].first()) for s in subsets]
        cost = sum(_cost(r, by_id) for r in runs) / len(runs) if runs and method not in REFERENCES else None
        rows.append({"method": method, "config": config, "label": label, "setting": setting, "seeds": seeds,
                     "cells": cells, "old": old, "cost": cost, "reference": method in REFERENCES})
    for row in rows:
        if not row["reference"]:
            others = [o["config"] for o in rows if o["method"] == row["method"] and o is not row]
            row["label"] = _label(row["method"], row["config"], others)
    baseline = [r["cost"] for r in rows if r["method"] == wall_time and r["cost"] is not None]
    header = ["method", *(["setting"] if distillation else []), *subsets, *(["wall time"] if wall_time else [])]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    order = sorted(rows, key=lambda r: (not r["reference"], r["method"] == "unimodal", r["method"], r["label"],
                                        r["setting"], r["old"]))
    for row in order:
        wall = ""
        if wall_time and row["cost"] is not None and baseline:
            wall = f"{row['cost'] / baseline[0]:.2f}× ({row['cost']:.0f} s)"
        name = f"{row['label']} (n={row['seeds']})" + (" †" if row["old"] else "")
        values = [name, *([row["setting"]] if distillation else []), *row["cells"], *([wall] if wall_time else [])]
        lines.append("| " + " | ".join(values) + " |")
    if any(r["old"] for r in rows):
        versions = sorted({r.provenance.mmbench for _, r in own} - {mmbench.__version__})
        lines.append("")
        lines.append(f"† made with mmbench {', '.join(versions)} (installed {mmbench.__version__}): not yet re-run by "
                     "`leaderboards/reproduce/site.toml`.")
    return "\n".join(lines) + "\n"


def _options(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split() if "=" in part)


def _escape(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def ledger_table() -> str:
    """The fidelity ledger of the installed plugins: tasks first, then methods, by name."""
    from mmbench.plugins import Registry

    registry = Registry.load()
    lines = ["| concerns | aspect | official code | mmbench | source |", "|---|---|---|---|---|"]
    for kind in ("task", "method"):
        for name in registry.names(kind):
            spec = registry.task(name) if kind == "task" else registry.method(name)
            for deviation in spec.deviations:
                scope = f"`{name}`" + (f" on {', '.join(f'`{t}`' for t in deviation.tasks)}" if deviation.tasks else "")
                lines.append("| " + " | ".join([scope, *(_escape(v) for v in (deviation.aspect, deviation.official,
                                                                                 deviation.mmbench, deviation.source))])
                             + " |")
    return "\n".join(lines) + "\n"


def render_blocks(text: str, records: Sequence[tuple[Path, RunRecord]]) -> str:
    """``text`` with every results block regenerated from ``records`` and every ledger block from
    the installed plugins."""
    def replace(match: re.Match) -> str:
        options = _options(match.group("options"))
        table = results_table(records, options["task"], options.get("wall-time"))
        return match.group(1) + table + match.group(4)

    text = BLOCK.sub(replace, text)
    if LEDGER.search(text):
        ledger = ledger_table()
        text = LEDGER.sub(lambda match: match.group(1) + ledger + match.group(3), text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2:
        print("usage: python -m mmbench.leaderboard.markdown FILE.md [FILE.md ...] RUNS_DIR...", file=sys.stderr)
        return 2
    pages = [Path(a) for a in args if a.endswith(".md")]
    records = list(iter_records([Path(a) for a in args if not a.endswith(".md")]))
    for page in pages:
        page.write_text(render_blocks(page.read_text(), records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
