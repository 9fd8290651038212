"""``mmbench reproduce``: a record re-runs to the same numbers, a changed number is caught, and what
cannot be reproduced here says why. The CI check of the committed site is
:func:`test_a_sample_of_the_committed_records_reproduces_bit_for_bit`."""

import json
import math
import shutil
from pathlib import Path

import pytest

from mmbench.cli import main
from mmbench.errors import MMBenchError
from mmbench.records import read_record
from mmbench.reproduction import _plan_for, choose_sample, compare, reproduce
from mmbench.results import iter_records

COMMITTED = Path(__file__).resolve().parents[1] / "leaderboards" / "runs"
SITE = Path(__file__).resolve().parents[1] / "leaderboards" / "reproduce" / "site.toml"
CI_SAMPLE = 3
"""One record of each method family (baseline, incomplete, distillation), the cheapest of each."""


def committed():
    return list(iter_records([COMMITTED]))


def cheapest_baseline() -> Path:
    import mmbench

    path, _ = choose_sample(committed(), 1, lambda record: record.provenance.mmbench == mmbench.__version__)[0]
    return path


@pytest.mark.slow
def test_a_sample_of_the_committed_records_reproduces_bit_for_bit(registry, tmp_path):
    """The committed site's numbers come back from the current code: a result-changing commit
    cannot land without re-run records (leaderboards/reproduce/site.toml). The sample is the
    cheapest record of each method family among those made by the installed versions on this kind
    of processor; a version bump therefore needs at least those re-run."""
    from mmbench.provenance import cpu_kind
    from mmbench.reproduction import reproducible_here

    chosen = choose_sample(committed(), CI_SAMPLE, lambda record: reproducible_here(registry, record))
    assert {record.method.family for _, record in chosen} == {"baseline", "incomplete", "distillation"}
    if not all(reproducible_here(registry, record) for _, record in chosen):
        # CPU kernels differ between processor kinds (oneDNN, vectorised reductions): the sample
        # is checked bit for bit where a record of each family was made on this kind of CPU.
        pytest.skip(f"no committed record of each method family was made by the installed versions on this processor "
                    f"kind ({cpu_kind()}); regenerate the committed site here (leaderboards/reproduce/site.toml)")
    outcomes = reproduce(COMMITTED, sample=CI_SAMPLE, out=tmp_path / "again")
    assert [o.status for o in outcomes] == ["identical"] * CI_SAMPLE, "\n".join(o.line() for o in outcomes)


def fresh_record(tmp_path: Path) -> Path:
    """A record made here and now (any processor reproduces its own runs bit for bit)."""
    from conftest import FAST

    runs = tmp_path / "made-here"
    assert main(["run", "--method", "fusion", "--task", "synth-rgbd-cls", *FAST, "--threads", "1", "--no-progress",
                 "--out", str(runs)]) == 0
    (path,) = runs.rglob("*.json")
    return path


@pytest.mark.slow
def test_one_ulp_is_a_difference_and_the_exit_code_says_so(tmp_path, capsys):
    source = fresh_record(tmp_path)
    data = json.loads(source.read_text())
    runs = tmp_path / "runs"
    (runs / "same").mkdir(parents=True)
    (runs / "moved").mkdir()
    shutil.copy(source, runs / "same" / source.name)
    subset = next(iter(data["metrics"]["best"]))
    metric = next(iter(data["metrics"]["best"][subset]))
    value = data["metrics"]["best"][subset][metric]
    data["metrics"]["best"][subset][metric] = math.nextafter(value, math.inf)
    (runs / "moved" / source.name).write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["reproduce", str(runs)]) == 1
    out = capsys.readouterr().out
    assert out.count("identical") == 2 and "differs" in out  # the per-record line and the summary
    assert f"largest |Δ| {abs(math.nextafter(value, math.inf) - value):.3g} at best/{subset}/{metric}" in out
    assert "2 record(s): 1 identical, 1 differ" in out
    assert "processor" not in out  # made on this processor kind: a difference is the code's


@pytest.mark.slow
def test_a_cpu_record_of_another_processor_kind_that_differs_says_so(tmp_path, capsys):
    """CPU kernels (oneDNN, vectorised reductions) differ between processor kinds: a record made on
    another kind that differs names both kinds, so nobody hunts for a code change that isn't."""
    from mmbench.provenance import cpu_kind

    source = fresh_record(tmp_path)
    data = json.loads(source.read_text())
    assert data["provenance"]["cpu"] == cpu_kind()
    data["provenance"]["cpu"] = "Some Other CPU · AVX2 · 00000000"
    first = next(iter(data["metrics"]["best"]))
    metric = next(iter(data["metrics"]["best"][first]))
    data["metrics"]["best"][first][metric] += 0.25
    source.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["reproduce", str(source)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert f"made on Some Other CPU · AVX2 · 00000000, this is {cpu_kind()}" in out
    assert "bit-identity is expected on the same kind only" in out


def test_compare_finds_the_largest_difference_and_honours_a_tolerance():
    record = read_record(cheapest_baseline())
    assert compare(record, record)[0] == "identical"
    moved = record.model_copy(deep=True)
    subset = next(iter(moved.metrics["best"]))
    metric = next(iter(moved.metrics["best"][subset]))
    moved.metrics["best"][subset][metric] += 0.004
    status, detail, largest = compare(record, moved)
    assert status == "differs" and largest[0] == f"best/{subset}/{metric}" and "0.004" in detail
    assert compare(record, moved, tolerance=0.005)[0] == "within-tolerance"
    failed = moved.model_copy(update={"status": "failed"})
    assert compare(record, failed)[:2] == ("differs", "status completed recorded, failed now")
    fewer = record.model_copy(deep=True)
    fewer.metrics["best"].pop(subset)
    assert compare(record, fewer)[0] == "differs" and "missing from the re-run" in compare(record, fewer)[1]


def test_the_sample_covers_each_family_cheapest_first():
    records = committed()
    chosen = choose_sample(records, CI_SAMPLE)
    assert choose_sample(records, CI_SAMPLE) == chosen
    assert {r.method.family for _, r in chosen} == {"baseline", "incomplete", "distillation"}
    for _, record in chosen:
        same_family = [r for _, r in records if r.method.family == record.method.family]
        cost = {r.run_id: r.timings.total_seconds for _, r in records}
        assert record.timings.total_seconds <= min(cost[r.run_id] for r in same_family) + sum(
            cost.get(d.run_id, 0) for d in record.dependencies)


def test_an_old_record_without_its_options_plans_the_same_run(registry):
    path, record = next((p, r) for p, r in committed() if r.overrides)
    stripped = record.model_copy(update={"overrides": None})
    assert _plan_for(registry, stripped).run_id == _plan_for(registry, record).run_id


def _edited_copy(tmp_path: Path, **changes) -> Path:
    data = json.loads(cheapest_baseline().read_text())
    for dotted, value in changes.items():
        target = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            target = target[key]
        target[leaf] = value
    path = tmp_path / "record.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(("changes", "reason"), [
    ({"provenance.torch": "1.13.0"}, "recorded with torch 1.13.0, here"),
    ({"provenance.device": "cuda:0", "provenance.device_name": "NVIDIA H100"}, "recorded on cuda (NVIDIA H100), here cpu"),
    ({"method.name": "not-installed"}, "unknown method 'not-installed'"),
    ({"subsets": ["elsewhere"]}, "the plan no longer resolves as recorded: subsets: recorded ['elsewhere']"),
    ({"recipe.gone_field": 1}, "recipe field(s) gone_field of the record no longer exist"),
])
def test_what_cannot_be_reproduced_here_says_why(tmp_path, changes, reason, capsys):
    assert main(["reproduce", str(_edited_copy(tmp_path, **changes))]) == 3
    out = capsys.readouterr().out
    assert "can't reproduce here" in out and reason in out, out
    if "provenance.torch" in changes:
        assert "pass --tolerance T" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--sample", "0"], "invalid --sample 0: use a number of records >= 1."),
    (["--tolerance", "-1"], "invalid --tolerance -1.0: use a number >= 0"),
])
def test_bad_options_are_one_line(tmp_path, args, message, capsys):
    assert main(["reproduce", str(cheapest_baseline()), *args]) == 2
    assert message in capsys.readouterr().err


def test_no_records_is_one_line(tmp_path, capsys):
    assert main(["reproduce", str(tmp_path)]) == 2
    assert f"no run records under {tmp_path}" in capsys.readouterr().err


def test_python_entry_point_is_the_cli_function():
    import mmbench
    from mmbench import reproduction

    assert mmbench.reproduce is reproduction.reproduce
    with pytest.raises(MMBenchError, match="invalid --sample"):
        mmbench.reproduce(COMMITTED, sample=0)


def test_the_site_sweep_regenerates_the_committed_records(registry, tmp_path):
    """leaderboards/reproduce/site.toml plans every committed record's run (dependencies
    included), each valid: one command regenerates the committed site. Records made by older
    versions are flagged on the site ("made with ...") until they are re-run by it."""
    import mmbench
    from mmbench.sweeps import load_grid_file, plan_sweep

    jobs = plan_sweep(load_grid_file(SITE), registry, tmp_path / "runs")
    assert jobs and not [j for j in jobs if j.status == "invalid"]
    planned = {j.run_id for j in jobs}
    current = [record for _, record in committed() if record.provenance.mmbench == mmbench.__version__
               and record.method.version == registry.plugin_of("method", record.method.name).version]
    assert current
    assert {_plan_for(registry, record).run_id for record in current} <= planned


@pytest.mark.slow
def test_a_failed_record_reproduces_when_it_fails_the_same_way(tmp_path, capsys):
    from conftest import FAST, NAN_PLUGIN

    plugin = tmp_path / "nanny.py"
    plugin.write_text(NAN_PLUGIN.format(bad_step=3))
    runs = tmp_path / "runs"
    assert main(["--plugin", str(plugin), "run", "--method", "goes-nan", "--task", "synth-rgbd-cls", *FAST,
                 "--no-progress", "--out", str(runs)]) != 0
    (path,) = runs.rglob("*.json")
    assert read_record(path).status == "failed"
    capsys.readouterr()
    assert main(["--plugin", str(plugin), "reproduce", str(path)]) == 0
    assert "identical" in capsys.readouterr().out
    data = json.loads(path.read_text())
    data["failure"]["epoch"] = 7
    path.write_text(json.dumps(data))
    assert main(["--plugin", str(plugin), "reproduce", str(path)]) == 1
    assert "failed at epoch 7" in capsys.readouterr().out
