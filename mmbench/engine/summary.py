"""The network a run would build, without data or training (``mmbench run --dry-run``): each
network — the run's and those of the runs it depends on — built untrained from the specs (modality
channels and the recipe's input size), with its parameters per module, input shapes and the
pretrained weights it would start from (name, sha256)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from mmbench.data.cache import scaled_input_size
from mmbench.engine.build import build_method
from mmbench.engine.context import RunContext
from mmbench.engine.trained import TrainedModel
from mmbench.plan import RunPlan
from mmbench.weights import PretrainedWeights


@dataclass(frozen=True)
class ModuleRow:
    """A module of the network: its dotted name, class and parameter count (its children's included)."""

    name: str
    kind: str
    parameters: int


@dataclass(frozen=True)
class NetworkSummary:
    role: str
    """``run``, or the role of a dependency (``teacher``, ...)."""
    method: str
    run_id: str
    inputs: dict[str, tuple[int, ...]]
    backbone: str
    decoder: str
    context: str
    pretrained: PretrainedWeights | None
    rows: list[ModuleRow]
    parameters: int


def spec_shapes(plan: RunPlan) -> dict[str, tuple[int, ...]]:
    """Per-sample input shapes from the specs: ``[C, H, W]`` at the recipe's input size
    (``[D]`` for vector datasets, which declare no input size)."""
    channels = plan.dataset.modalities
    if plan.task.input_size is None:
        return {m: (int(channels[m]),) for m in plan.modalities}
    size = scaled_input_size(plan.task, plan.recipe.input_scale)
    return {m: (int(channels[m]), *size) for m in plan.modalities}


def _expand(module: nn.Module, depth: int) -> bool:
    """List a module's children too: the first two levels, and the entries of a ModuleDict
    (one encoder per modality)."""
    return depth < 2 or isinstance(module, nn.ModuleDict)


def module_rows(module: nn.Module) -> list[ModuleRow]:
    """The named modules of ``module`` with parameters, two levels deep (ModuleDict entries
    one level more), in definition order."""

    def walk(parent: nn.Module, prefix: str, depth: int) -> Iterator[ModuleRow]:
        for name, child in parent.named_children():
            count = sum(p.numel() for p in child.parameters())
            if count == 0:
                continue
            dotted = f"{prefix}{name}"
            yield ModuleRow(dotted, type(child).__name__, count)
            if _expand(child, depth) and any(True for _ in child.children()):
                yield from walk(child, dotted + ".", depth + 1)

    return list(walk(module, "", 1))


def build_untrained(plan: RunPlan, built: dict[str, nn.Module] | None = None, pretrained: bool = False) -> nn.Module:
    """``plan``'s method module built from the specs, its dependencies built untrained (by run id
    in ``built``) and handed over as trained models are; ``pretrained``: its encoders start from
    the plan's pretrained weights, as in a run."""
    built = {} if built is None else built
    models = {}
    for dependency in plan.dependencies:
        dep = dependency.plan
        if dep.run_id not in built:
            built[dep.run_id] = build_untrained(dep, built)
        models[dependency.role] = TrainedModel(built[dep.run_id], dep.method.name, dep.run_id, dep.trained_modalities)
    ctx = RunContext(task=plan.task, dataset=plan.dataset, recipe=plan.recipe, profile=plan.profile, seed=plan.seed,
                     device=torch.device("cpu"), modalities=plan.modalities, shapes=spec_shapes(plan),
                     subsets=plan.subsets, revision=plan.revision, distillation=plan.distillation, models=models,
                     _validation=lambda: iter(()))
    return build_method(plan, ctx, pretrained)


def network_summaries(plan: RunPlan) -> list[NetworkSummary]:
    """The networks ``plan`` builds, its dependencies' first (each once), untrained."""
    built: dict[str, nn.Module] = {}
    roles = {d.plan.run_id: d.role for p in [*plan.all_dependencies(), plan] for d in p.dependencies}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        built[plan.run_id] = build_untrained(plan, built)  # its dependencies first, into ``built``
    summaries = []
    for each in [*plan.all_dependencies(), plan]:
        module = built[each.run_id]
        summaries.append(NetworkSummary(
            role=roles.get(each.run_id, "run") if each is not plan else "run", method=each.method.name,
            run_id=each.run_id, inputs=spec_shapes(each), backbone=each.recipe.backbone, decoder=each.recipe.decoder,
            context=each.recipe.context, pretrained=each.pretrained, rows=module_rows(module),
            parameters=sum(p.numel() for p in module.parameters()),
        ))
    return summaries
