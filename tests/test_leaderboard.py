"""The static leaderboard: aggregation, marks, statistics, reported rows, escaping, determinism,
validation of inputs and the CLI. Records are built directly (no training) so every number is
known; the browser test (test_leaderboard_browser.py) renders the committed example runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from mmbench.errors import MMBenchError
from mmbench.leaderboard import build_site
from mmbench.leaderboard.reported import load_reported
from mmbench.leaderboard.site import slug
from mmbench.records import RunRecord, write_record
from mmbench.results import mean_interval, paired_test, rank_marks

REPO = Path(__file__).resolve().parents[1]
PROVENANCE = {"mmbench": "0.1.0", "plugins": {}, "python": "3.11", "torch": "2", "torchvision": "0", "device": "cpu",
              "device_name": "x86_64", "cpu_count": 2, "platform": "Linux"}


def fake_record(method: str, seed: int, values: dict[str, float], *, task: str = "toy-cls", metric: str = "accuracy",
                higher: bool = True, modalities=("rgb", "depth"), config: dict | None = None, profile: str = "smoke",
                run_id: str | None = None, created: str = "2026-01-01T00:00:00+00:00") -> RunRecord:
    config = config or {}
    run_id = run_id or f"{method}-{seed}-{abs(hash(json.dumps(config, sort_keys=True))) % 10**6}"
    metrics = {s: {metric: v} for s, v in values.items()}
    return RunRecord.model_validate({
        "run_id": run_id, "status": "completed", "created": created,
        "task": {"name": task, "version": "1", "kind": "classification", "primary_metric": metric,
                 "higher_is_better": higher, "modalities": list(modalities), "num_classes": 2},
        "dataset": {"name": task, "source": "generator", "revision": "v1"},
        "method": {"name": method, "plugin": "toy", "version": "0.1", "paper": "A paper", "repo": "https://example.org/x"},
        "config": config, "recipe": {"epochs": 1}, "profile": profile, "seed": seed,
        "trained_modalities": list(modalities), "subsets": list(values), "metrics": {"best": metrics, "last": metrics},
        "curves": [{"epoch": 1, "val": {s: {metric: v} for s, v in values.items()}}],
        "provenance": PROVENANCE,
    })


def write(out: Path, record: RunRecord) -> Path:
    path = out / record.task.name / record.method.name / f"{slug(record.run_id)}.json"
    write_record(path, record)
    return path


@pytest.fixture
def runs(tmp_path):
    """Three seeds of three methods on a two-modality task, with known numbers."""
    out = tmp_path / "runs"
    table = {
        "fusion-dropout": [(0.80, 0.50, 0.40), (0.82, 0.52, 0.41), (0.81, 0.51, 0.42)],
        "good": [(0.90, 0.60, 0.50), (0.91, 0.61, 0.52), (0.92, 0.62, 0.51)],
        "tied": [(0.90, 0.55, 0.45), (0.91, 0.56, 0.45), (0.92, 0.54, 0.45)],
    }
    for method, rows in table.items():
        for seed, (full, rgb, depth) in enumerate(rows):
            write(out, fake_record(method, seed, {"rgb+depth": full, "rgb": rgb, "depth": depth}))
    return out


def _cells(html: str, label: str) -> list[str]:
    """Text of the value cells of the row whose label cell contains ``label``."""
    row = re.search(r'<tr class="[^"]*">\s*<td data-col="label" data-sort="' + re.escape(label) + r'">(.*?)</tr>',
                    html, re.S)
    assert row, f"no row {label}"
    return re.findall(r'<td data-col="[^"]+" data-sort="[^"]*" class="num ([a-z]*)"[^>]*>(.*?)</td>', row.group(1), re.S)


def test_rank_marks_ties_and_direction():
    assert rank_marks([0.9, 0.95, 0.95, 0.5, None], higher_is_better=True, decimals=2) == ["second", "best", "best", "", ""]
    assert rank_marks([0.02, 0.01, 0.03], higher_is_better=False, decimals=2) == ["second", "best", ""]
    assert rank_marks([0.1234, 0.1231], higher_is_better=True, decimals=3) == ["best", "best"]  # equal as displayed


def test_interval_and_paired_test():
    assert mean_interval([0.5, 0.6]) is None
    low, high = mean_interval([0.5, 0.6, 0.7])
    assert (low + high) / 2 == pytest.approx(0.6)
    assert high - 0.6 == pytest.approx(4.302652729911275 * 0.1 / 3**0.5)  # t(0.975, 2)
    better = pd.Series([0.9, 0.91, 0.92], index=[0, 1, 2])
    base = pd.Series([0.8, 0.82, 0.81], index=[0, 1, 2])
    assert paired_test(better, base, higher_is_better=True) == "better"
    assert paired_test(better, base, higher_is_better=False) == "worse"  # e.g. a higher ACER
    assert paired_test(better[:2], base[:2], higher_is_better=True) == ""  # two pairs: no test
    noisy = pd.Series([0.9, 0.7, 0.85], index=[0, 1, 2])
    assert paired_test(noisy, base, higher_is_better=True) == "same"


def test_task_table_numbers_marks_and_significance(runs, tmp_path):
    build_site([runs], tmp_path / "site")
    html = (tmp_path / "site" / "tasks" / "toy-cls.html").read_text()
    good = _cells(html, "good")
    # columns: rgb+depth, rgb, depth, mean
    assert good[0][0] == "best" and "91.00 ± 1.00" in good[0][1]
    assert good[1][0] == "best" and "61.00 ± 1.00" in good[1][1] and "▲" in good[1][1]
    tied = _cells(html, "tied")
    assert tied[0][0] == "best"  # 91.00 ties with good on rgb+depth: both bold
    assert tied[1][0] == "second"
    baseline = _cells(html, "fusion-dropout")
    assert "▲" not in baseline[1][1] and "▼" not in baseline[1][1]
    assert "n=3 · 95% CI [" in good[0][1]
    # the mean column is the mean over subsets of each run, then over seeds
    runs_mean = [(0.90 + 0.60 + 0.50) / 3, (0.91 + 0.61 + 0.52) / 3, (0.92 + 0.62 + 0.51) / 3]
    assert f"{100 * sum(runs_mean) / 3:.2f}" in good[3][1]
    assert "●" in html and "○" in html


def test_lower_is_better_marks(tmp_path):
    out = tmp_path / "runs"
    for seed in range(3):
        write(out, fake_record("a", seed, {"rgb": 0.10 + seed / 100}, task="toy-pad", metric="acer", higher=False))
        write(out, fake_record("b", seed, {"rgb": 0.05 + seed / 100}, task="toy-pad", metric="acer", higher=False))
    build_site([out], tmp_path / "site")
    html = (tmp_path / "site" / "tasks" / "toy-pad.html").read_text()
    assert _cells(html, "b")[0][0] == "best" and _cells(html, "a")[0][0] == "second"
    assert 'data-order="asc"' in html  # first click on a column: best (lowest ACER) first


def test_few_seeds_are_never_shown_with_an_interval(tmp_path):
    out = tmp_path / "runs"
    for seed in range(2):
        write(out, fake_record("a", seed, {"rgb": 0.5 + seed / 10}))
    build_site([out], tmp_path / "site")
    html = (tmp_path / "site" / "tasks" / "toy-cls.html").read_text()
    assert "n=2: too few seeds for an interval" in html and "95% CI [" not in html


def test_reported_rows_sit_next_to_the_reproduced_row_with_the_difference(runs, tmp_path):
    reported = tmp_path / "reported"
    reported.mkdir()
    (reported / "paper.csv").write_text(
        "task,subset,metric,method,paper_method,config,scenario,teacher,value,paper,table,section,url,note\n"
        "toy-cls,rgb+depth,accuracy,good,Good-Net,,,,93.50,Paper (2024),Table 2,4.1,https://arxiv.org/abs/0000.00000,\n"
        "toy-cls,rgb+depth,accuracy,,Other-Net,,,,70.00,Paper (2024),Table 2,4.1,https://arxiv.org/abs/0000.00000,\n"
    )
    build_site([runs], tmp_path / "site", reported_dir=reported)
    html = (tmp_path / "site" / "tasks" / "toy-cls.html").read_text()
    bodies = re.findall(r"<tbody>(.*?)</tbody>", html, re.S)
    group = next(b for b in bodies if 'data-sort="good"' in b)
    assert "Good-Net — reported" in group and "Δ -2.50" in group  # 91.00 reproduced − 93.50 reported
    assert "Table 2" in group and 'href="https://arxiv.org/abs/0000.00000"' in group
    assert "Other-Net — reported" in bodies[-1]  # nothing reproduces it: last


def test_reported_csv_errors_are_one_line(tmp_path):
    (tmp_path / "bad.csv").write_text("task,value\nx,1\n")
    with pytest.raises(MMBenchError, match="lacks the column"):
        load_reported(tmp_path)
    head = "task,subset,metric,method,paper_method,config,scenario,teacher,value,paper,table,section,url,note\n"
    (tmp_path / "bad.csv").write_text(head + "t,rgb,acc,,X,,,,abc,P,T,1,,\n")
    with pytest.raises(MMBenchError, match="line 2: value 'abc' is not a number"):
        load_reported(tmp_path)
    (tmp_path / "bad.csv").write_text(head + "t,rgb,acc,,X,,,,1,P,T,1,javascript:alert(1),\n")
    with pytest.raises(MMBenchError, match="not an http"):
        load_reported(tmp_path)


def test_html_in_names_and_config_is_rendered_inert(tmp_path):
    out = tmp_path / "runs"
    evil = "<script>alert(1)</script>"
    for seed in range(3):
        write(out, fake_record(evil, seed, {"rgb": 0.5}, config={"note": '<img src=x onerror="alert(2)">'},
                               run_id=f"{evil}-{seed}"))
    build_site([out], tmp_path / "site")
    pages = list((tmp_path / "site").rglob("*.html"))
    assert all(p.resolve().is_relative_to((tmp_path / "site").resolve()) for p in pages)
    for page in pages:
        text = page.read_text()
        assert "<script>alert(1)" not in text and "<img src=x" not in text, page
    task = (tmp_path / "site" / "tasks" / "toy-cls.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in task
    run_pages = list((tmp_path / "site" / "runs").glob("*.html"))
    assert len(run_pages) == 3 and "onerror=\\&#34;alert(2)" in run_pages[0].read_text()


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_output_is_deterministic_across_interpreters(runs, tmp_path):
    """Byte-identical sites from two interpreters with different hash seeds (set iteration order
    differs between them), pages of tasks with reported rows but no runs included."""
    sites = {}
    for seed in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-m", "mmbench", "leaderboard", "build", str(runs), "--out", str(tmp_path / seed),
             "--reported", str(REPO / "leaderboards" / "reported")],
            capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": seed}, timeout=600,
        )
        assert done.returncode == 0, done.stderr
        sites[seed] = _tree(tmp_path / seed)
    assert sites["1"].keys() == sites["2"].keys()
    assert [name for name in sites["1"] if sites["1"][name] != sites["2"][name]] == []
    nyu = sites["1"]["tasks/seg-nyuv2.html"].decode()  # reported rows only: the installed task's facts
    assert "segmentation" in nyu and "rgb+depth" in nyu


def test_reported_only_columns_follow_the_installed_protocol(runs, tmp_path):
    build_site([runs], tmp_path / "site", reported_dir=REPO / "leaderboards" / "reported")
    page = (tmp_path / "site" / "tasks" / "cls-casia-surf.html").read_text()
    columns = re.findall(r'<th data-col="([^"]+)" data-order', page)
    protocol = ["rgb+depth+ir", "rgb+depth", "rgb+ir", "depth+ir", "rgb", "depth", "ir"]
    assert columns[:-1] == [s for s in protocol if s in columns] and columns[-1] == "mean"
    assert "anti-spoofing" in page  # the installed task's kind, not "—"


def test_invalid_and_foreign_json_are_skipped_newer_schema_is_an_error(runs, tmp_path):
    (runs / "foreign.json").write_text('{"hello": "world"}')
    (runs / "broken.json").write_text("{not json")
    with pytest.warns(RuntimeWarning) as caught:
        summary = build_site([runs], tmp_path / "site")
    messages = [str(w.message) for w in caught]
    assert any("foreign.json" in m for m in messages) and any("broken.json" in m for m in messages)
    assert summary.records == 9
    newer = json.loads(next(runs.rglob("good/*.json")).read_text())
    newer["schema_version"] = 2
    (runs / "newer.json").write_text(json.dumps(newer))
    with pytest.raises(MMBenchError, match="schema_version 2, newer"):
        build_site([runs], tmp_path / "site2")
    assert not (tmp_path / "site2").exists()


def test_profile_filter_and_smoke_flag(tmp_path):
    out = tmp_path / "runs"
    write(out, fake_record("a", 0, {"rgb": 0.5}, profile="smoke"))
    write(out, fake_record("b", 0, {"rgb": 0.6}, profile="full"))
    build_site([out], tmp_path / "all")
    html = (tmp_path / "all" / "tasks" / "toy-cls.html").read_text()
    assert re.search(r'<tr class="method smoke">\s*<td data-col="label" data-sort="a">', html)
    assert re.search(r'<tr class="method">\s*<td data-col="label" data-sort="b">', html)
    build_site([out], tmp_path / "full", profile="full")
    html = (tmp_path / "full" / "tasks" / "toy-cls.html").read_text()
    assert 'data-sort="b"' in html and 'data-sort="a"' not in html


def test_downloads_and_run_pages(runs, tmp_path):
    build_site([runs], tmp_path / "site")
    site = tmp_path / "site"
    table = pd.read_csv(site / "tasks" / "toy-cls" / "leaderboard.csv")
    good = table[(table["row"] == "good") & (table["subset"] == "rgb")].iloc[0]
    assert good["mean"] == pytest.approx(0.61) and good["n"] == 3 and good["ci95_low"] < 0.61 < good["ci95_high"]
    data = json.loads((site / "tasks" / "toy-cls" / "leaderboard.json").read_text())
    assert data["metric"] == "accuracy" and len(data["rows"]) == len(table)
    run = (site / "runs" / "good-0-" ).parent
    pages = sorted(run.glob("good-0-*.html"))
    assert pages and "&#34;run_id&#34;" in pages[0].read_text()
    task = (site / "tasks" / "toy-cls.html").read_text()
    assert f'href="../runs/{pages[0].name}"' in task  # a cell's row links to the runs behind it
    index = (site / "index.html").read_text()
    assert 'href="tasks/toy-cls.html"' in index and "<svg" in task


def test_build_replaces_a_site_but_never_another_folder(runs, tmp_path):
    site = tmp_path / "site"
    build_site([runs], site)
    (site / "stale.html").write_text("old")
    build_site([runs], site)
    assert not (site / "stale.html").exists()
    other = tmp_path / "docs"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(MMBenchError, match="not an mmbench site"):
        build_site([runs], other)
    assert (other / "keep.txt").read_text() == "mine"


def test_gallery_paths_outside_the_record_folder_are_refused(runs, tmp_path):
    path = next(runs.rglob("good/good-0-*.json"))
    data = json.loads(path.read_text())
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG")
    data["gallery"] = [{"sample": 0, "kind": "rgb", "path": "../../../secret.png"}]
    path.write_text(json.dumps(data))
    with pytest.warns(RuntimeWarning, match="not a PNG inside the record's folder"):
        build_site([runs], tmp_path / "site")
    assert not list((tmp_path / "site").rglob("*secret*"))


def test_reported_numbers_match_the_papers():
    """Typed-in cells equal the numbers of lines quoted from the papers (shipped as test data); where
    the papers' text is next to the repository, the quotes are checked against it too."""
    excerpts = json.loads((Path(__file__).parent / "data" / "paper_excerpts.json").read_text())["excerpts"]
    reported = load_reported(REPO / "leaderboards" / "reported")
    papers = REPO.parent / "shared" / "papers"
    for excerpt in excerpts:
        rows = reported
        for key, value in excerpt["cell"].items():
            rows = rows[rows[key] == value]
        assert len(rows) == 1, excerpt["cell"]
        numbers = [float(n) for n in re.findall(r"\d+\.\d+", excerpt["line"])]
        assert float(rows["value"].iloc[0]) == numbers[excerpt["column"]], excerpt
        if papers.is_dir():
            assert excerpt["line"] in (papers / excerpt["paper"]).read_text(), excerpt["line"]


def test_every_reported_row_sits_under_an_installed_task(registry):
    """The papers' rows name installed tasks, their protocol subsets (or the mean over them) and
    their metrics."""
    from mmbench.specs import subset_key

    reported = load_reported(REPO / "leaderboards" / "reported")
    for task_name, rows in reported.groupby("task"):
        assert task_name in registry.names("task"), f"reported rows of {task_name}, which no plugin provides"
        task = registry.task(task_name)
        subsets = {subset_key(s) for s in task.protocol_subsets(registry.dataset_of(task))} | {"mean"}
        assert set(rows["subset"]) <= subsets, (task_name, set(rows["subset"]) - subsets)
        assert set(rows["metric"]) <= set(task.metric_names), task_name


def test_cli_build_and_errors(runs, tmp_path, cli):
    done = cli("leaderboard", "build", str(runs), "--out", str(tmp_path / "site"), "--reported", "none")
    assert done.returncode == 0, done.stderr
    assert "built" in done.stdout and (tmp_path / "site" / "index.html").is_file()
    missing = cli("leaderboard", "build", str(tmp_path / "nope"), "--out", str(tmp_path / "s2"))
    assert missing.returncode == 2 and missing.stderr.strip().count("\n") == 0
    assert "no such results directory" in missing.stderr and "Traceback" not in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = cli("leaderboard", "build", str(empty), "--out", str(tmp_path / "s3"), "--reported", "none")
    assert nothing.returncode == 2 and "nothing to build" in nothing.stderr
    bad_reported = cli("leaderboard", "build", str(runs), "--out", str(tmp_path / "s4"), "--reported", str(empty / "x"))
    assert bad_reported.returncode == 2 and "--reported" in bad_reported.stderr
    not_site = cli("leaderboard", "serve", str(empty))
    assert not_site.returncode == 2 and "not a site built by" in not_site.stderr


def test_serve_previews_the_site_on_localhost(runs, tmp_path):
    build_site([runs], tmp_path / "site")
    server = subprocess.Popen([sys.executable, "-m", "mmbench", "leaderboard", "serve", str(tmp_path / "site"),
                               "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        with urllib.request.urlopen(url + "index.html", timeout=10) as response:
            assert b"mmbench" in response.read()
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_segmentation_run_saves_a_gallery_and_the_site_shows_it(registry, tmp_path):
    from conftest import FAST_OVERRIDES
    from mmbench.artifacts import ArtifactCache
    from mmbench.engine.runner import Runner
    from mmbench.gallery import GALLERY_SAMPLES, label_palette
    from mmbench.plan import plan_run

    runner = Runner(registry, out=tmp_path / "runs", device="cpu", artifacts=ArtifactCache(tmp_path / "artifacts"))
    record, path = runner.run(plan_run(registry, "fusion", "synth-rgbd-seg", 0, FAST_OVERRIDES))
    kinds = sorted({g.kind for g in record.gallery})
    assert kinds == ["depth", "prediction", "rgb", "target"]
    assert len(record.gallery) == 4 * GALLERY_SAMPLES
    assert {g.subset for g in record.gallery if g.kind == "prediction"} == {"rgb+depth"}
    sizes = set()
    for entry in record.gallery:
        with Image.open(path.parent / entry.path) as image:
            sizes.add(image.size)
    assert len(sizes) == 1 and min(sizes.pop()) >= 16  # modalities, truth and prediction align pixel for pixel
    palette = label_palette(7)
    assert len({tuple(c) for c in palette[:7]}) == 7
    assert (palette[:7].sum(axis=1) > 0).all() and (palette[7:] == 0).all()  # classes coloured, ignore black
    build_site([tmp_path / "runs"], tmp_path / "site")
    html = (tmp_path / "site" / "tasks" / "synth-rgbd-seg.html").read_text()
    assert "Qualitative results" in html
    images = re.findall(r'<img src="([^"]+)"', html)
    assert len(images) == 4 * GALLERY_SAMPLES
    assert all((tmp_path / "site" / "tasks" / src).is_file() for src in images)


def test_run_page_shows_each_subsets_selected_epoch(tmp_path):
    from mmbench.records import Selection

    record = fake_record("discomkd", 0, {"rgb": 0.6, "depth": 0.5}).model_copy(update={"selection": Selection(
        criterion="validation accuracy of each deployment subset at its own best epoch",
        best_epoch=3, last_epoch=5, subset_epochs={"rgb": 4, "depth": 2})})
    write(tmp_path / "runs", record)
    build_site([tmp_path / "runs"], tmp_path / "site")
    (page,) = (tmp_path / "site" / "runs").glob("discomkd-0-*.html")
    text = page.read_text()
    assert "its own best epoch: " in text and "rgb epoch 4" in text and "depth epoch 2" in text and "epoch 3" not in text


def test_a_customized_row_takes_each_column_from_the_model_trained_on_that_combination(tmp_path):
    """The papers' "customized" rows: one model per modality combination. Runs of one method that
    differ only by --set modalities=... become one row, each column from its own model."""
    from conftest import make_runner
    from mmbench.leaderboard.tables import build_task_table
    from mmbench.plan import plan_run
    from mmbench.plugins import Registry
    from mmbench.results import load_runs, variant_labels

    registry = Registry.load()
    runner = make_runner(registry, tmp_path)
    tiny = {"recipe.epochs": "1", "recipe.limit_train": "96", "recipe.limit_eval": "48", "recipe.width": "8"}
    records = {}
    for modalities in ("rgb+depth", "rgb+ir", "depth+ir", None):
        overrides = {**tiny, **({"modalities": modalities} if modalities else {})}
        records[modalities or "rgb+depth+ir"] = runner.run(plan_run(registry, "fusion", "synth-rgbdi-pad", 0, overrides))[0]
    frame = load_runs(tmp_path / "runs")
    cite = {"paper": "P", "table": "Table 9", "section": "4", "url": "", "note": "", "scenario": "", "teacher": "",
            "metric": "acer", "task": "synth-rgbdi-pad", "method": "fusion", "source": "p.csv"}
    reported = pd.DataFrame([{**cite, "subset": "rgb+ir", "paper_method": "SF", "config": "customized=true", "value": 5.0}])
    table = build_task_table(frame, reported, "synth-rgbdi-pad", "acer", False, ["rgb", "depth", "ir"],
                             variant_labels(frame), "fusion-dropout")
    (row,) = [r for r in table.rows if r.customized]
    assert row.label == "fusion (customized)" and row.setting == "one model per modality combination"
    cells = dict(zip(table.subsets, row.cells, strict=True))
    for combination, record in records.items():
        assert cells[combination].sort == pytest.approx(record.metrics["best"][combination]["acer"])
    assert cells["rgb"].sort is None and cells["mean"].sort is None  # no single-modality models: no comparable mean
    assert len(row.seeds) == 4 and not any(r.customized for r in table.rows if r.label.startswith("fusion ("
                                                                                                     "modalities"))
    after = table.rows[table.rows.index(row) + 1]  # the paper's per-combination row sits under ours, with Δ
    assert after.kind == "reported" and after.label == "SF — reported"
    delta = 100 * records["rgb+ir"].metrics["best"]["rgb+ir"]["acer"] - 5.0
    assert dict(zip(table.subsets, after.cells, strict=True))["rgb+ir"].detail == f"Δ {delta:+.2f}"
    csv = [c for c in table.csv_rows if c["row"] == "fusion (customized)"]
    assert {c["subset"] for c in csv} == set(records)


def test_records_of_other_versions_are_flagged_and_a_mixed_table_warns(tmp_path):
    """The fake records say mmbench 0.1.0; the installed one is newer: each row and run page says
    so, and a table holding two versions of one method's plugin warns, naming them."""
    import mmbench

    out = tmp_path / "runs"
    for seed in range(2):
        write(out, fake_record("fusion", seed, {"rgb+depth": 0.9, "rgb": 0.5, "depth": 0.4}))
    newer = fake_record("fusion", 2, {"rgb+depth": 0.9, "rgb": 0.5, "depth": 0.4})
    newer = newer.model_copy(update={"method": newer.method.model_copy(update={"plugin": "baselines", "version": "0.0.9"})})
    write(out, newer)
    with pytest.warns(RuntimeWarning, match=r"task 'toy-cls': method 'fusion' has records of plugin \S+ versions "
                                            r"0\.0\.9, 0\.1; one table compares them as one code"):
        build_site([out], tmp_path / "site", reported_dir=None)
    html = (tmp_path / "site" / "tasks" / "toy-cls.html").read_text()
    assert f"made with mmbench 0.1.0; installed {mmbench.__version__}" in html
    assert "This table mixes versions" in html
    from mmbench.plugins import Registry

    installed = Registry.load().plugin_versions()["baselines"]
    assert f"made with baselines 0.0.9; installed {installed}" in html  # the plugin's own version
    run_page = (tmp_path / "site" / "runs" / f"{slug(newer.run_id)}.html").read_text()
    assert "made with mmbench 0.1.0" in run_page and "mmbench reproduce" in run_page


def test_records_of_the_installed_versions_carry_no_flag(tmp_path):
    import mmbench

    out = tmp_path / "runs"
    record = fake_record("fusion", 0, {"rgb+depth": 0.9, "rgb": 0.5, "depth": 0.4})
    record = record.model_copy(update={"provenance": record.provenance.model_copy(update={"mmbench": mmbench.__version__})})
    write(out, record)
    build_site([out], tmp_path / "site", reported_dir=None)
    assert "made with" not in (tmp_path / "site" / "tasks" / "toy-cls.html").read_text()


def test_a_task_of_many_rows_plots_the_best_twenty_and_says_so(tmp_path):
    """At the scale of a public leaderboard a plot of every row is unreadable (and slow): the task
    page's plots draw the best 20 rows, the caption says how many more the table holds, and every
    row stays in the table."""
    from mmbench.leaderboard.site import PLOTTED_ROWS

    out = tmp_path / "runs"
    for m in range(PLOTTED_ROWS + 5):
        write(out, fake_record(f"method-{m:02d}", 0, {"rgb+depth": 0.5 + m / 100, "rgb": 0.4, "depth": 0.3}))
    build_site([out], tmp_path / "site", reported_dir=None)
    task = (tmp_path / "site" / "tasks" / "toy-cls.html").read_text()
    assert f"the best {PLOTTED_ROWS} rows of the table, 5 more in the table" in task
    bars = task[task.index("Per-subset results"):task.index("Training curves")]
    assert "method-24" in bars and "method-05" in bars and "method-04" not in bars  # the best first
    assert all(f'data-sort="method-{m:02d}"' in task for m in range(PLOTTED_ROWS + 5))
    run_page = next((tmp_path / "site" / "runs").glob("*.html")).read_text()
    assert "<polyline" in run_page and "validation accuracy (%)" in run_page


def test_a_reported_only_page_ranks_each_paper_table_marks_its_best_and_states_a_shared_note_once(tmp_path):
    """seg-nyuv2 without runs: MMANet's 45.58 mean, the best of MMANet Table 4, comes first and in
    bold; the note that every row of that table carries is written once and referred to."""
    (tmp_path / "runs").mkdir()
    build_site([tmp_path / "runs"], tmp_path / "site", reported_dir=REPO / "leaderboards" / "reported")
    page = (tmp_path / "site" / "tasks" / "seg-nyuv2.html").read_text()
    labels = re.findall(r'<td data-col="label" data-sort="([^"]+)">', page)
    table4 = [label for label in labels if label in {"MMANet — reported", "ESANet — reported", "HeMIS — reported",
                                                      "RFNet — reported", "mmFormer — reported", "LCR — reported",
                                                      "ESANet-MD — reported"}]
    assert table4[0] == "MMANet — reported" and table4[-1] == "HeMIS — reported"
    assert [m for m, _ in _cells(page, "MMANet — reported")] == ["best"] * 4
    assert page.count("ESANet is customized") == 1 and page.count('href="#note-1"') >= 7
