"""Building a run's method module from its plan: the method's ``build`` with the run context,
its ResNet encoders started from the plan's pretrained weights as they are constructed."""

from __future__ import annotations

from mmbench.engine.context import RunContext
from mmbench.engine.module import MethodModule
from mmbench.errors import MMBenchError
from mmbench.plan import RunPlan


def build_method(plan: RunPlan, ctx: RunContext, pretrained: bool = True) -> MethodModule:
    """``plan.method``'s module for ``ctx``. With ``pretrained`` and ``plan.pretrained`` set, every
    ResNet encoder / trunk starts from those weights as it is built — before the method copies
    anything in (OS-MD's ordinary encoder from its pretrained unimodal model)."""
    if not pretrained or plan.pretrained is None:
        module = plan.method.builder()(plan.task, plan.config, ctx)
    else:
        from mmbench.models.pretrained import NO_ENCODER, imagenet_initialisation

        with imagenet_initialisation(plan.recipe.backbone, plan.pretrained) as initialised:
            module = plan.method.builder()(plan.task, plan.config, ctx)
        if not initialised:
            raise MMBenchError(NO_ENCODER)
    if not isinstance(module, MethodModule):
        raise MMBenchError(
            f"method '{plan.method.name}': build() must return an mmbench.engine.MethodModule, "
            f"got {type(module).__name__}."
        )
    return module
