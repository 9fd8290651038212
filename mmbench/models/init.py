"""ESANet's He initialisation of the layers outside the encoders (``--he_init``).

TUI-NICR/ESANet ``src/build_model.py`` (kept by the MMANet fork, whose Cityscapes scripts pass
it): over the modules of every child that is not an ImageNet-initialised ResNet, in definition
order, each ``Conv2d`` / ``Conv1d`` / ``Linear`` is re-initialised He-normal (``fan_out``, ReLU)
unless it outputs the classes, is followed by a ``Sigmoid`` (the SE gates) or is depthwise (the
learned upsampling), and each ``BatchNorm2d`` / ``GroupNorm`` is set to weight 1, bias 0.

mmbench skips every ResNet encoder and trunk whether or not it is pretrained (from scratch they
already start He-normal, fan-out, as torchvision's) and every frozen layer (a dependency a method
holds, e.g. a teacher), so weights a method copied in at build time stay as they are.
"""

from __future__ import annotations

from torch import nn

from mmbench.models.backbones import ResNetEncoder, ResNetTrunk


def he_initialisation(model: nn.Module, num_classes: int) -> int:
    """Apply the rule above to ``model``; returns the number of layers re-initialised."""
    inside_encoder = {id(m) for encoder in model.modules() if isinstance(encoder, ResNetEncoder | ResNetTrunk)
                      for m in encoder.modules()}
    layers = [m for m in model.modules() if id(m) not in inside_encoder]
    count = 0
    for index, layer in enumerate(layers):
        parameters = list(layer.parameters(recurse=False))
        if not parameters or not all(p.requires_grad for p in parameters):
            continue
        if isinstance(layer, nn.Conv2d | nn.Conv1d | nn.Linear):
            conv = not isinstance(layer, nn.Linear)
            outputs = layer.out_channels if conv else layer.out_features
            gate = index + 1 < len(layers) and isinstance(layers[index + 1], nn.Sigmoid)
            depthwise = conv and layer.groups == layer.in_channels
            if outputs == num_classes or gate or depthwise:
                continue
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            count += 1
        elif isinstance(layer, nn.BatchNorm2d | nn.GroupNorm):
            nn.init.constant_(layer.weight, 1.0)
            nn.init.constant_(layer.bias, 0.0)
            count += 1
    return count
