"""Run records → pandas: long format, aggregation over seeds, validation of foreign files."""

import json

import pytest

from conftest import FAST_OVERRIDES
from mmbench.errors import MMBenchError
from mmbench.plan import plan_run
from mmbench.records import read_record
from mmbench.results import aggregate, load_runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory, registry):
    from mmbench.artifacts import ArtifactCache
    from mmbench.engine.runner import Runner

    out = tmp_path_factory.mktemp("results") / "runs"
    runner = Runner(registry, out=out, device="cpu", artifacts=ArtifactCache(out.parent / "artifacts"))
    for seed in (0, 1, 2):
        runner.run(plan_run(registry, "fusion", "synth-rgbd-cls", seed, FAST_OVERRIDES))
    runner.run(plan_run(registry, "fusion", "synth-rgbd-cls", 0, {**FAST_OVERRIDES, "recipe.lr": "0.01"}))
    return out


def test_long_format(runs):
    frame = load_runs(runs)
    assert set(frame["selection"]) == {"best", "last"}
    assert set(frame["subset"]) == {"rgb+depth", "rgb", "depth", "mean"}
    assert frame["run_id"].nunique() == 4
    one = frame[(frame.seed == 1) & (frame.selection == "best") & (frame.metric == "accuracy")]
    per_subset = one[one.subset != "mean"]["value"]
    assert one[one.subset == "mean"]["value"].iloc[0] == pytest.approx(per_subset.mean())


def test_aggregate_over_seeds_keeps_variants_apart(runs):
    frame = load_runs(runs)
    table = aggregate(frame)
    acc = table[(table.subset == "rgb+depth") & (table.metric == "accuracy")].sort_values("n")
    assert acc["n"].tolist() == [1, 3]  # the lr=0.01 variant is not averaged with the default
    values = frame[(frame.subset == "rgb+depth") & (frame.metric == "accuracy") & (frame.selection == "best")]
    default = values[values.variant == acc.iloc[1]["variant"]]["value"]
    assert acc.iloc[1]["mean"] == pytest.approx(default.mean())
    assert acc.iloc[1]["std"] == pytest.approx(default.std())
    assert acc.iloc[0]["std"] == 0.0


def test_task_versions_are_never_mixed(runs, tmp_path):
    (path,) = list(runs.rglob("*.json"))[:1]
    data = json.loads(path.read_text())
    data["task"]["version"] = "2"
    data["run_id"] = "v2-copy"
    (tmp_path / "v2.json").write_text(json.dumps(data))
    frame = load_runs(runs, tmp_path)
    with pytest.warns(RuntimeWarning, match="versions 1, 2"):
        table = aggregate(frame)
    assert set(table["task_version"]) == {"1", "2"}


def test_invalid_and_foreign_files_are_skipped_with_a_warning(runs, tmp_path):
    (tmp_path / "notes.json").write_text('{"hello": 1}')
    (tmp_path / "broken.json").write_text("{")
    bad = json.loads(next(runs.rglob("*.json")).read_text())
    bad["metrics"] = "high"
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.warns(RuntimeWarning) as caught:
        frame = load_runs(tmp_path)
    assert frame.empty
    messages = " ".join(str(w.message) for w in caught)
    assert "notes.json is not an mmbench run record" in messages
    assert "broken.json is not readable JSON" in messages
    assert "bad.json is not a valid run record: metrics" in messages


def test_newer_schema_is_an_error(runs, tmp_path):
    data = json.loads(next(runs.rglob("*.json")).read_text())
    data["schema_version"] = 2
    (tmp_path / "future.json").write_text(json.dumps(data))
    with pytest.raises(MMBenchError, match="newer than this mmbench reads"):
        read_record(tmp_path / "future.json")
    with pytest.raises(MMBenchError, match="upgrade mmbench"):
        load_runs(tmp_path)
