"""Declared dependencies: planned before anything is built, trained as ordinary runs (records,
checkpoints, resumed when interrupted), listed by ``--dry-run`` and run first by ``mmbench sweep``;
the Python entry point ``mmbench.run`` with the CLI's semantics."""

from __future__ import annotations

import json
import textwrap

import pytest

from conftest import FAST, FAST_OVERRIDES, one_line_error, run_cli

pytestmark = pytest.mark.slow


def test_run_dry_run_lists_dependencies_and_writes_nothing(tmp_path):
    out = tmp_path / "runs"
    result = run_cli("run", "--method", "kd", "--task", "synth-mssar-cls", "--seeds", "0-1", "--dry-run",
                     "--out", str(out), *FAST)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "seed" in line]
    assert [line.split("│")[2].strip() for line in lines] == ["teacher", "student", "run"] * 2
    assert all("to train" in line for line in lines if "unimodal" in line)
    assert not out.exists()


def test_python_entry_point_has_the_cli_semantics(tmp_path):
    import mmbench

    messages = []
    out = tmp_path / "runs"
    (record,) = mmbench.run("kd", "synth-mssar-cls", seeds=0, overrides=FAST_OVERRIDES, out=out, log=messages.append)
    assert record.status == "completed" and record.method.family == "distillation"
    roles = {d.role: d for d in record.dependencies}
    assert set(roles) == {"teacher", "student"} and roles["teacher"].overrides == {"modality": "ms"}
    for dependency in record.dependencies:  # each an ordinary run with its own record in --out
        dep = json.loads((out / "synth-mssar-cls" / "unimodal" / f"{dependency.run_id}.json").read_text())
        assert dep["status"] == "completed" and dep["run_id"] == dependency.run_id
    assert [r.run_id for r in record.references] == [roles["teacher"].run_id, roles["student"].run_id]
    again = mmbench.run("kd", "synth-mssar-cls", seeds="0", overrides=FAST_OVERRIDES, out=out, log=messages.append)
    assert again[0].run_id == record.run_id and any("already recorded" in m for m in messages)
    dry = run_cli("run", "--method", "kd", "--task", "synth-mssar-cls", "--dry-run", "--out", str(out), *FAST)
    assert dry.stdout.count("cached") == 2 and "recorded" in dry.stdout
    with pytest.raises(mmbench.MMBenchError, match="unknown method 'kdd'"):
        mmbench.run("kdd", "synth-mssar-cls", out=out)
    site = tmp_path / "site"
    assert run_cli("leaderboard", "build", str(out), "--out", str(site)).returncode == 0
    page = (site / "runs" / f"{record.run_id}.html").read_text()
    assert "built on" in page and f'href="{roles["teacher"].run_id}.html"' in page
    assert (site / "runs" / f"{roles['teacher'].run_id}.html").exists()


INTERRUPT_PLUGIN = """
from pathlib import Path
from mmbench import hookimpl

MARKER = Path({marker!r})

@hookimpl
def mmbench_epoch_end(run, epoch, logs):
    if run["method"] == "unimodal" and epoch == 2 and not MARKER.exists():
        MARKER.write_text("interrupted once")
        raise KeyboardInterrupt
"""


def test_sweep_runs_dependencies_first_and_resumes_an_interrupted_teacher(tmp_path):
    plugin = tmp_path / "interrupt_teacher.py"
    plugin.write_text(textwrap.dedent(INTERRUPT_PLUGIN.format(marker=str(tmp_path / "marker"))))
    out = tmp_path / "runs"
    sets = ["--set", "recipe.epochs=3", "--set", "recipe.limit_train=128", "--set", "recipe.limit_eval=64",
            "--set", "recipe.width=8"]
    common = ["--methods", "kd,kdv2", "--tasks", "synth-mssar-cls", "--out", str(out), *sets]
    dry = run_cli("sweep", *common, "--dry-run", env={"COLUMNS": "400"})
    assert dry.returncode == 0, dry.stderr
    rows = [line for line in dry.stdout.splitlines() if "synth-mssar-cls, seed" in line]
    assert len(rows) == 4 and all("unimodal" in r and "dependency of 2 run(s)" in r for r in rows[:2])
    result = run_cli("sweep", *common, "--retries", "0", "--plugin", str(plugin))
    # the teacher's own job was interrupted after 2 epochs; the first run needing it resumed it
    assert (tmp_path / "marker").exists()
    teachers = [json.loads(p.read_text()) for p in (out / "synth-mssar-cls" / "unimodal").glob("*.json")]
    teacher = next(t for t in teachers if t["config"]["modality"] == "ms")
    assert teacher["extra"]["resumed_from_epoch"] == 2 and len(teacher["curves"]) == 3
    students = [json.loads(p.read_text()) for p in (out / "synth-mssar-cls").glob("kd*/*.json")]
    assert len(students) == 2
    assert all(teacher["run_id"] in [d["run_id"] for d in s["dependencies"]] for s in students)
    again = run_cli("sweep", *common)
    assert again.returncode == 0 and "4 to run" not in again.stdout
    assert "failed" in result.stdout  # the interrupted teacher job is reported, not hidden


def test_a_dependency_on_a_missing_method_is_one_clear_line(tmp_path):
    plugin = tmp_path / "needs_missing.py"
    plugin.write_text(textwrap.dedent("""
        from mmbench import ALL_KINDS, MethodSpec, hookimpl

        @hookimpl
        def mmbench_methods():
            return [MethodSpec(name="needs-missing", description="x", build="mmbench_baselines.models:build_fusion",
                               kinds=ALL_KINDS, requires=lambda task, modalities, config: {"teacher": ("nope", {})})]
    """))
    result = run_cli("run", "--method", "needs-missing", "--plugin", str(plugin), "--out", str(tmp_path / "runs"))
    assert "method 'needs-missing' needs nope as its teacher, which cannot run: unknown method 'nope'" in one_line_error(result)
    assert not (tmp_path / "runs").exists()


def test_a_task_may_carry_its_dataset_inline(tmp_path):
    from mmbench.plugins import Registry

    plugin = tmp_path / "inline_task.py"
    plugin.write_text(textwrap.dedent("""
        import numpy as np
        from mmbench import CPU_SMOKE, ArraySource, DatasetSpec, TaskSpec, hookimpl

        def arrays(split):
            rng = np.random.default_rng(0 if split == "train" else 1)
            return {"a": rng.normal(size=(64, 4)).astype("float32"), "b": rng.normal(size=(64, 3)).astype("float32"),
                    "target": rng.integers(0, 2, 64)}

        DATA = DatasetSpec(name="inline-data", description="x", modalities={"a": 4, "b": 3},
                           source=ArraySource(arrays, version="1"))

        @hookimpl
        def mmbench_tasks():
            return [TaskSpec(name="inline-task", description="x", dataset=DATA, kind="classification", num_classes=2,
                             recipes={"smoke": CPU_SMOKE.but(epochs=1)})]
    """))
    registry = Registry.load(plugins=[str(plugin)])
    task = registry.task("inline-task")
    assert task.dataset == "inline-data" and registry.dataset_of(task).name == "inline-data"
    assert registry.plugin_of("dataset", "inline-data").name == registry.plugin_of("task", "inline-task").name


def test_editing_a_teacher_plugin_changes_its_students_run_id(tmp_path):
    from mmbench.plan import plan_run
    from mmbench.plugins import Registry

    teacher = tmp_path / "file_teacher.py"
    teacher.write_text(textwrap.dedent("""
        from mmbench import ALL_KINDS, MethodSpec, hookimpl

        @hookimpl
        def mmbench_methods():
            return [MethodSpec(name="file-teacher", description="x", build="mmbench_baselines.models:build_fusion_dropout",
                               kinds=ALL_KINDS, config=__import__("mmbench_baselines").FusionDropoutConfig)]
    """))
    student = tmp_path / "file_student.py"
    student.write_text(textwrap.dedent("""
        from mmbench import ALL_KINDS, MethodSpec, hookimpl

        @hookimpl
        def mmbench_methods():
            return [MethodSpec(name="file-student", description="x", build="mmbench_baselines.models:build_fusion_dropout",
                               kinds=ALL_KINDS, config=__import__("mmbench_baselines").FusionDropoutConfig,
                               requires=lambda task, modalities, config: {"teacher": ("file-teacher", {})})]
    """))

    def student_plan():
        registry = Registry.load(plugins=[str(teacher), str(student)], entry_points=True)
        return plan_run(registry, "file-student", "synth-rgbd-cls", 0, FAST_OVERRIDES)

    before = student_plan()
    assert before.identity["dependencies"] == {"teacher": before.dependencies[0].plan.run_id}
    teacher.write_text(teacher.read_text() + "# edited\n")
    after = student_plan()
    assert after.dependencies[0].plan.run_id != before.dependencies[0].plan.run_id
    assert after.run_id != before.run_id  # the student's own code is unchanged
