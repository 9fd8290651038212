"""Resolve a (method, task, seed, --set options, profile) request into a fully specified run.

Everything that determines a result goes into :attr:`RunPlan.identity`, whose hash is the
content-addressed run id: task + version, dataset + revision, method + plugin version, the
versions of mmbench and of the task's and dataset's plugins (plus the source hash of file / module
/ editable plugins, so edited code never reuses an old record), the
**resolved** config (defaults filled in, the distillation setup resolved: ``--set teacher=ms``
and the default that resolves to ``ms`` are one run), recipe, profile and seed, and — when a
dependency (teacher) comes from edited code — the run ids of the dependencies. Same identity →
same run id → same record path.

A plan also lists the runs it depends on (:class:`Dependency`): planned here, before anything is
built, so ``--dry-run`` and ``mmbench sweep`` see them and run them first.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import mmbench
from mmbench.config import apply_overrides, split_overrides, to_jsonable
from mmbench.distillation import DistillationSetup, reference_roles, resolved_config
from mmbench.errors import MMBenchError
from mmbench.plugins import Registry
from mmbench.specs import (
    NETWORK_FIELDS,
    DatasetSpec,
    HubSource,
    MethodSpec,
    PluginInfo,
    Recipe,
    Reference,
    Subset,
    TaskSpec,
    subset_key,
)
from mmbench.weights import PretrainedWeights, pretrained_weights


@dataclass(frozen=True)
class Dependency:
    """A trained model a run needs: its role (``ctx.models[role]``) and the run that produces it."""

    role: str
    plan: RunPlan
    options: Mapping[str, str] = field(default_factory=dict)
    """The method options the dependent run asked for (without the inherited recipe options)."""
    reference: str | None = None
    """``"teacher"`` / ``"student"`` when it is one of the distillation protocol's references
    (reported next to the run as the TEACHER / STUDENT rows)."""


@dataclass(frozen=True)
class RunPlan:
    method: MethodSpec
    plugin: PluginInfo
    task: TaskSpec
    dataset: DatasetSpec
    config: Any
    recipe: Recipe
    profile: str
    seed: int
    revision: str
    revision_overridden: bool
    dataset_options: Mapping[str, str]
    """Every option of the dataset (:attr:`DatasetSpec.options`), given or default."""
    modalities: tuple[str, ...]
    trained_modalities: tuple[str, ...]
    subsets: tuple[Subset, ...]
    overrides: Mapping[str, str]
    distillation: DistillationSetup | None = None
    sources: Mapping[str, str] = field(default_factory=dict)
    """Source hashes of the plugins providing the method / task / dataset, where they have one."""
    pretrained: PretrainedWeights | None = None
    """The weights file the encoders start from (``recipe.pretrained``), resolved at planning."""
    versions: Mapping[str, str] = field(default_factory=dict)
    """mmbench's version and those of the plugins providing the task and the dataset (the
    method's is ``plugin.version``): a released install is identified by its versions."""
    dependencies: tuple[Dependency, ...] = ()
    """The trained models this run needs first (``MethodSpec.requires`` and, for a distillation
    method, the protocol's TEACHER / STUDENT references), each an ordinary run plan."""

    @property
    def identity(self) -> dict[str, Any]:
        return {
            "task": self.task.name,
            "task_version": self.task.version,
            "dataset": self.dataset.name,
            "revision": self.revision,
            **({"dataset_options": dict(self.dataset_options)} if self.dataset_options else {}),
            "method": self.method.name,
            "method_version": self.plugin.version,
            **({"versions": dict(self.versions)} if self.versions else {}),
            "config": to_jsonable(self.config),
            "recipe": asdict(self.recipe),
            "profile": self.profile,
            "seed": self.seed,
            **({"pretrained": {"name": self.pretrained.name, "sha256": self.pretrained.sha256}} if self.pretrained else {}),
            **({"sources": dict(self.sources)} if self.sources else {}),
            **({"dependencies": {d.role: d.plan.run_id for d in self.dependencies}} if self._edited_dependency else {}),
        }

    @property
    def _edited_dependency(self) -> bool:
        """A dependency comes from a file / module / editable plugin: its run id (which hashes
        that source) enters this run's identity, so an edited teacher never reuses a student's
        record. Released plugins keep version-only ids."""
        return any(p.sources for p in self.all_dependencies())

    @property
    def run_id(self) -> str:
        text = json.dumps(self.identity, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def subset_names(self) -> list[str]:
        return [subset_key(s) for s in self.subsets]

    def inherited_overrides(self) -> dict[str, str]:
        """The ``recipe.*`` / ``dataset.*`` options a dependency (teacher) run inherits."""
        return {k: v for k, v in self.overrides.items() if k.startswith(("recipe.", "dataset."))}

    def all_dependencies(self) -> list[RunPlan]:
        """Every run this one needs, transitively, dependencies before their dependents, each once."""
        ordered: dict[str, RunPlan] = {}
        for dependency in self.dependencies:
            for plan in [*dependency.plan.all_dependencies(), dependency.plan]:
                ordered.setdefault(plan.run_id, plan)
        return list(ordered.values())


def plan_run(
    registry: Registry,
    method_name: str,
    task_name: str,
    seed: int,
    overrides: Mapping[str, str] | None = None,
    profile: str = "smoke",
    _needed_by: tuple[str, ...] = (),
    _network_of: RunPlan | None = None,
) -> RunPlan:
    """Validate the request and resolve every default, dependencies included. Errors are one
    clear line. (``_needed_by`` / ``_network_of``: the chain and the run a dependency is planned for.)"""
    overrides = dict(overrides or {})
    if method_name in _needed_by:
        raise MMBenchError(f"dependency cycle: {' → '.join([*_needed_by, method_name])}; a method cannot need itself.")
    method = registry.method(method_name)
    task = registry.task(task_name)
    dataset = registry.dataset_of(task)
    if task.kind not in method.kinds:
        raise MMBenchError(
            f"method '{method.name}' supports {', '.join(sorted(method.kinds))} tasks; "
            f"'{task.name}' is a {task.kind} task. Pick a method listed for it in 'mmbench list'."
        )
    method_options, recipe_options, dataset_options = split_overrides(overrides)
    config = apply_overrides(method.config, None, method_options)
    recipe = apply_overrides(Recipe, task.recipe(profile).but(**method.recipe_for(task, profile)), recipe_options, prefix="recipe.")
    if _network_of is not None:  # a dependency is built on the network of the run that needs it (NETWORK_FIELDS)
        differing = {name: getattr(_network_of.recipe, name) for name in NETWORK_FIELDS
                     if getattr(recipe, name) != getattr(_network_of.recipe, name)}
        recipe = recipe.but(**differing)
        overrides.update({f"recipe.{name}": "none" if value is None else str(value) for name, value in differing.items()})
    if "revision" in dataset_options and not isinstance(dataset.source, HubSource):
        kind = {"generator": "generated locally", "local": "read from your own copy",
                "hub-files": "pinned to one revision per repository"}.get(
            dataset.source.kind, f"a {dataset.source.kind} dataset")
        raise MMBenchError(
            f"dataset.revision applies to single-repository hub datasets only; dataset '{dataset.name}' of task "
            f"'{task.name}' is {kind} (revision {dataset.revision}). Remove --set dataset.revision."
        )
    revision = dataset_options.pop("revision", dataset.revision)
    if recipe.selection == "paper" and task.val_split and task.val_split in dataset.splits:
        raise MMBenchError(f"recipe.selection=paper selects on the test split where a dataset has no validation split; "
                           f"task '{task.name}' has its own '{task.val_split}' split, on which the papers select too. "
                           "Remove the setting.")
    if recipe.selection_metric is not None and recipe.selection_metric not in task.metric_names:
        raise MMBenchError(f"recipe.selection_metric={recipe.selection_metric} is not a metric of task '{task.name}'; "
                           f"choose one of {', '.join(task.metric_names)}.")
    if recipe.class_weighting != "none" and task.kind != "segmentation":
        raise MMBenchError(f"recipe.class_weighting={recipe.class_weighting} weights the pixels of segmentation tasks; "
                           f"task '{task.name}' is {task.kind}. Remove the setting.")
    if recipe.resolution == "native" and (task.kind != "segmentation" or task.input_size is None):
        raise MMBenchError(f"recipe.resolution=native augments segmentation images from their decoded size; task "
                           f"'{task.name}' is {task.kind}. Remove the setting.")
    if recipe.face_augmentation and (task.kind == "segmentation" or task.input_size is None
                                     or task.input_size[0] != task.input_size[1]):
        raise MMBenchError(f"recipe.face_augmentation transforms square images of a classification task (labels stay "
                           f"as they are); task '{task.name}' is {task.kind} at {task.input_size}. Remove the setting.")
    pretrained = pretrained_weights(recipe.backbone, recipe.weights) if recipe.pretrained == "imagenet" else None
    resolved_dataset_options = dataset.resolve_options(dataset_options)
    modalities = task.modality_names(dataset)
    if len(modalities) < method.min_modalities:
        raise MMBenchError(
            f"method '{method.name}' needs at least {method.min_modalities} modalities; "
            f"task '{task.name}' has {len(modalities)} ({', '.join(modalities)})."
        )
    if method.check is not None:
        problem = method.check(modalities, config)
        if problem:
            raise MMBenchError(f"method '{method.name}' cannot run on task '{task.name}': {problem}")
    setup = method.distillation(task, modalities, config) if method.distillation is not None else None
    if setup is not None:
        config = resolved_config(config, setup)
    if method.resolve_config is not None:
        config = method.resolve_config(config)
    trained = method.trained_modalities(modalities, config) if method.trained_modalities else modalities
    protocol = task.protocol_subsets(dataset)
    subsets = method.deploy_subsets(protocol, tuple(trained), config) if method.deploy_subsets else protocol
    if setup is not None:  # the protocol: trained on teacher + student modalities, deployed on the students
        trained, subsets = setup.trained_modalities, setup.students
    if not subsets:
        raise MMBenchError(
            f"method '{method.name}' can serve none of task '{task.name}''s deployment subsets "
            f"({', '.join(subset_key(s) for s in protocol)})."
        )
    owners = {"method": registry.plugin_of("method", method.name), "task": registry.plugin_of("task", task.name),
              "dataset": registry.plugin_of("dataset", dataset.name)}
    sources = {role: info.source_hash for role, info in owners.items() if info.source_hash}
    versions = {"mmbench": mmbench.__version__, "task": owners["task"].version, "dataset": owners["dataset"].version}
    plan = RunPlan(
        method=method, plugin=owners["method"], task=task, dataset=dataset, sources=sources, versions=versions,
        config=config, recipe=recipe, profile=profile, seed=seed, revision=revision,
        revision_overridden="dataset.revision" in overrides,
        dataset_options=resolved_dataset_options, pretrained=pretrained, modalities=modalities,
        trained_modalities=tuple(trained), subsets=tuple(subsets), overrides=overrides, distillation=setup,
    )
    dependencies = _dependencies(registry, plan, (*_needed_by, method.name))
    return dataclasses.replace(plan, dependencies=dependencies) if dependencies else plan


def _dependencies(registry: Registry, plan: RunPlan, chain: tuple[str, ...]) -> tuple[Dependency, ...]:
    """Plan the runs ``plan`` needs: the protocol's references of a distillation method, then the
    method's own ``requires``. Each inherits the run's task, seed, profile and ``recipe.*`` /
    ``dataset.*`` options."""
    needs: dict[str, Any] = {}
    protocol = reference_roles(plan.distillation) if plan.distillation is not None else {}
    needs.update({key: Reference(role, modalities) for key, (role, modalities) in protocol.items()})  # type: ignore[arg-type]
    if plan.method.requires is not None:
        needs.update(plan.method.requires(plan.task, plan.modalities, plan.config))
    dependencies = []
    for role, need in needs.items():
        reference = None
        if isinstance(need, Reference):
            reference = need.role if role in protocol else None
            method, options = registry.reference(need.role, tuple(need.modalities))
        elif isinstance(need, tuple) and len(need) == 2 and isinstance(need[0], str):
            method, options = need[0], {str(k): str(v) for k, v in dict(need[1]).items()}
        else:
            raise MMBenchError(
                f"method '{plan.method.name}': requires() returned {need!r} for role '{role}'; use "
                "(method name, {option: value}) or mmbench.Reference(role, modalities)."
            )
        try:
            inherited = {**plan.inherited_overrides(), **options}
            dependency = plan_run(registry, method, plan.task.name, plan.seed, inherited, plan.profile, chain,
                                  _network_of=plan)
        except MMBenchError as exc:
            raise MMBenchError(f"method '{plan.method.name}' needs {method} as its {role}, which cannot run: {exc}") from None
        dependencies.append(Dependency(role=role, plan=dependency, options=options, reference=reference))
    return tuple(dependencies)
