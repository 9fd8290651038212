"""The plugin examples in the README are real: they load as plugins, pass the conformance kit and run."""

import json
from pathlib import Path

import pytest

from mmbench.plugins import Registry
from mmbench.testing import check_method, check_task

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_block(marker: str) -> str:
    text = README.read_text()
    return text.split(f"<!-- {marker} -->", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_plugin_example_conforms(tmp_path):
    plugin = tmp_path / "pooled.py"
    plugin.write_text(readme_block("plugin-example"))
    registry = Registry.load(plugins=[str(plugin)], entry_points=False)
    assert not registry.broken
    records = check_method(registry.method("pooled-linear"), overrides={"scale": "2"}, out=tmp_path / "runs")
    assert {r["task"]["kind"] for r in records} == {"classification", "anti-spoofing"}
    assert records[0]["config"] == {"scale": 2.0}


def test_readme_task_example_loads_and_trains(tmp_path, cli):
    plugin = tmp_path / "bands.py"
    plugin.write_text(readme_block("task-example"))
    registry = Registry.load(plugins=[str(plugin)], entry_points=False)
    assert not registry.broken
    task = registry.task("bands-cls")
    summary = check_task(task, registry.dataset_of(task))
    assert summary["shapes"] == {"spectrum": (16,), "image": (1, 12, 16)}
    assert summary["subsets"] == ["spectrum+image", "spectrum", "image"]
    # no val split in the dataset: 10 % of the 240 training samples are carved out for validation
    assert summary["sizes"] == {"train": 16, "val": 16, "test": 16}

    done = cli("--plugin", str(plugin), "run", "--method", "fusion", "--task", "bands-cls", "--out", str(tmp_path / "runs"))
    assert done.returncode == 0, done.stderr
    record = json.loads(next((tmp_path / "runs").rglob("*.json")).read_text())
    assert record["dataset"]["source"] == "arrays" and record["dataset"]["revision"] == "arrays-v1"
    assert record["dataset"]["sizes"] == {"train": 216, "val": 24, "test": 80}
    assert len(record["provenance"]["plugin_sources"]["bands"]) == 16  # the file plugin's source hash
    assert record["metrics"]["best"]["spectrum+image"]["accuracy"] > 0.4  # 4 classes: chance is 0.25


@pytest.mark.slow
def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_block("api-example"), "README api-example", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 3 and printed[-1] == "1 done, 3 skipped, 0 failed"  # kd reused; both references cached
    records = sorted((tmp_path / "runs" / "synth-mssar-cls").glob("*/*.json"))
    assert {p.parent.name for p in records} == {"kd", "kdv2", "unimodal"}


def test_readme_result_tables_are_the_committed_records():
    """Every results table of the README is generated from leaderboards/runs; regenerate with
    ``python -m mmbench.leaderboard.markdown README.md leaderboards/runs`` after re-running them."""
    from mmbench.leaderboard.markdown import BLOCK, render_blocks
    from mmbench.results import iter_records

    text = README.read_text()
    tasks = [dict(p.split("=", 1) for p in m.group("options").split())["task"] for m in BLOCK.finditer(text)]
    assert {"synth-rgbd-seg", "synth-rgbdi-pad", "synth-mssar-cls", "cls-mfeat"} <= set(tasks)
    records = list(iter_records([README.parent / "leaderboards" / "runs"]))
    assert render_blocks(text, records) == text


def test_a_moved_number_shows_in_the_generated_table(tmp_path):
    from mmbench.leaderboard.markdown import results_table
    from mmbench.results import iter_records

    records = list(iter_records([README.parent / "leaderboards" / "runs" / "cls-mfeat"]))
    before = results_table(records, "cls-mfeat")
    path, record = next((p, r) for p, r in records if r.method.name == "fusion")
    subset = next(iter(record.metrics["best"]))
    record.metrics["best"][subset]["accuracy"] -= 0.05
    assert results_table(records, "cls-mfeat") != before
