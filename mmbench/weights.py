"""Which pretrained weights a run starts from, resolved before anything is built (no torch import):
torchvision's ``IMAGENET1K_V1`` files of ResNet-18 / 34 / 50 in torch's hub cache
(``$TORCH_HOME/hub/checkpoints``), downloaded there when the network is allowed (never with
``HF_HUB_OFFLINE=1`` or ``MMBENCH_OFFLINE=1``). The file's sha256 enters the run id and the record,
so a run never silently starts from other weights. Loading them into a network is
:mod:`mmbench.models.pretrained`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from mmbench.errors import MMBenchError
from mmbench.files import mmbench_home

IMAGENET: dict[str, tuple[str, str]] = {
    "resnet18": ("ResNet18_Weights.IMAGENET1K_V1", "https://download.pytorch.org/models/resnet18-f37072fd.pth"),
    "resnet34": ("ResNet34_Weights.IMAGENET1K_V1", "https://download.pytorch.org/models/resnet34-b627a593.pth"),
    "resnet50": ("ResNet50_Weights.IMAGENET1K_V1", "https://download.pytorch.org/models/resnet50-0676ba61.pth"),
}
"""torchvision's weights enum name and file URL per backbone (a test checks them against torchvision)."""

USER_FILE_ONLY: dict[str, tuple[str, str]] = {
    "resnet34-nbt1d": ("r34_NBt1D.pth", "ESANet's r34_NBt1D.pth (imagenet_r34_NBt1D.tar.gz, linked in the "
                                        "TUI-NICR/ESANet README under Training)"),
}
"""Backbones whose ImageNet weights only their authors distribute: (file name, where it comes from).
Found at ``recipe.weights=PATH``, else at :func:`user_weights_dir` ``/ <file name>``."""


def user_weights_dir() -> Path:
    """Where author-distributed weights files are looked for when ``recipe.weights`` is not
    given: ``$MMBENCH_HOME/weights`` (so a sweep over several methods needs no per-run path)."""
    return mmbench_home() / "weights"


@dataclass(frozen=True)
class PretrainedWeights:
    """A weights file: torchvision's name of it, where it is and its sha256."""

    name: str
    path: Path
    sha256: str


def hub_checkpoints() -> Path:
    """torch's ``hub.get_dir()/checkpoints``, computed as torch does (``$TORCH_HOME`` or
    ``$XDG_CACHE_HOME/torch``, else ``~/.cache/torch``)."""
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(home).expanduser() / "hub" / "checkpoints"


def offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes") for v in ("MMBENCH_OFFLINE", "HF_HUB_OFFLINE"))


@lru_cache(maxsize=8)
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, path: Path) -> None:
    from torch.hub import download_url_to_file

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        download_url_to_file(url, str(path), hash_prefix=path.stem.rsplit("-", 1)[-1], progress=False)
    except Exception:  # no network, a proxy, a bad download: the caller's message says what to do
        path.unlink(missing_ok=True)


def _described(name: str, path: Path) -> PretrainedWeights:
    stat = path.stat()
    return PretrainedWeights(name, path, _sha256(path, stat.st_size, stat.st_mtime_ns))


def pretrained_weights(arch: str, weights: str | None = None) -> PretrainedWeights:
    """The weights ``recipe.pretrained=imagenet`` starts ``arch`` from: the file ``weights``
    (``recipe.weights``) when given, else torchvision's (:func:`imagenet_weights`)."""
    if weights is None:
        if arch in USER_FILE_ONLY:
            name, origin = USER_FILE_ONLY[arch]
            default = user_weights_dir() / name
            if default.is_file():
                return _described(f"{arch} ImageNet weights from {name}", default.resolve())
            raise MMBenchError(f"{arch} has no ImageNet weights in torchvision: download {origin} and put it at "
                               f"{default} or pass --set recipe.weights=PATH/{name}, or use recipe.backbone=resnet34 "
                               "(torchvision's ImageNet ResNet-34).")
        return imagenet_weights(arch)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise MMBenchError(f"recipe.weights={weights}: no such file; give the path of the ImageNet weights of {arch}.")
    return _described(f"{arch} ImageNet weights from {path.name}", path.resolve())


def imagenet_weights(arch: str) -> PretrainedWeights:
    """The ImageNet weights file of ``arch``; a missing file (after a download attempt when
    allowed) is one line naming it and where it goes."""
    if arch not in IMAGENET:
        raise MMBenchError(f"torchvision has no ImageNet weights for backbone '{arch}' (it has for "
                           f"{', '.join(IMAGENET)}); pass recipe.weights=PATH or use recipe.pretrained=none.")
    name, url = IMAGENET[arch]
    path = hub_checkpoints() / Path(url).name
    if not path.is_file() and not offline():
        _download(url, path)
    if not path.is_file():
        raise MMBenchError(f"the ImageNet weights of {arch} ({name}) are not at {path}; download {url} into "
                           f"{path.parent} (or set TORCH_HOME), or use recipe.pretrained=none.")
    return _described(name, path)
