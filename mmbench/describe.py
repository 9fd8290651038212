"""One method, task or dataset in full, for ``mmbench list methods NAME`` (and tasks, datasets):
a method's options with their type, default and documentation, a task's protocol and recipes, a
dataset's source. Never imports torch.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import typing
from typing import Any

from mmbench.specs import DatasetSpec, MethodSpec, PluginInfo, ProfileRecipe, TaskSpec, subset_key


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    text = str(annotation).replace("typing.", "")
    return text.replace("NoneType", "None")


def option_docs(config: type) -> dict[str, str]:
    """Each field's documentation: the string literal right after it in the class body, else the
    comment at the end of its line (base classes first, so subclasses override)."""
    docs: dict[str, str] = {}
    for cls in reversed(config.__mro__):
        if not dataclasses.is_dataclass(cls):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(cls))
        except (OSError, TypeError):
            continue
        lines = source.splitlines()
        body = ast.parse(source).body[0]
        if not isinstance(body, ast.ClassDef):
            continue
        for index, node in enumerate(body.body):
            if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
                continue
            following = body.body[index + 1] if index + 1 < len(body.body) else None
            if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant) \
                    and isinstance(following.value.value, str):
                docs[node.target.id] = " ".join(following.value.value.split())
            elif "#" in lines[node.lineno - 1]:
                docs[node.target.id] = lines[node.lineno - 1].split("#", 1)[1].strip()
    return docs


def method_options(spec: MethodSpec) -> list[dict[str, str]]:
    """``[{name, type, default, doc}]`` of the method's ``--set`` options."""
    try:
        hints = typing.get_type_hints(spec.config)
    except Exception:  # an annotation that does not resolve: show it as written
        hints = {}
    docs = option_docs(spec.config)
    options = []
    for field in dataclasses.fields(spec.config):
        default = field.default if field.default is not dataclasses.MISSING else (
            field.default_factory() if field.default_factory is not dataclasses.MISSING else "(required)")
        options.append({"name": field.name, "type": _type_name(hints.get(field.name, field.type)),
                        "default": repr(default) if isinstance(default, str) else str(default),
                        "doc": docs.get(field.name, "")})
    return options


def describe_method(spec: MethodSpec, plugin: PluginInfo) -> tuple[dict[str, Any], list[dict[str, str]]]:
    facts = {"name": spec.name, "description": spec.description, "family": spec.family,
             "kinds": sorted(spec.kinds or ()), "paper": spec.paper or "-", "code": spec.repo or "-",
             "plugin": f"{plugin.name} ({plugin.distribution} {plugin.version})",
             "minimum modalities": spec.min_modalities,
             "distillation": "teacher → student, resolved per task" if spec.distillation else "no",
             "needs": _needs(spec),
             "serves as": "the distillation protocol's TEACHER / STUDENT reference" if spec.reference else "-",
             "recipe fields it fixes": _fixed_recipe(spec)}
    return facts, method_options(spec)


def _fixed_recipe(spec: MethodSpec) -> str:
    """``MethodSpec.recipe`` in words."""
    recipe = spec.recipe
    if isinstance(recipe, ProfileRecipe):
        fields = ", ".join(f"{k}={v}" for k, v in recipe.fields.items())
        return f"{fields} (the {recipe.profile} profile" + (f" of {recipe.kind} tasks)" if recipe.kind else ")")
    if callable(recipe):
        return "per task and profile (see mmbench run --dry-run)"
    return ", ".join(f"{k}={v}" for k, v in recipe.items()) or "-"


def _needs(spec: MethodSpec) -> str:
    """The trained models a method depends on, in words (``mmbench run --dry-run`` lists them)."""
    needs = []
    if spec.distillation is not None:
        needs.append("the protocol's TEACHER / STUDENT references")
    if spec.requires is not None:
        needs.append("the trained models it declares (requires)")
    return " and ".join(needs) + ", trained first (see mmbench run --dry-run)" if needs else "-"


def describe_task(task: TaskSpec, registry: Any) -> tuple[dict[str, Any], list[dict[str, str]]]:
    dataset = registry.dataset_of(task)
    facts = {"name": task.name, "description": task.description, "kind": task.kind, "version": task.version,
             "dataset": f"{dataset.name} @ {dataset.revision}", "modalities": list(task.modality_names(dataset)),
             "classes": task.num_classes, "input size (H, W)": task.input_size or "as decoded",
             "metrics": list(task.metric_names), "primary metric": f"{task.primary} "
             f"({'higher' if task.higher_is_better else 'lower'} is better)",
             "deployment subsets": [subset_key(s) for s in task.protocol_subsets(dataset)],
             "splits": f"train={task.train_split}, val={task.val_split or f'carved {task.val_fraction:.0%} of train'}, "
                       f"test={task.test_split}"}
    recipes = [{"profile": profile, **{k: str(v) for k, v in dataclasses.asdict(recipe).items()}}
               for profile, recipe in task.recipes.items()]
    return facts, recipes


def describe_dataset(spec: DatasetSpec) -> tuple[dict[str, Any], list[dict[str, str]]]:
    where = getattr(spec.source, "repo", None) or getattr(spec.source, "subdir", None) or ""
    facts = {"name": spec.name, "description": spec.description, "modalities": dict(spec.modalities),
             "source": f"{spec.source.kind} {where}".strip(), "revision": spec.revision, "splits": list(spec.splits),
             "license": spec.license or "-", "homepage": spec.homepage or "-"}
    if spec.options:
        facts["options"] = {f"dataset.{name}": f"{values[0]} (default); " + ", ".join(values[1:]) if len(values) > 1
                            else values[0] for name, values in spec.options.items()}
    how = getattr(spec.source, "how_to_get", None)
    if how:
        facts["how to get it"] = how
    return facts, []
