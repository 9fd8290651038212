"""The run record: a versioned, self-describing JSON document per run.

Layout: ``<out>/<task>/<method>/<run_id>.json``, written atomically. ``schema_version`` is bumped
on any incompatible change; readers reject newer versions with a clear error. Importing this
module does not import torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from mmbench.errors import MMBenchError
from mmbench.files import atomic_write_json, describe_os_error

SCHEMA_VERSION = 1


class NewerSchemaError(MMBenchError):
    """A record written by a newer mmbench: never read as if it were ours, never overwritten."""

SubsetMetrics = dict[str, dict[str, float]]
"""``{subset: {metric: value}}``, e.g. ``{"rgb+depth": {"accuracy": 0.93}}``."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskInfo(_Strict):
    name: str
    version: str
    kind: str
    primary_metric: str
    higher_is_better: bool
    modalities: list[str]
    num_classes: int
    class_weights: list[float] | None = None
    """The loss's per-class weights (``recipe.class_weighting``), computed on the training samples."""


class DatasetInfo(_Strict):
    name: str
    source: Literal["hub", "hub-files", "local", "generator", "arrays"]
    repo: str | None = None
    revision: str
    revision_overridden: bool = False
    options: dict[str, str] = Field(default_factory=dict)
    """The dataset's options (split protocol, preprocessing variant), given or default."""
    sizes: dict[str, int] = Field(default_factory=dict)
    """Samples used per split (after the recipe's limits and the validation carve-out)."""


class PretrainedInfo(_Strict):
    """The weights a run's encoders started from (``recipe.pretrained``)."""

    name: str
    """torchvision's name of the weights, e.g. ``ResNet50_Weights.IMAGENET1K_V1``."""
    file: str
    sha256: str


class MethodInfo(_Strict):
    name: str
    plugin: str
    version: str
    paper: str = ""
    repo: str = ""
    family: str = Field(default="baseline", validation_alias=AliasChoices("family", "scenario"))
    """``baseline``, ``incomplete`` or ``distillation`` (older records call it ``scenario``)."""
    source_hash: str | None = None
    """Content hash of the method plugin's source (file / module plugins, editable installs)."""


class Selection(_Strict):
    criterion: str
    best_epoch: int
    """The epoch of the best mean over the deployment subsets (the saved weights)."""
    last_epoch: int
    subset_epochs: dict[str, int] | None = None
    """``recipe.selection = "per-subset"``: the epoch each subset's ``best`` metrics come from."""
    split: Literal["validation", "test"] = "validation"
    """The split the epoch was selected on: ``test`` only with ``recipe.selection = "paper"`` (the
    papers' protocol); such records are never ranked with validation-selected ones."""


class Failure(_Strict):
    message: str
    epoch: int | None = None
    term: str | None = None


class Timings(_Strict):
    data_seconds: float = 0.0
    train_seconds: float = 0.0
    val_seconds: float = 0.0
    test_seconds: float = 0.0
    total_seconds: float = 0.0


class Resources(_Strict):
    peak_memory_mb: float
    parameters: int
    trainable_parameters: int
    inference_ms_per_sample: float | None = None


class Provenance(_Strict):
    mmbench: str
    plugins: dict[str, str]
    git_sha: str | None = None
    python: str
    torch: str
    torchvision: str
    cuda: str | None = None
    device: str
    device_name: str
    cpu_count: int
    platform: str
    plugin_sources: dict[str, str] = Field(default_factory=dict)
    """Source hashes of the file / module / editable plugins that were loaded."""
    threads: int | None = None
    """torch's intra-op threads during the run (``mmbench run --threads``)."""
    cpu: str | None = None
    """A CPU run's processor kind (:func:`mmbench.provenance.cpu_kind`): its numbers are
    bit-identical on a processor of the same kind only (records before 0.2.0: not recorded)."""


class DistillationInfo(_Strict):
    """Teacher and student modality sets of a distillation run (``teacher`` is ``None`` for
    teacher-free methods such as DisCoM-KD)."""

    scenario: str
    teacher: list[str] | None = None
    students: list[list[str]]


class ReferenceResult(_Strict):
    """A reference model reported next to the method (the TEACHER, the undistilled STUDENT):
    test metrics of its best-validation epoch, same task, data and seed."""

    role: str
    method: str
    overrides: dict[str, str] = Field(default_factory=dict)
    run_id: str
    trained_modalities: list[str]
    metrics: SubsetMetrics


class DependencyInfo(_Strict):
    """A trained model the run was built on (a teacher, a pretrained encoder): its role, the run
    that produced it (a record in the same output directory) and the sha256 of its weights."""

    role: str
    method: str
    overrides: dict[str, str] = Field(default_factory=dict)
    run_id: str
    weights_sha256: str | None = None


class GalleryImage(_Strict):
    """One PNG of a segmentation run's qualitative gallery: a modality, the ``target`` or the
    ``prediction`` (of ``subset``) for test sample ``sample``; ``path`` is relative to the
    record's folder."""

    sample: int
    kind: str
    path: str
    subset: str = ""


class RunRecord(_Strict):
    """One run: what ran, on what, with which config and seed, and what it scored."""

    schema_version: Literal[1] = SCHEMA_VERSION
    run_id: str
    status: Literal["completed", "failed"]
    created: str
    task: TaskInfo
    dataset: DatasetInfo
    method: MethodInfo
    config: dict[str, Any]
    recipe: dict[str, Any]
    profile: str
    seed: int
    overrides: dict[str, str] | None = None
    """The request's ``--set`` options as given (a dependency's: those it inherited and those of
    the run that needed it); ``mmbench reproduce`` plans with them. ``None`` in older records."""
    pretrained: PretrainedInfo | None = None
    trained_modalities: list[str]
    subsets: list[str]
    metrics: dict[Literal["best", "last"], SubsetMetrics] = Field(default_factory=dict)
    val_metrics: SubsetMetrics = Field(default_factory=dict)
    selection: Selection | None = None
    curves: list[dict[str, Any]] = Field(default_factory=list)
    timings: Timings = Field(default_factory=Timings)
    resources: Resources | None = None
    provenance: Provenance
    failure: Failure | None = None
    distillation: DistillationInfo | None = None
    references: list[ReferenceResult] = Field(default_factory=list)
    dependencies: list[DependencyInfo] = Field(default_factory=list)
    gallery: list[GalleryImage] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)


def record_path(out: Path, task: str, method: str, run_id: str) -> Path:
    return Path(out) / task / method / f"{run_id}.json"


def write_record(path: Path, record: RunRecord) -> None:
    try:
        atomic_write_json(path, record.model_dump(mode="json"))
    except OSError as exc:
        raise describe_os_error(exc, Path(path).parent, "free some space or choose another --out.") from None


def read_record(path: Path) -> RunRecord:
    """Parse and validate one record; errors say which file and what is wrong."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise MMBenchError(f"{path} is not readable JSON: {exc}") from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise MMBenchError(f"{path} is not an mmbench run record (no schema_version).")
    version = data["schema_version"]
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise NewerSchemaError(
            f"{path} has schema_version {version}, newer than this mmbench reads ({SCHEMA_VERSION}); upgrade mmbench."
        )
    try:
        return RunRecord.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MMBenchError(f"{path} is not a valid run record: {where}: {first['msg']}.") from None
