"""ImageNet initialisation of the core ResNet encoders (``recipe.pretrained=imagenet``).

The weights are torchvision's ``IMAGENET1K_V1`` of ResNet-18 / 34 / 50 — what ESANet's and
MMANet's official segmentation code load — or a user's file (``recipe.weights``: ESANet's
``r34_NBt1D.pth`` for ``resnet34-nbt1d``, a checkpoint whose ``state_dict`` holds the ResNet under
``encoder.``, read as the official ``load_pretrained_with_different_encoder_block`` does),
resolved by :mod:`mmbench.weights` (sha256 recorded). Keys are matched strictly:
every parameter and buffer of an encoder must be in the file with its shape (``fc`` and the
stages an encoder does not keep are the only keys left out).

A modality with other than 3 input channels gets the RGB ``conv1`` summed over its input channels
and repeated for each of its channels — ESANet's ``ResNet`` for depth (``src/models/resnet.py``,
``conv1.weight.sum(dim=1, keepdim=True)``), which MMANet's fork keeps. A 3-channel modality
takes ``conv1`` as is. :class:`~mmbench.models.backbones.ResNetTrunk` (the later stages a
mid-fusion network shares) takes the same stages' weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from mmbench.errors import MMBenchError
from mmbench.models.backbones import ON_BUILT, ResNetEncoder, ResNetTrunk
from mmbench.weights import PretrainedWeights, imagenet_weights

__all__ = ["imagenet_initialisation", "initialise_from_imagenet"]


def _load(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise MMBenchError(f"{path} is not a readable PyTorch state dict ({type(exc).__name__}); delete it and "
                           "download it again.") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a training checkpoint, as ESANet's ImageNet files
    if not isinstance(state, dict):
        raise MMBenchError(f"{path} holds a {type(state).__name__}, not a state dict; delete it and download it again.")
    if any("encoder." in key for key in state):  # ESANet's files: the ResNet under ``encoder.``, then ``fc``
        state = {key.split("encoder.")[-1]: value for key, value in state.items() if "encoder." in key}
    return state


def _adapt_conv1(weight: torch.Tensor, channels: int) -> torch.Tensor:
    if channels == weight.shape[1]:
        return weight
    return weight.sum(dim=1, keepdim=True).repeat(1, channels, 1, 1)


def _expected(module: nn.Module, source: dict[str, torch.Tensor], rename: dict[str, str], where: str) -> dict[str, torch.Tensor]:
    """``module``'s state dict filled from ``source`` (keys renamed by prefix), strictly."""
    state = {}
    for key, value in module.state_dict().items():
        source_key = next((new + key[len(old):] for old, new in rename.items() if key.startswith(old)), key)
        if source_key not in source and key.endswith("num_batches_tracked"):
            continue  # torchvision's V1 files predate this buffer; BatchNorm fills it in on load
        if source_key not in source:
            raise MMBenchError(f"the ImageNet weights lack {source_key} needed by {where}; the file does not match the "
                               "backbone (recipe.backbone).")
        tensor = source[source_key]
        if key == "conv1.weight":
            tensor = _adapt_conv1(tensor, value.shape[1])
        if tuple(tensor.shape) != tuple(value.shape):
            raise MMBenchError(f"{where}: {key} has shape {tuple(value.shape)}, the ImageNet weights "
                               f"{tuple(tensor.shape)} (pretrained weights need the standard network: width 64, "
                               "inputs of at least 96 px for the ImageNet stem).")
        state[key] = tensor
    return state


def _initialise(module: nn.Module, source: dict[str, torch.Tensor], arch: str, where: str) -> bool:
    """Load ``source`` into ``module`` if it is a ResNet encoder or trunk; False otherwise."""
    if isinstance(module, ResNetEncoder):
        rename: dict[str, str] = {}
    elif isinstance(module, ResNetTrunk):
        rename = {f"stages.{i}.": f"layer{module.first_stage + i + 1}." for i in range(len(module.stages))}
    else:
        return False
    if getattr(module, "arch", arch) != arch:
        raise MMBenchError(f"{where} is a {module.arch}, the weights are {arch}'s.")
    module.load_state_dict(_expected(module, source, rename, where), strict=True)
    return True


NO_ENCODER = ("recipe.pretrained=imagenet, but this method's network has no ResNet encoder to initialise; use "
              "recipe.pretrained=none.")


def initialise_from_imagenet(model: nn.Module, arch: str, weights: PretrainedWeights | None = None) -> list[str]:
    """Load the ImageNet weights of ``arch`` into every ResNet encoder and trunk of ``model``;
    returns the names of the modules initialised (an error when there is none)."""
    source = _load((weights or imagenet_weights(arch)).path)
    done = [name for name, module in model.named_modules() if _initialise(module, source, arch, name or "the model")]
    if not done:
        raise MMBenchError(NO_ENCODER)
    return done


@contextmanager
def imagenet_initialisation(arch: str, weights: PretrainedWeights | None = None) -> Iterator[list[str]]:
    """Every ResNet encoder and trunk constructed inside starts from the ImageNet weights of
    ``arch`` (yields the list of their classes, filled as they are built). A method's ``build``
    runs inside it, so weights a method copies in afterwards — OS-MD's ordinary encoder from its
    pretrained unimodal model — are not overwritten."""
    source = _load((weights or imagenet_weights(arch)).path)
    done: list[str] = []

    def initialise(module: nn.Module) -> None:
        if _initialise(module, source, arch, f"a {type(module).__name__}"):
            done.append(type(module).__name__)

    token = ON_BUILT.set(initialise)
    try:
        yield done
    finally:
        ON_BUILT.reset(token)
