"""The README (the front page) and the documentation pages under docs/ are real: their plugin
examples load as plugins, pass the conformance kit and run, their Python example runs, and their
result tables and fidelity ledger are generated from the committed records and the installed
plugins."""

import json
from pathlib import Path

import pytest

from mmbench.plugins import Registry
from mmbench.testing import check_method, check_task

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = {"plugin-example": DOCS / "method-plugins.md", "task-example": DOCS / "task-plugins.md",
         "api-example": DOCS / "api.md", "readme-plugin": README, "conformance-example": DOCS / "method-plugins.md",
         "results-example": DOCS / "running.md"}
"""Where each executed example lives."""


def readme_block(marker: str) -> str:
    text = PAGES[marker].read_text()
    return text.split(f"<!-- {marker} -->", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_is_a_front_page_and_its_links_resolve():
    """At most 250 lines; every page it links to exists, and every docs page is in the site's nav."""
    import re

    text = README.read_text()
    assert len(text.splitlines()) <= 250
    links = re.findall(r"\]\(((?:docs/|CONTRIBUTING|CHANGELOG)[^)#]*)", text)
    assert links and all((ROOT / link).exists() for link in links), links
    in_nav = set(re.findall(r"^  - [^:]+: (\S+\.md)$", (ROOT / "mkdocs.yml").read_text(), re.M))
    assert in_nav == {p.name for p in DOCS.glob("*.md")}


def test_the_readme_plugin_runs_as_a_third_party_plugin(tmp_path):
    plugin = tmp_path / "mean_logits.py"
    plugin.write_text(readme_block("readme-plugin"))
    assert len(readme_block("readme-plugin").splitlines()) <= 30
    registry = Registry.load(plugins=[str(plugin)], entry_points=False)
    assert not registry.broken
    records = check_method(registry.method("mean-logits"), out=tmp_path / "runs")
    assert {r["task"]["kind"] for r in records} == {"classification", "anti-spoofing"}


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
    """Every results table of the docs is generated from leaderboards/runs, and the fidelity ledger
    from the installed plugins; regenerate both with ``python -m mmbench.leaderboard.markdown
    docs/results.md docs/fidelity.md leaderboards/runs`` after re-running records."""
    from mmbench.leaderboard.markdown import BLOCK, LEDGER, render_blocks
    from mmbench.results import iter_records

    text = (DOCS / "results.md").read_text()
    tasks = [dict(p.split("=", 1) for p in m.group("options").split())["task"] for m in BLOCK.finditer(text)]
    assert {"synth-rgbd-seg", "synth-rgbdi-pad", "synth-mssar-cls", "cls-mfeat"} <= set(tasks)
    records = list(iter_records([ROOT / "leaderboards" / "runs"]))
    assert render_blocks(text, records) == text
    ledger = (DOCS / "fidelity.md").read_text()
    assert LEDGER.search(ledger) and render_blocks(ledger, records) == ledger
    assert "`mmanet`" in ledger and ledger.count("\n| `") >= 5


def test_a_moved_number_shows_in_the_generated_table(tmp_path):
    from mmbench.leaderboard.markdown import results_table
    from mmbench.results import iter_records

    records = list(iter_records([README.parent / "leaderboards" / "runs" / "cls-mfeat"]))
    before = results_table(records, "cls-mfeat")
    path, record = next((p, r) for p, r in records if r.method.name == "fusion")
    subset = next(iter(record.metrics["best"]))
    record.metrics["best"][subset]["accuracy"] -= 0.05
    assert results_table(records, "cls-mfeat") != before


def test_every_python_example_of_the_docs_is_executed_by_a_test():
    import re

    blocks = {page: text.count("```python") for page in [README, *DOCS.glob("*.md")] if (text := page.read_text())}
    marked = {page: len(re.findall(r"<!-- [a-z-]+ -->\n```python", page.read_text())) for page in blocks}
    assert blocks == marked, "an unmarked Python block: mark it <!-- name --> and run it in tests/test_readme.py"
    assert set(PAGES) == {m for page in blocks for m in re.findall(r"<!-- ([a-z-]+) -->\n```python", page.read_text())}


def test_the_conformance_example_runs_on_the_readme_plugin(tmp_path, monkeypatch, capsys):
    (tmp_path / "mean_logits.py").write_text(readme_block("readme-plugin"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_block("conformance-example"), "docs conformance-example", "exec"), {})
    assert capsys.readouterr().out.strip() == "['anti-spoofing', 'classification']"


def test_the_results_example_aggregates_the_committed_records(tmp_path, monkeypatch):
    (tmp_path / "runs").symlink_to(ROOT / "leaderboards" / "runs")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(readme_block("results-example"), "docs results-example", "exec"), namespace)
    assert len(namespace["table"]) and {"synth-rgbd-cls", "cls-mfeat"} <= set(namespace["frame"]["task"])
