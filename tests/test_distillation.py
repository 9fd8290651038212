"""The distillation protocol: scenarios, teacher/student resolution, TEACHER / STUDENT references,
the shared teacher cache, and the CLI's handling of bad distillation options."""

from __future__ import annotations

import json

import pytest

from conftest import FAST, FAST_OVERRIDES, make_runner, one_line_error, run_cli
from mmbench.distillation import resolve_setup
from mmbench.errors import MMBenchError
from mmbench.plan import plan_run
from mmbench.plugins import Registry

KD_METHODS = ("kd", "kdv1", "kdv2", "dkd", "ctkd", "mlkd")


@pytest.fixture(scope="module")
def xmodal(registry):
    return registry.task("synth-mssar-cls")


def test_default_scenarios_follow_the_richest_modality(xmodal):
    mods = ("ms", "sar")
    cross = resolve_setup(xmodal, mods, None, None, None)
    assert (cross.scenario, cross.teacher, cross.students) == ("cross-modal", ("ms",), (("sar",),))
    multi = resolve_setup(xmodal, mods, "multi-modal", None, None)
    assert (multi.scenario, multi.teacher, multi.students) == ("multi-modal", ("ms", "sar"), (("sar",),))
    assert resolve_setup(xmodal, mods, None, "ms+sar", "ms").scenario == "multi-modal"
    assert resolve_setup(xmodal, mods, None, "sar", "ms").scenario == "cross-modal"
    assert multi.trained_modalities == ("ms", "sar") and cross.trained_modalities == ("ms", "sar")


def test_three_modalities_and_subsets(registry):
    task = registry.task("synth-rgbdi-pad")
    setup = resolve_setup(task, ("rgb", "depth", "ir"), None, "rgb+depth", "depth")
    assert setup.scenario == "multi-modal" and setup.trained_modalities == ("rgb", "depth")
    setup = resolve_setup(task, ("rgb", "depth", "ir"), None, "ir", "rgb+depth")
    assert setup.scenario == "cross-modal" and setup.trained_modalities == ("rgb", "depth", "ir")
    assert registry.reference("student", ("rgb", "depth")) == ("fusion", {"modalities": "rgb+depth"})


@pytest.mark.parametrize(("scenario", "teacher", "student", "message"), [
    (None, "ms", "ms", "teacher and student both use ms"),
    ("cross-modal", "ms+sar", "sar", "scenario=cross-modal contradicts teacher=ms+sar"),
    (None, "thermal", None, "invalid modality set 'thermal': unknown thermal"),
    ("both", None, None, "scenario='both' is not one of"),
])
def test_bad_setups_are_explained(xmodal, scenario, teacher, student, message):
    with pytest.raises(MMBenchError, match=message.replace("+", r"\+").replace("(", r"\(")):
        resolve_setup(xmodal, ("ms", "sar"), scenario, teacher, student)


def test_reference_models_are_the_papers_and_come_from_the_plugins(registry):
    assert registry.reference("teacher", ("rgb",)) == ("unimodal", {"modality": "rgb"})
    assert registry.reference("teacher", ("rgb", "depth")) == ("fusion", {"modalities": "rgb+depth", "fusion": "sum"})
    assert registry.reference("student", ("depth",)) == ("unimodal", {"modality": "depth"})
    without = Registry.load(disabled=["baselines"])
    with pytest.raises(MMBenchError, match="no installed method serves as the teacher reference model on rgb"):
        without.reference("teacher", ("rgb",))
    with pytest.raises(MMBenchError, match="method 'kd' needs unimodal as its teacher|no installed method serves"):
        plan_run(without, "kd", "synth-mssar-cls", 0)


def test_a_distillation_plan_lists_its_references_as_dependencies(registry):
    plan = plan_run(registry, "kd", "synth-mssar-cls", 0, {"recipe.epochs": "1"})
    roles = [(d.role, d.reference, d.plan.method.name, dict(d.options)) for d in plan.dependencies]
    assert roles == [("teacher", "teacher", "unimodal", {"modality": "ms"}),
                     ("student", "student", "unimodal", {"modality": "sar"})]
    assert all(d.plan.overrides["recipe.epochs"] == "1" for d in plan.dependencies)  # recipe inherited
    assert [d.role for d in plan_run(registry, "discomkd", "synth-mssar-cls", 0).dependencies] == ["student:ms", "student:sar"]


@pytest.mark.parametrize("method", KD_METHODS)
def test_plans_deploy_the_student_only(registry, method):
    plan = plan_run(registry, method, "synth-rgbd-cls", 0, {"teacher": "rgb+depth", "student": "depth"})
    assert plan.subsets == (("depth",),) and plan.trained_modalities == ("rgb", "depth")
    assert plan.distillation.scenario == "multi-modal"
    other = plan_run(registry, method, "synth-rgbd-cls", 0, {"teacher": "rgb", "student": "depth"})
    assert other.run_id != plan.run_id


def test_discomkd_deploys_every_single_modality(registry):
    plan = plan_run(registry, "discomkd", "synth-rgbdi-pad", 0)
    assert plan.subsets == (("rgb",), ("depth",), ("ir",)) and plan.distillation.teacher is None


def test_kd_record_references_and_shared_teacher(registry, tmp_path):
    """The record names teacher and student; the STUDENT reference is exactly the unimodal run of
    the same seed; a second method reuses the cached teacher and student reference."""
    messages: list[str] = []
    runner = make_runner(registry, tmp_path, log=messages.append)
    overrides = {**FAST_OVERRIDES, "teacher": "rgb+depth", "student": "depth"}
    record, _ = runner.run(plan_run(registry, "dkd", "synth-rgbd-cls", 0, overrides))
    assert record.distillation.model_dump() == {"scenario": "multi-modal", "teacher": ["rgb", "depth"],
                                                "students": [["depth"]]}
    refs = {r.role: r for r in record.references}
    assert refs["teacher"].method == "fusion" and refs["teacher"].trained_modalities == ["rgb", "depth"]
    assert set(refs["teacher"].metrics) == {"rgb+depth"} and set(refs["student"].metrics) == {"depth"}
    assert sum(m.startswith("training ") for m in messages) == 2  # teacher + student reference

    unimodal, _ = runner.run(plan_run(registry, "unimodal", "synth-rgbd-cls", 0, {**FAST_OVERRIDES, "modality": "depth"}))
    assert refs["student"].metrics == unimodal.metrics["best"]

    messages.clear()
    second, _ = runner.run(plan_run(registry, "kd", "synth-rgbd-cls", 0, overrides))
    assert not any(m.startswith("training ") for m in messages), messages
    assert [r.metrics for r in second.references] == [r.metrics for r in record.references]


@pytest.mark.parametrize(("method", "extra", "header", "teacher_row", "terms"), [
    ("mlkd", [], "cross-modal KD, teacher: ms, student(s): sar", "TEACHER (ms)", {"ce", "kd", "cc", "bc"}),
    ("ctkd", ["--set", "scenario=multi-modal", "--set", "logit_standardization=true"],
     "multi-modal KD, teacher: ms+sar, student(s): sar", "TEACHER (ms+sar)", {"ce", "kd"}),
])
def test_cli_run_prints_teacher_and_student_rows(tmp_path, method, extra, header, teacher_row, terms):
    out = tmp_path / "runs"
    result = run_cli("run", "--method", method, "--task", "synth-mssar-cls", *FAST, *extra, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert header in result.stdout
    assert teacher_row in result.stdout and "STUDENT (sar)" in result.stdout
    data = json.loads(next(out.rglob("*.json")).read_text())
    assert data["distillation"]["teacher"] == teacher_row.split("(")[1].rstrip(")").split("+")
    assert data["subsets"] == ["sar"] and {r["role"] for r in data["references"]} == {"teacher", "student"}
    assert set(data["curves"][0]["loss"]) == terms


@pytest.mark.parametrize(("args", "expected"), [
    (["--method", "kd", "--set", "teacher=thermal"], "invalid modality set 'thermal'"),
    (["--method", "dkd", "--set", "teacher=rgb", "--set", "student=rgb"], "teacher and student both use rgb"),
    (["--method", "kd", "--set", "scenario=cross-modal", "--set", "teacher=rgb+depth"], "contradicts"),
    (["--method", "ctkd", "--set", "base=fitnet"], "invalid value 'fitnet' for base"),
    (["--method", "dkd", "--set", "warmup=0"], "warmup >= 1"),
    (["--method", "mlkd", "--task", "synth-rgbd-seg"], "supports anti-spoofing, classification tasks"),
])
def test_bad_distillation_options_are_one_line(args, expected, tmp_path):
    task = [] if "--task" in args else ["--task", "synth-rgbd-cls"]
    result = run_cli("run", *args, *task, "--out", str(tmp_path / "runs"))
    assert expected in one_line_error(result)
    assert not (tmp_path / "runs").exists()


def test_results_frame_lists_each_reference_once_per_seed(registry, tmp_path):
    from mmbench.results import aggregate, load_runs

    runner = make_runner(registry, tmp_path)
    overrides = {**FAST_OVERRIDES, "teacher": "rgb", "student": "depth"}
    for method in ("kd", "kdv2"):
        runner.run(plan_run(registry, method, "synth-rgbd-cls", 0, overrides))
    plain = load_runs(tmp_path / "runs")
    # the references are ordinary runs with records of their own, trained once for both methods
    assert set(plain["method"]) == {"kd", "kdv2", "unimodal"}
    assert set(plain[plain["method"] != "unimodal"]["teacher"]) == {"rgb"}
    assert len(set(plain[plain["method"] == "unimodal"]["run_id"])) == 2
    frame = aggregate(load_runs(tmp_path / "runs", references=True))
    accuracy = frame[frame["metric"] == "accuracy"]
    refs = accuracy[accuracy["method"].isin(["TEACHER", "STUDENT"])]
    assert sorted(zip(refs["method"], refs["subset"], refs["n"], strict=True)) == [
        ("STUDENT", "depth", 1), ("TEACHER", "rgb", 1)]


def test_default_protocol_is_the_papers_two_tables(registry, xmodal):
    from mmbench.distillation import protocol_setups

    setups = [(s.scenario, s.teacher, s.students) for s in protocol_setups(xmodal, ("ms", "sar"))]
    assert setups == [
        ("cross-modal", ("ms",), (("sar",),)),
        ("multi-modal", ("ms", "sar"), (("ms",),)),
        ("multi-modal", ("ms", "sar"), (("sar",),)),
    ]
    three = protocol_setups(registry.task("synth-rgbdi-pad"), ("rgb", "depth", "ir"))
    assert len(three) == 5 and all(len(s.students[0]) == 1 for s in three)
