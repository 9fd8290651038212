"""Building a run's method module from its plan: the method's ``build`` with the run context,
its ResNet encoders built with the recipe's stem and started from the plan's pretrained weights
as they are constructed, then ``recipe.he_init``."""

from __future__ import annotations

import contextlib

from mmbench.engine.context import RunContext
from mmbench.engine.module import MethodModule
from mmbench.errors import MMBenchError
from mmbench.plan import RunPlan


def build_method(plan: RunPlan, ctx: RunContext, pretrained: bool = True) -> MethodModule:
    """``plan.method``'s module for ``ctx``. With ``pretrained`` and ``plan.pretrained`` set, every
    ResNet encoder / trunk starts from those weights as it is built — before the method copies
    anything in (OS-MD's ordinary encoder from its pretrained unimodal model)."""
    from mmbench.models.backbones import encoder_stem
    from mmbench.models.init import he_initialisation
    from mmbench.models.pretrained import NO_ENCODER, imagenet_initialisation

    with contextlib.ExitStack() as stack:
        stack.enter_context(encoder_stem(plan.recipe.stem))
        initialised = None
        if pretrained and plan.pretrained is not None:
            initialised = stack.enter_context(imagenet_initialisation(plan.recipe.backbone, plan.pretrained))
        module = plan.method.builder()(plan.task, plan.config, ctx)
    if initialised is not None and not initialised:
        raise MMBenchError(NO_ENCODER)
    if not isinstance(module, MethodModule):
        raise MMBenchError(
            f"method '{plan.method.name}': build() must return an mmbench.engine.MethodModule, "
            f"got {type(module).__name__}."
        )
    if plan.recipe.he_init:
        he_initialisation(module, plan.task.num_classes)
    return module
