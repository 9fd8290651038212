"""The cross-modal / multi-modal distillation protocol (a property of the harness, not of a method).

As the DisCoM-KD paper (Ienco & Fraga Dantas, BMVC 2024) evaluates it:

* **cross-modal KD** — the teacher is trained on one modality (the task's richest, declared as
  :attr:`mmbench.TaskSpec.cross_modal_teacher`), the student on another;
* **multi-modal KD** — the teacher is trained on all modalities (per-modality encoders fused by
  element-wise addition at the penultimate layer, one linear classifier) and a single-modality
  student is distilled from it.

A distillation method declares ``MethodSpec.distillation``; the plan resolves it into a
:class:`DistillationSetup` from the method's ``teacher`` / ``student`` / ``scenario`` options, the
engine hands it to the method (``ctx.distillation``), and the runner evaluates the TEACHER and the
undistilled STUDENT references next to the method, as the paper's tables do. Both references
are ordinary runs of whichever installed method declares it serves the role
(``MethodSpec.reference``: ``unimodal`` / ``fusion`` of the built-in baselines plugin), trained
before the method and kept in the content-addressed artifact cache, so every method distilled
from the same teacher on the same seed shares one teacher and one student reference.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from mmbench.errors import MMBenchError
from mmbench.specs import Subset, TaskSpec, parse_subset, subset_key

__all__ = ["DistillationSetup", "reference_roles", "resolve_setup", "teacher_free_setup"]

Scenario = Literal["cross-modal", "multi-modal", "teacher-free"]
SCENARIOS: tuple[str, ...] = ("cross-modal", "multi-modal")


@dataclass(frozen=True)
class DistillationSetup:
    """Who teaches whom: the teacher's modalities (``None`` for teacher-free methods such as
    DisCoM-KD) and the student modality set(s) that are deployed."""

    scenario: Scenario
    teacher: Subset | None
    students: tuple[Subset, ...]

    task_modalities: tuple[str, ...] = ()

    @property
    def trained_modalities(self) -> tuple[str, ...]:
        """Every modality the training reads (teacher's and students'), in task order."""
        used = set(self.teacher or ()) | {m for s in self.students for m in s}
        return tuple(m for m in self.task_modalities if m in used)


def richest_modality(task: TaskSpec, modalities: tuple[str, ...]) -> str:
    richest = task.cross_modal_teacher or modalities[0]
    if richest not in modalities:
        raise MMBenchError(
            f"task '{task.name}' declares cross_modal_teacher='{richest}', which is not one of its modalities "
            f"({', '.join(modalities)})."
        )
    return richest


def scenario_of(teacher: Subset, student: Subset) -> Scenario:
    """Multi-modal KD when the student's modalities are a subset of the teacher's, else cross-modal."""
    return "multi-modal" if set(student) <= set(teacher) else "cross-modal"


def resolve_setup(
    task: TaskSpec, modalities: tuple[str, ...], scenario: str | None, teacher: str | None, student: str | None,
) -> DistillationSetup:
    """Resolve the ``scenario`` / ``teacher`` / ``student`` options of a teacher-student method.

    Defaults: cross-modal scenario; teacher = the task's richest modality (cross-modal) or every
    modality (multi-modal); student = the first other modality. An explicit teacher decides the
    scenario; an explicit scenario that contradicts it is an error."""
    if len(modalities) < 2:
        raise MMBenchError(f"distillation needs a task with at least two modalities; '{task.name}' has one.")
    if scenario is not None and scenario not in SCENARIOS:
        raise MMBenchError(f"scenario='{scenario}' is not one of {', '.join(SCENARIOS)}.")
    richest = richest_modality(task, modalities)
    if teacher:
        teacher_set = parse_subset(teacher, modalities)
    else:
        teacher_set = tuple(modalities) if scenario == "multi-modal" else (richest,)
    if student:
        student_set = parse_subset(student, modalities)
    else:
        student_set = (next(m for m in modalities if m != richest),)
    if set(student_set) == set(teacher_set):
        raise MMBenchError(
            f"teacher and student both use {subset_key(student_set)}; pick a student modality the teacher "
            "does not cover alone (e.g. --set student=<other modality>)."
        )
    derived = scenario_of(teacher_set, student_set)
    if scenario is not None and teacher and scenario != derived:
        raise MMBenchError(
            f"scenario={scenario} contradicts teacher={subset_key(teacher_set)} and student={subset_key(student_set)} "
            f"(that is {derived} KD); set only one of scenario or teacher."
        )
    return DistillationSetup(scenario=derived, teacher=teacher_set, students=(student_set,), task_modalities=tuple(modalities))


def resolved_config(config: Any, setup: DistillationSetup) -> Any:
    """``config`` with its ``scenario`` / ``teacher`` / ``student`` options (where the config has
    them) replaced by what ``setup`` resolved them to, so that equivalent settings (an explicit
    ``teacher=ms`` and the default that resolves to ``ms``) are one configuration and one run id."""
    names = {f.name for f in dataclasses.fields(config)}
    values: dict[str, Any] = {}
    if "teacher" in names and setup.teacher is not None:
        values["teacher"] = subset_key(setup.teacher)
    if "student" in names and len(setup.students) == 1:
        values["student"] = subset_key(setup.students[0])
    if "scenario" in names and setup.scenario in SCENARIOS:
        values["scenario"] = setup.scenario
    return dataclasses.replace(config, **values) if values else config


def teacher_free_setup(modalities: tuple[str, ...]) -> DistillationSetup:
    """Methods that train every single-modality classifier at once without a teacher (DisCoM-KD).
    Their result does not depend on the scenario: the paper lists them in both tables."""
    return DistillationSetup(
        scenario="teacher-free", teacher=None, students=tuple((m,) for m in modalities), task_modalities=tuple(modalities),
    )


def reference_roles(setup: DistillationSetup) -> dict[str, tuple[str, Subset]]:
    """The TEACHER and STUDENT reference models of a setup, as ``{role key: (role, modalities)}``:
    ``teacher``, and ``student`` (``student:<subset>`` for each of several students). Which
    method is trained for each is up to the plugins (``MethodSpec.reference``); the built-in
    baselines plugin trains a unimodal network, or per-modality encoders fused by element-wise
    addition at the penultimate layer for a multi-modal teacher (the DisCoM-KD paper)."""
    roles: dict[str, tuple[str, Subset]] = {}
    if setup.teacher is not None:
        roles["teacher"] = ("teacher", setup.teacher)
    for student in setup.students:
        key = "student" if len(setup.students) == 1 else f"student:{subset_key(student)}"
        roles[key] = ("student", student)
    return roles


def protocol_setups(task: TaskSpec, modalities: tuple[str, ...]) -> list[DistillationSetup]:
    """The default protocol of a cross-modal task, as the DisCoM-KD paper's two tables: the
    cross-modal scenario (richest modality → every other one) and the multi-modal scenario (all
    modalities → every single one). A sweep runs a teacher-student method once per setup."""
    richest = richest_modality(task, modalities)
    cross = [resolve_setup(task, modalities, "cross-modal", richest, m) for m in modalities if m != richest]
    multi = [resolve_setup(task, modalities, "multi-modal", "+".join(modalities), m) for m in modalities]
    return cross + multi
