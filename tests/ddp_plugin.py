"""A method without batch statistics (no BatchNorm, no batch-relation loss) for the distributed
test: with it, a 2-process run must reproduce a single-process run with the same global batch."""

from mmbench import MethodSpec, hookimpl


def build(task, config, ctx):
    import torch
    from torch import nn

    from mmbench.engine import MethodModule
    from mmbench.models import task_loss

    class ConvNoBN(MethodModule):
        def __init__(self):
            super().__init__()
            self.encoders = nn.ModuleDict({m: nn.Sequential(nn.Conv2d(ctx.shapes[m][0], 8, 3, padding=1), nn.ReLU())
                                           for m in ctx.modalities})
            self.head = nn.Linear(8 * len(ctx.modalities), task.num_classes)

        def logits(self, batch, present):
            parts = [self.encoders[m](batch[m]).mean(dim=(2, 3)) if m in present
                     else torch.zeros(len(batch["target"]), 8) for m in ctx.modalities]
            return self.head(torch.cat(parts, dim=1))

        def training_step(self, batch, step):
            return {"ce": task_loss(task, self.logits(batch, ctx.modalities), batch["target"])}

        def predict(self, batch, modalities):
            return self.logits(batch, modalities)

    return ConvNoBN()


@hookimpl
def mmbench_methods():
    return [MethodSpec(name="conv-nobn", description="one conv layer per modality, no BatchNorm", build=build,
                       kinds=frozenset({"classification", "anti-spoofing"}))]
