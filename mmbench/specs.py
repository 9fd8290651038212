"""The plain-data specs that plugins register: datasets, tasks, methods and training recipes.

Specs are frozen dataclasses with no torch import, so registering hundreds of them stays cheap
(``mmbench list`` never imports torch). Heavy work happens in the callables they hold
(``MethodSpec.build``, ``DatasetSpec.decode``, ``GeneratorSource.generate``), which import what they
need when called.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from mmbench.errors import MMBenchError, echo

TaskKind = Literal["classification", "segmentation", "anti-spoofing"]
TASK_KINDS: tuple[str, ...] = ("classification", "segmentation", "anti-spoofing")
METHOD_FAMILIES: tuple[str, ...] = ("baseline", "incomplete", "distillation")
ALL_KINDS: frozenset[str] = frozenset(TASK_KINDS)
"""``MethodSpec(kinds=ALL_KINDS)`` for a method that supports every task kind."""

BACKBONES: tuple[str, ...] = ("resnet18", "resnet34", "resnet50", "resnet34-nbt1d")
"""The core encoders (``recipe.backbone``), see :func:`mmbench.models.build_encoder`
(``resnet34-nbt1d``: ESANet's ResNet-34 with Non-Bottleneck-1D blocks)."""
SEGMENTATION_DECODERS: tuple[str, ...] = ("light", "esanet")
"""``recipe.decoder``, see :class:`mmbench.models.ESANetwork`."""
CONTEXT_MODULES: tuple[str, ...] = ("ppm", "ppm-1-2-4-8", "appm", "appm-1-2-4-8", "none")
"""``recipe.context``: ESANet's context modules, see :mod:`mmbench.models.esanet_decoder`."""

Subset = tuple[str, ...]
"""A deployment subset: the modalities present at test time, in the task's modality order."""

#: Metric name -> True when higher is better. Metrics computed by :mod:`mmbench.metrics`.
METRIC_DIRECTIONS: dict[str, bool] = {
    "accuracy": True,
    "macro_f1": True,
    "weighted_f1": True,
    "miou": True,
    "pixel_accuracy": True,
    "acer": False,
    "apcer": False,
    "bpcer": False,
}

DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "macro_f1", "weighted_f1"),
    "segmentation": ("miou", "pixel_accuracy"),
    "anti-spoofing": ("acer", "apcer", "bpcer", "accuracy"),
}


NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
"""Method, task and dataset names: they become folder and file names (``<out>/<task>/<method>/``)."""


def check_name(kind: str, name: object) -> None:
    """A registered name must be a safe slug: letters, digits, ``-``, ``_``, ``.``, at most 100
    characters, starting with a letter or digit (so ``../x`` can never escape ``--out``)."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise MMBenchError(
            f"{kind} name {echo(name)} is not allowed: use letters, digits, '-', '_' and '.', starting with a "
            "letter or digit, at most 100 characters."
        )


MODALITY_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,49}")
RESERVED_MODALITY_NAMES = frozenset({"target", "index", "extent", "mean"})
"""Not modality names: batches hold ``target`` and ``index`` beside the modalities, native caches
an ``extent`` array, and result tables a ``mean`` column."""


def check_modality(owner: str, name: object) -> None:
    """A modality name is identifier-like (it names files, batch keys and, joined by ``+``, subsets)
    and not reserved; ``owner`` says where it was declared (``dataset 'x'``)."""
    if not isinstance(name, str) or not MODALITY_PATTERN.fullmatch(name):
        raise MMBenchError(f"{owner}: modality name {echo(name)} is not allowed: use letters, digits and '_', starting "
                           "with a letter, at most 50 characters (e.g. 'rgb', 'depth'); '+' joins modalities into "
                           "subsets.")
    if name in RESERVED_MODALITY_NAMES:
        raise MMBenchError(f"{owner}: modality name '{name}' is reserved ({', '.join(sorted(RESERVED_MODALITY_NAMES))} "
                           "name batch entries and table columns); rename the modality.")


def subset_key(subset: Sequence[str]) -> str:
    """``("rgb", "depth") -> "rgb+depth"``: the name of a subset in records and tables."""
    return "+".join(subset)


def parse_subset(text: str, modalities: Sequence[str]) -> Subset:
    """Parse ``"rgb+depth"`` into a subset ordered as ``modalities``; error on unknown names."""
    names = [part.strip() for part in text.replace(",", "+").split("+") if part.strip()]
    unknown = [n for n in names if n not in modalities]
    if not names or unknown:
        raise MMBenchError(
            f"invalid modality set '{text}': {'unknown ' + ', '.join(unknown) if unknown else 'empty'}; "
            f"use names from {', '.join(modalities)} joined by '+', e.g. '{'+'.join(modalities)}'."
        )
    return tuple(m for m in modalities if m in names)


def all_subsets(modalities: Sequence[str]) -> tuple[Subset, ...]:
    """Every non-empty subset, largest first, as the seed papers' tables list them."""
    subsets = [
        combo
        for size in range(len(modalities), 0, -1)
        for combo in itertools.combinations(modalities, size)
    ]
    return tuple(subsets)


# ---------------------------------------------------------------------------------------------
# Training recipe


@dataclass(frozen=True)
class Recipe:
    """How a task is trained: optimisation, schedule, batch sizes, backbone size and data limits.

    A task declares one recipe per profile (``smoke`` must run on a 2-core CPU in minutes, ``full``
    is the published protocol). Users override any field with ``--set recipe.<field>=<value>``.
    """

    epochs: int = 10
    batch_size: int = 64
    eval_batch_size: int = 256
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    scheduler: Literal["none", "step", "multistep", "cosine", "onecycle"] = "cosine"
    step_size: int = 30
    gamma: float = 0.1
    milestones: tuple[int, ...] = ()
    """``scheduler=multistep``: the epochs, counted after the warm-up, from which the learning rate
    is multiplied by ``gamma`` once more (the MMANet classification code's ``MultiStepLR`` behind
    its ``GradualWarmupScheduler``: ``16,33,50``)."""
    warmup_epochs: int = 0
    warmup_from_zero: bool = False
    """The linear warm-up's first epoch (step) at a rate of 0, the full rate reached after
    ``warmup_epochs`` more — the MMANet face code's ``GradualWarmupScheduler(multiplier=1)``
    (``lr = base · e / total_epoch`` from e = 0); default: ``(e + 1) / warmup_epochs``, the full
    rate at the last warm-up epoch."""
    scheduler_interval: Literal["step", "epoch"] = "step"
    """How often the learning-rate schedule advances: every optimisation ``step``, or once per
    ``epoch`` — ESANet's and the MMANet fork's one-cycle (``total_steps = epochs``, stepped at each
    epoch) and the MMANet face code's warm-up + multi-step; a linear warm-up then rises per epoch."""
    grad_clip: float | None = None
    backbone: str = "resnet18"
    width: int = 64
    stem: Literal["auto", "imagenet", "small", "3x3"] = "auto"
    """Every ResNet encoder's stem: ``imagenet`` 7×7 stride-2 conv + max-pool, ``small`` 3×3
    stride-2 conv without max-pool, ``3x3`` 3×3 stride-2 conv + max-pool (the CASIA-SURF baseline
    ResNet-18 of the MMANet face code); ``auto``: ``small`` below 96 px, else ``imagenet``."""
    he_init: bool = False
    """ESANet's ``--he_init`` (its and the MMANet fork's Cityscapes scripts): every trainable
    convolution and linear layer outside the ResNet encoders starts He-normal (fan-out, ReLU) and
    every BatchNorm at 1 / 0 — except the class-output layers, the layers before a sigmoid (the SE
    gates) and depthwise convolutions (the learned upsampling)."""
    pretrained: Literal["none", "imagenet"] = "none"
    """``imagenet``: every ResNet encoder starts from torchvision's ``IMAGENET1K_V1`` weights of
    ``backbone`` (a modality of other than 3 channels gets the RGB ``conv1`` summed over its input
    channels, as ESANet's official code initialises depth); ``none``: from scratch."""
    weights: str | None = None
    """With ``pretrained=imagenet``: the ImageNet weights file to start from instead of
    torchvision's (a state dict or a checkpoint with one under ``state_dict``, keys optionally
    prefixed ``encoder.``); ``resnet34-nbt1d`` needs it — ESANet's ``r34_NBt1D.pth`` from the
    TUI-NICR/ESANet README (``imagenet_r34_NBt1D.tar.gz``). Its sha256 is recorded."""
    decoder: str = "light"
    """Segmentation networks built on :class:`mmbench.models.ESANetwork` (``esanet``, MMANet,
    OS-MD): ``esanet`` = ESANet's decoder with deep supervision (the full profiles), ``light`` =
    the CPU-sized FPN decoder (the smoke profiles)."""
    context: str = "ppm"
    """ESANet's context module with ``decoder=esanet``: ``ppm`` (NYUv2, SUN RGB-D),
    ``appm-1-2-4-8`` (Cityscapes), ``ppm-1-2-4-8``, ``appm`` or ``none``."""
    class_weighting: Literal["none", "median-frequency"] = "none"
    """Segmentation: ``median-frequency`` weights each class's cross-entropy by median(f) / f_c,
    f_c = pixels of class c / pixels of the training images that contain c, computed once on the
    training samples (ESANet's ``compute_class_weights``, used by its and the MMANet fork's NYUv2 /
    SUN RGB-D training); ``none``: unweighted (Cityscapes)."""
    scale_range: tuple[float, ...] = ()
    """ESANet's random rescale + crop: each training sample zoomed by s ~ U[lo, hi] and cropped back
    to the input size at a random offset (``1.0,1.4`` for NYUv2 / SUN RGB-D); empty: off."""
    resolution: Literal["input", "native"] = "input"
    """What the training samples are augmented from and the test labels scored at (segmentation).
    ``input``: the samples resized to the task's input size; ``scale_range`` zooms relative to it.
    ``native``: the samples as decoded (:mod:`mmbench.data.native`) — ``scale_range`` zooms each
    relative to its own size and the crop takes it to the input size, as ESANet's
    ``RandomRescale`` + ``RandomCrop`` (which resizes instead when the zoomed image is not larger);
    test inputs stay resized to the input size and each prediction is resized (bilinear logits) to
    its label as decoded, as ESANet's and the MMANet fork's ``label_orig`` evaluation. Cityscapes
    (2048×1024) and SUN RGB-D (sizes vary) full recipes; NYUv2 is decoded at its input size."""
    face_augmentation: tuple[int, ...] = ()
    """``RESIZE,MAX_ANGLE``: the MMANet face code's training geometry — the training split cached at
    RESIZE×RESIZE (its resize of each image as read), each sample rotated by an integer angle in
    ±MAX_ANGLE (onto its 0.8-scaled canvas) and randomly cropped to the input size (CASIA-SURF /
    CeFA: ``144,30``); empty: off. Both sides scale with ``input_scale``."""
    hsv_jitter: float = 0.0
    """ESANet's ``RandomHSV`` on the ``rgb`` modality: hue, saturation and value multiplied by
    factors ~ U[1 − a, 1 + a] (ESANet: 0.1); 0: off."""
    hflip: bool = False
    vflip: bool = False
    rot90: bool = False
    crop_padding: int = 0
    augment_probability: float = 1.0
    """Each training sample gets the geometric augmentation above with this probability and is
    left as is otherwise (DisCoM-KD's official script: 0.5)."""
    input_scaling: tuple[float, ...] = ()
    """``MEAN,STD``: every channel of every image modality scaled as (x − MEAN) / STD instead of
    by the training split's per-channel mean and standard deviation (the MMANet face code's
    ``Normaliztion_multi``: ``127.5,128`` on the 0-255 images); empty: the split's statistics."""
    input_scale: float = 1.0
    """Resize factor applied to the task's ``input_size`` (e.g. 0.25: NYUv2's 640×480 → 160×120
    for a CPU smoke run); each scale has its own preprocessed cache."""
    limit_train: int | None = None
    limit_eval: int | None = None
    num_workers: int = 0
    amp: bool = True
    channels_last: bool = True
    compile: bool = False
    """``torch.compile`` the method's training step (``mmbench run --compile``)."""
    select_from_epoch: int = 1
    """The first (1-based) epoch that may be selected as ``best``; earlier epochs are validated and
    recorded but never selected (the MMANet classification code keeps the best epoch after 30)."""
    selection_metric: str | None = None
    """The validation metric the best epoch is chosen on (default: the task's primary metric; the
    MMANet face code keeps its best-``accuracy`` model)."""
    selection_subsets: Literal["all", "full"] = "all"
    """``all``: the metric's mean over every deployment subset; ``full``: over the subset with the
    most modalities only (the MMANet face code validates its model with every modality)."""
    selection: Literal["mean", "per-subset", "paper"] = "mean"
    """How the reported (``best``) model is selected on validation. ``mean``: one epoch, the best
    mean primary metric over the deployment subsets. ``per-subset``: each deployment subset is
    tested with the weights of its own best validation epoch (DisCoM-KD's official script keeps
    each modality's classifier from its own best epoch); the record lists every subset's epoch.
    ``paper``: the papers' protocol on datasets without a validation split (the MMANet / ESANet
    segmentation code) — no validation carve: training on the whole training split and the epoch
    selected on the **test** split (as ``mean``, from ``select_from_epoch``; MMANet: 241). Its
    records say so and the leaderboard shows them apart, flagged, never ranked with the others."""

    def but(self, **changes: Any) -> Recipe:
        """This recipe with ``changes`` (e.g. ``CPU_SMOKE.but(epochs=4, input_scale=0.25)``)."""
        return dataclasses.replace(self, **changes)

    def __post_init__(self) -> None:
        for name in ("milestones", "scale_range", "face_augmentation", "input_scaling"):  # a list from TOML or a record
            object.__setattr__(self, name, tuple(getattr(self, name)))
        def finite(value: float | None) -> bool:
            return value is None or math.isfinite(value)

        epochs = f"(recipe.epochs is {self.epochs}: lowering it may need this lowered too)"
        checks = {  # field: (valid, the rule a value breaks)
            "epochs": (self.epochs >= 1, ">= 1"),
            "batch_size": (self.batch_size >= 1, ">= 1"),
            "eval_batch_size": (self.eval_batch_size >= 1, ">= 1"),
            "lr": (finite(self.lr) and self.lr > 0, "finite and > 0"),
            "momentum": (finite(self.momentum) and 0 <= self.momentum < 1, "in [0, 1)"),
            "weight_decay": (finite(self.weight_decay) and self.weight_decay >= 0, "finite and >= 0"),
            "step_size": (self.step_size >= 1, ">= 1"),
            "gamma": (finite(self.gamma) and self.gamma > 0, "finite and > 0"),
            "width": (self.width >= 4, ">= 4"),
            "warmup_epochs": (0 <= self.warmup_epochs < max(self.epochs, 1), f"in [0, epochs) {epochs}"),
            "limit_train": (self.limit_train is None or self.limit_train >= 1, "none or >= 1"),
            "limit_eval": (self.limit_eval is None or self.limit_eval >= 1, "none or >= 1"),
            "num_workers": (self.num_workers >= 0, ">= 0"),
            "crop_padding": (self.crop_padding >= 0, ">= 0"),
            "input_scale": (finite(self.input_scale) and 0 < self.input_scale <= 1, "in (0, 1]"),
            "grad_clip": (self.grad_clip is None or (finite(self.grad_clip) and self.grad_clip > 0), "none or finite and > 0"),
            "selection": (self.selection in ("mean", "per-subset", "paper"), "mean, per-subset or paper"),
            "selection_subsets": (self.selection_subsets in ("all", "full"), "all or full"),
            "milestones": (all(m >= 1 for m in self.milestones) and list(self.milestones) == sorted(set(self.milestones))
                           and (self.scheduler != "multistep" or bool(self.milestones)),
                           "increasing epochs >= 1 (needed by scheduler=multistep)"),
            "select_from_epoch": (1 <= self.select_from_epoch <= self.epochs, f"in [1, epochs] {epochs}"),
            "scale_range": (not self.scale_range or (len(self.scale_range) == 2 and all(
                math.isfinite(v) and v > 0 for v in self.scale_range) and self.scale_range[0] <= self.scale_range[1]),
                "empty or LOW,HIGH with 0 < LOW <= HIGH"),
            "hsv_jitter": (finite(self.hsv_jitter) and 0 <= self.hsv_jitter < 1, "in [0, 1)"),
            "face_augmentation": (not self.face_augmentation or (
                len(self.face_augmentation) == 2 and self.face_augmentation[0] >= 1 and 0 <= self.face_augmentation[1] <= 90),
                "empty or RESIZE,MAX_ANGLE with RESIZE >= 1 and 0 <= MAX_ANGLE <= 90"),
            "augment_probability": (finite(self.augment_probability) and 0 <= self.augment_probability <= 1, "in [0, 1]"),
            "resolution": (self.resolution in ("input", "native"), "input or native"),
            "input_scaling": (not self.input_scaling or (len(self.input_scaling) == 2 and all(
                math.isfinite(v) for v in self.input_scaling) and self.input_scaling[1] > 0),
                "empty or MEAN,STD with STD > 0"),
        }
        bad = {name: rule for name, (ok, rule) in checks.items() if not ok}
        if bad:
            raise MMBenchError("invalid recipe value: " + "; ".join(
                f"recipe.{name}={getattr(self, name)!r} must be {rule}" for name, rule in bad.items()) + ".")
        if self.resolution == "native" and not self.scale_range:
            raise MMBenchError("recipe.resolution=native needs recipe.scale_range (the rescale + crop that takes each "
                               "native sample to the input size); set it, e.g. recipe.scale_range=1.0,1.4.")
        if self.resolution == "native" and self.face_augmentation:
            raise MMBenchError("recipe.face_augmentation works from its own resize of the images; remove it or set "
                               "recipe.resolution=input.")
        if (self.resolution == "native" or self.face_augmentation) and self.augment_probability < 1:
            raise MMBenchError(f"recipe.augment_probability={self.augment_probability} would leave training samples "
                               f"at their cached size, not the input size ({'recipe.resolution=native' if self.resolution == 'native' else 'recipe.face_augmentation'}); "
                               "set recipe.augment_probability=1.")
        if self.backbone not in BACKBONES:
            raise MMBenchError(
                f"invalid recipe value recipe.backbone={self.backbone!r}: choose one of {', '.join(BACKBONES)}."
            )
        if self.pretrained not in ("none", "imagenet"):
            raise MMBenchError(f"invalid recipe value recipe.pretrained={self.pretrained!r}: choose none or imagenet.")
        if self.decoder not in SEGMENTATION_DECODERS:
            raise MMBenchError(f"invalid recipe value recipe.decoder={self.decoder!r}: choose one of "
                               f"{', '.join(SEGMENTATION_DECODERS)}.")
        if self.context not in CONTEXT_MODULES:
            raise MMBenchError(f"invalid recipe value recipe.context={self.context!r}: choose one of "
                               f"{', '.join(CONTEXT_MODULES)}.")
        if self.class_weighting not in ("none", "median-frequency"):
            raise MMBenchError(f"invalid recipe value recipe.class_weighting={self.class_weighting!r}: choose none or "
                               "median-frequency.")
        if self.stem not in ("auto", "imagenet", "small", "3x3") or self.scheduler_interval not in ("step", "epoch"):
            raise MMBenchError(f"invalid recipe value recipe.stem={self.stem!r} / recipe.scheduler_interval="
                               f"{self.scheduler_interval!r}: stem is auto, imagenet, small or 3x3; the interval step "
                               "or epoch.")
        if self.pretrained == "imagenet" and self.stem in ("small", "3x3"):
            raise MMBenchError(f"recipe.pretrained=imagenet needs the ImageNet stem, got recipe.stem={self.stem}; set "
                               "recipe.stem=auto or recipe.pretrained=none.")
        if self.weights is not None and self.pretrained != "imagenet":
            raise MMBenchError(f"recipe.weights={self.weights} needs recipe.pretrained=imagenet; set it, or remove "
                               "recipe.weights.")
        if self.pretrained == "imagenet" and self.width != 64:
            raise MMBenchError(f"recipe.pretrained=imagenet needs the standard network (recipe.width=64), got "
                               f"recipe.width={self.width}; set recipe.width=64 or recipe.pretrained=none.")


NETWORK_FIELDS: tuple[str, ...] = ("backbone", "width", "stem", "pretrained", "weights", "he_init", "decoder", "context")
"""The recipe fields that make the network; a run's dependencies (teachers) inherit them."""


CPU_SMOKE = Recipe(optimizer="adamw", lr=2e-3, weight_decay=0.05, scheduler="cosine", width=16)
"""The shared base of the ``smoke`` profiles (minutes on a 2-core CPU): AdamW at 2e-3 with weight
decay 0.05 and a cosine schedule, 16-wide encoders; tasks adjust epochs, batch sizes, input
scale and limits with :meth:`Recipe.but`."""


# ---------------------------------------------------------------------------------------------
# Datasets


@dataclass(frozen=True)
class HubSource:
    """A Hugging Face hub dataset pinned to a full commit sha.

    Loaded with ``huggingface_hub.snapshot_download(repo, repo_type="dataset", revision=...,
    allow_patterns=...)`` then ``datasets.load_dataset(<local dir>, data_files=...)``; never with
    ``trust_remote_code``. Honours ``HF_HOME`` / ``HF_HUB_CACHE`` / ``HF_HUB_OFFLINE``.
    """

    repo: str
    revision: str
    data_files: Mapping[str, str | Sequence[str]]
    allow_patterns: tuple[str, ...] = ()
    config: str | None = None

    kind = "hub"


@dataclass(frozen=True)
class HubRepo:
    """One hub dataset repository pinned to a full commit sha, of which only ``allow_patterns``
    are downloaded."""

    repo: str
    revision: str
    allow_patterns: tuple[str, ...] = ()


@dataclass(frozen=True)
class HubFilesSource:
    """Raw files (archives, GeoTIFFs, lists) of one or more pinned hub dataset repositories, read
    by the plugin rather than by ``datasets`` (for data that is not parquet, or whose modalities
    are published as separate repositories and must be paired).

    Each repository is fetched with ``snapshot_download(repo, repo_type="dataset",
    revision=<sha>, allow_patterns=...)``; ``read(snapshots, split)`` gets ``{repo: snapshot
    folder}`` (and, for a dataset with :attr:`DatasetSpec.options`, their resolved values as a
    third argument, ``{name: value}``) and returns the split's raw rows for ``DatasetSpec.decode`` (a sequence with a length). The
    revision recorded is the shas joined by ``+``, in the order of ``repos``.
    """

    repos: tuple[HubRepo, ...]
    read: Callable[..., Any]

    kind = "hub-files"

    @property
    def repo(self) -> str:
        return "+".join(r.repo for r in self.repos)

    @property
    def revision(self) -> str:
        return "+".join(r.revision for r in self.repos)


@dataclass(frozen=True)
class LocalSource:
    """Data the user must obtain themselves (licences forbid redistribution).

    The data lives under ``<--data-dir or $MMBENCH_DATA>/<subdir>`` in the official layout.
    ``read(root, split)`` yields raw rows for ``DatasetSpec.decode`` (``read(root, split,
    options)`` for a dataset with :attr:`DatasetSpec.options`); ``check(root)`` validates the
    layout and returns a problem description or ``None``. ``version``: raise it whenever ``read``
    or ``decode`` change what a sample holds — it names the cache (revision ``local-v<version>``
    from 2 on), so caches of the old decoding are never reused.
    """

    subdir: str
    how_to_get: str
    read: Callable[..., Any]
    check: Callable[[Path], str | None] | None = None
    version: int = 1

    kind = "local"


@dataclass(frozen=True)
class GeneratorSource:
    """Data generated locally and deterministically, written as parquet and read back through the
    same ``datasets.load_dataset(<dir>, data_files=...)`` path as hub data.

    ``generate(out_dir)`` writes the files named by ``data_files`` below ``out_dir``; the output is
    cached under ``$MMBENCH_HOME/generated/<dataset>-<version>`` and regenerated only when
    ``version`` changes.
    """

    generate: Callable[[Path], None]
    version: str
    data_files: Mapping[str, str | Sequence[str]]

    kind = "generator"


@dataclass(frozen=True)
class ArraySource:
    """Data that already is arrays (NumPy, or anything ``numpy.asarray`` accepts), written straight
    into the memory-mapped cache: no image files, no parquet.

    ``generate(split)`` returns ``{modality: [N, C, H, W] or [N, D], "target": [N] (or [N, H, W]
    for segmentation)}`` for one of the dataset's ``splits``; it must be deterministic. The
    result is cached under the revision ``arrays-v<version>``: bump ``version`` whenever the
    arrays would change. ``DatasetSpec.decode`` is not used (leave it unset).
    """

    generate: Callable[[str], Mapping[str, Any]]
    version: str

    kind = "arrays"


@dataclass(frozen=True)
class DatasetSpec:
    """Where samples come from and how one raw row becomes arrays.

    ``decode(row)`` turns a raw row (a dict as ``datasets`` yields it: PIL images, numbers, bytes)
    into ``{modality: float32 array [C, H, W] (or [D] for vector data), "target": int array}``:
    channels first, then (height, width); the target is a class index (classification,
    anti-spoofing) or an ``[H, W]`` label map (segmentation). Arrays are resized to the task's
    ``input_size`` and cached once (see :mod:`mmbench.data`). An :class:`ArraySource` needs no
    ``decode``.

    ``options`` are the dataset's choices a user makes with ``--set dataset.<name>=<value>`` (a
    split protocol, a preprocessing variant): ``{name: allowed values}``, the first value the
    default. They reach the source's ``read`` as a ``{name: value}`` argument and enter the cache key, the
    run id and the record. ``standardize``: batches are standardised per channel with the
    training split's mean and std (``False``: served as decoded, for data the dataset already
    scales as its papers feed it).
    """

    name: str
    description: str
    modalities: Mapping[str, int]
    source: HubSource | HubFilesSource | LocalSource | GeneratorSource | ArraySource
    decode: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
    splits: tuple[str, ...] = ("train", "test")
    license: str = ""
    homepage: str = ""
    citation: str = ""
    expected_sizes: Mapping[str, int] | None = None
    release_sizes: Mapping[str, int] | None = None
    """Where ``expected_sizes`` cannot be enforced (bring-your-own data, splits chosen by an option):
    the split sizes of the official release (or default split), as its authors state them — used by
    ``mmbench sweep --estimate`` only (a user's copy may hold fewer)."""
    options: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    standardize: bool = True
    code_identity: str = dataclasses.field(default="", compare=False)
    """Set by mmbench when the dataset is registered, not by a plugin: the registering plugin's
    version and, for file / module / editable plugins, its source hash. It is part of every cache
    key of the dataset (decoded arrays, generated files), so data made by other code is never reused."""

    def __post_init__(self) -> None:
        check_name("dataset", self.name)
        for modality, channels in self.modalities.items():
            check_modality(f"dataset '{self.name}'", modality)
            if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
                raise MMBenchError(f"dataset '{self.name}': modality '{modality}' has {echo(channels)} channels; give "
                                   "a whole number >= 1 (its channels, or its features for vector data).")
        reserved = {"revision"} & set(self.options)
        empty = [name for name, values in self.options.items() if not values]
        if reserved or empty:
            raise MMBenchError(
                f"dataset '{self.name}': option {(sorted(reserved) or empty)[0]!r} "
                + ("is reserved (dataset.revision pins hub data)." if reserved else "lists no allowed value.")
            )
        for field_name in ("expected_sizes", "release_sizes"):
            unknown = sorted(set(getattr(self, field_name) or {}) - set(self.splits))
            if unknown:
                raise MMBenchError(f"dataset '{self.name}': {field_name} names split(s) {unknown} that are not among "
                                   f"its splits ({', '.join(self.splits)}).")
        if self.decode is None and not isinstance(self.source, ArraySource):
            raise MMBenchError(
                f"dataset '{self.name}': decode is required for a {type(self.source).__name__} "
                "(only an ArraySource goes without one)."
            )

    @property
    def revision(self) -> str:
        """The revision recorded in run records: the hub sha or the generator / arrays version."""
        if isinstance(self.source, HubSource | HubFilesSource):
            return self.source.revision
        if isinstance(self.source, GeneratorSource):
            return f"generator-v{self.source.version}"
        if isinstance(self.source, ArraySource):
            return f"arrays-v{self.source.version}"
        version = getattr(self.source, "version", 1)
        return "local" if version == 1 else f"local-v{version}"

    def resolve_options(self, given: Mapping[str, str]) -> dict[str, str]:
        """Every option of the dataset, the given values checked, the others at their defaults."""
        for name, value in given.items():
            if name not in self.options:
                valid = ", ".join(f"dataset.{n}" for n in ("revision", *self.options))
                raise MMBenchError(f"unknown option dataset.{name} for dataset '{self.name}'; valid: {valid}.")
            if value not in self.options[name]:
                raise MMBenchError(f"invalid value dataset.{name}={value!r} for dataset '{self.name}': choose one of "
                                   f"{', '.join(self.options[name])}.")
        return {name: given.get(name, values[0]) for name, values in self.options.items()}


# ---------------------------------------------------------------------------------------------
# Tasks


@dataclass(frozen=True)
class TaskSpec:
    """A dataset plus what is predicted, how it is scored and how it is trained.

    ``subsets`` is the evaluation protocol: the deployment modality subsets reported in the
    tables (default: every non-empty subset, as MMANet and OS-MD report them). ``version`` must be
    bumped whenever data, protocol or metrics change: results of different versions are never
    aggregated together.

    ``input_size`` is **(height, width)** — NYUv2's 640×480 frames are ``(480, 640)``; image
    modalities and dense targets are resized to it once when the cache is built (``None``: keep the
    decoded size, which must then be the same for every sample). A decoded sample of the other
    orientation is an error, since a swapped size would distort every image.
    """

    name: str
    description: str
    dataset: str | DatasetSpec
    """The dataset's name, or its spec inline (registered with the task by the same plugin)."""
    kind: TaskKind
    num_classes: int
    recipes: Mapping[str, Recipe]
    version: str = "1"
    modalities: tuple[str, ...] | None = None
    class_names: tuple[str, ...] | None = None
    ignore_index: int | None = None
    input_size: tuple[int, int] | None = None
    subsets: tuple[Subset, ...] | None = None
    metrics: tuple[str, ...] | None = None
    primary_metric: str | None = None
    train_split: str = "train"
    val_split: str | None = "val"
    test_split: str = "test"
    val_fraction: float = 0.1
    citation: str = ""
    deviations: tuple[Deviation, ...] = ()
    """Known differences of the full profile from the official protocol (:class:`Deviation`)."""
    cross_modal_teacher: str | None = None
    """The richest modality: the teacher's in the cross-modal distillation scenario (default: the
    first modality)."""

    def __post_init__(self) -> None:
        check_name("task", self.name)
        for modality in (*(self.modalities or ()), *([self.cross_modal_teacher] if self.cross_modal_teacher else [])):
            check_modality(f"task '{self.name}'", modality)
        if self.kind not in TASK_KINDS:
            raise MMBenchError(
                f"task '{self.name}': kind '{self.kind}' is not one of {', '.join(TASK_KINDS)}."
            )
        unknown = [m for m in self.metric_names if m not in METRIC_DIRECTIONS]
        if unknown or self.primary not in self.metric_names:
            raise MMBenchError(
                f"task '{self.name}': metrics {unknown or [self.primary]} are not available; "
                f"choose from {', '.join(METRIC_DIRECTIONS)} and list the primary metric in metrics."
            )
        if "smoke" not in self.recipes:
            raise MMBenchError(f"task '{self.name}' must define a 'smoke' recipe.")

    @property
    def metric_names(self) -> tuple[str, ...]:
        return self.metrics or DEFAULT_METRICS[self.kind]

    @property
    def primary(self) -> str:
        return self.primary_metric or self.metric_names[0]

    @property
    def higher_is_better(self) -> bool:
        return METRIC_DIRECTIONS[self.primary]

    def modality_names(self, dataset: DatasetSpec) -> tuple[str, ...]:
        return self.modalities or tuple(dataset.modalities)

    def protocol_subsets(self, dataset: DatasetSpec) -> tuple[Subset, ...]:
        return self.subsets or all_subsets(self.modality_names(dataset))

    def recipe(self, profile: str) -> Recipe:
        if profile not in self.recipes:
            raise MMBenchError(
                f"task '{self.name}' has no '{profile}' profile; choose one of {', '.join(self.recipes)}."
            )
        return self.recipes[profile]


# ---------------------------------------------------------------------------------------------
# Methods


@dataclass(frozen=True)
class ProfileRecipe:
    """``MethodSpec.recipe`` fixing ``fields`` only in ``profile`` and on tasks of ``kind`` —
    e.g. MMANet's ``ProfileRecipe("full", "segmentation", backbone="resnet50")`` (its official
    segmentation code forces ResNet-50; the smoke profile keeps the task's CPU-sized network)."""

    profile: str
    kind: str | None
    fields: Mapping[str, Any]

    def __init__(self, profile: str, kind: str | None = None, **fields: Any):
        object.__setattr__(self, "profile", profile)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "fields", dict(fields))

    def __call__(self, task: TaskSpec, profile: str) -> Mapping[str, Any]:
        applies = profile == self.profile and (self.kind is None or task.kind == self.kind)
        return dict(self.fields) if applies else {}


@dataclass(frozen=True)
class Deviation:
    """A known difference between mmbench's full protocol and the official code behind a paper's
    numbers — the fidelity ledger, shown on the leaderboard's task and method pages next to the
    reported rows, so a reader sees why a reproduced number may differ. Declared by the plugin
    that knows it: a task's (data, augmentation, selection) in ``TaskSpec.deviations``, a method's
    in ``MethodSpec.deviations``."""

    aspect: str
    official: str
    """What the official code does (name its file in ``source``)."""
    mmbench: str
    """What mmbench does instead, and the switch that gets closer where there is one."""
    tasks: tuple[str, ...] = ()
    """``MethodSpec.deviations``: the tasks it concerns (empty: every task of the method)."""
    source: str = ""


@dataclass(frozen=True)
class NoConfig:
    """Config of a method without options."""


@dataclass(frozen=True)
class MethodSpec:
    """A method: its paper, what it supports, its typed config and how to build its module.

    * ``config`` is a (frozen) dataclass whose fields are the method's options with the paper's
      defaults; users set them with ``--set key=value`` (types are checked).
    * ``build(task, config, ctx)`` returns a :class:`mmbench.engine.MethodModule`; ``ctx`` is the
      :class:`mmbench.engine.RunContext` (device, recipe, modality shapes, the trained models the
      method declared in ``requires``). ``build`` may be an import string, ``"package.module:Name"``,
      so that registering a method imports nothing heavy (a class whose ``__init__`` takes
      ``(task, config, ctx)`` is a valid ``build``).
    * ``family``: the method's family, for listings and leaderboard grouping — ``baseline``
      (unimodal / fusion baselines), ``incomplete`` (missing-modality methods: trained with all
      modalities, evaluated on every subset) or ``distillation`` (teacher → student methods; the
      cross-modal / multi-modal *scenario* of a run is ``DistillationSetup.scenario``).
    * ``kinds`` (required): the task kinds it supports, e.g. ``frozenset({"classification"})`` or
      :data:`ALL_KINDS`; a run on another kind is refused with a message naming them.
    * ``trained_modalities(task_modalities, config)``: the modalities the method sees in training
      (default: all).
    * ``deploy_subsets(task_subsets, trained_modalities, config)``: which of the task's protocol
      subsets the method can serve at test time (default: all of them).
    * ``check(task_modalities, config)``: returns a problem description (e.g. a modality the task
      does not have) or ``None``.
    * ``distillation(task, task_modalities, config)``: for distillation methods, the resolved
      :class:`mmbench.distillation.DistillationSetup` (teacher and student modality sets). It
      then decides the trained modalities and the deployment subsets (the students), and the
      runner reports the TEACHER / STUDENT references next to the method; the config's
      ``scenario`` / ``teacher`` / ``student`` options are replaced by the resolved values.
    * ``resolve_config(config)``: the config with every option that is resolved later (e.g.
      ``None`` meaning "the paper's value for this variant") filled in. The run id hashes the
      resolved config, so equivalent settings are recorded once.
    * ``requires(task, task_modalities, config)``: the trained models the method needs, declared
      before it is built — ``{role: (method, {option: value})}`` or ``{role: Reference(...)}``
      (the protocol's TEACHER / STUDENT reference model on some modalities, whichever plugin
      provides it). The runner trains each as an ordinary run first (or takes it from the
      artifact cache) and hands it to ``build`` frozen, as ``ctx.models[role]``. A distillation
      method needs not declare its teacher and student references: they are ``ctx.models["teacher"]``
      and ``ctx.models["student"]`` (``"student:<subset>"`` with several students).
    * ``reference(role, modalities)``: for a method that can serve as the distillation protocol's
      ``"teacher"`` or ``"student"`` reference model on ``modalities``, the options that make it
      so (e.g. ``{"modality": "rgb"}``); ``None`` where it cannot. The built-in baselines plugin
      declares ``unimodal`` and ``fusion`` this way.
    """

    name: str
    description: str
    build: Callable[[TaskSpec, Any, Any], Any] | str
    """``(task, config, ctx: RunContext) -> MethodModule`` or ``"package.module:Name"``."""
    kinds: frozenset[str] | None = None
    config: type = NoConfig
    paper: str = ""
    repo: str = ""
    family: Literal["baseline", "incomplete", "distillation"] = "baseline"
    trained_modalities: Callable[[tuple[str, ...], Any], tuple[str, ...]] | None = None
    deploy_subsets: Callable[[tuple[Subset, ...], tuple[str, ...], Any], tuple[Subset, ...]] | None = None
    check: Callable[[tuple[str, ...], Any], str | None] | None = None
    min_modalities: int = 1
    distillation: Callable[[TaskSpec, tuple[str, ...], Any], Any] | None = None
    resolve_config: Callable[[Any], Any] | None = None
    requires: Callable[[TaskSpec, tuple[str, ...], Any], Mapping[str, Any]] | None = None
    reference: Callable[[str, Subset], Mapping[str, str] | None] | None = None
    deviations: tuple[Deviation, ...] = ()
    """Known differences of the method's full protocol from its official code (:class:`Deviation`)."""
    recipe: Mapping[str, Any] | Callable[[TaskSpec, str], Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    """Recipe fields the method's official protocol fixes, applied over the task's recipe and
    under the user's ``--set recipe.*`` (e.g. DisCoM-KD: ``{"selection": "per-subset"}``); or a
    function of the task and the profile returning them, for a protocol that fixes them only in
    some (MMANet: ``backbone=resnet50`` in the full segmentation profile)."""
    scenario: dataclasses.InitVar[str | None] = None
    """Deprecated since 0.2.0, removed in 0.3.0: the old name of ``family``, still accepted with a
    ``DeprecationWarning``."""

    def __post_init__(self, scenario: str | None = None) -> None:
        check_name("method", self.name)
        if scenario is not None:
            warnings.warn(f"method '{self.name}': MethodSpec(scenario=...) is deprecated since mmbench 0.2.0 and "
                          "will be removed in 0.3.0; use MethodSpec(family=...).", DeprecationWarning, stacklevel=3)
            if self.family not in ("baseline", scenario):
                raise MMBenchError(f"method '{self.name}': give family= only (scenario= is its deprecated name), "
                                   f"not both with different values ({self.family!r}, {scenario!r}).")
            object.__setattr__(self, "family", scenario)
        if self.family not in METHOD_FAMILIES:
            raise MMBenchError(f"method '{self.name}': family {self.family!r} is not one of "
                               f"{', '.join(METHOD_FAMILIES)}.")
        if not callable(self.recipe) or isinstance(self.recipe, ProfileRecipe):
            self._check_recipe_fields(self.recipe.fields if isinstance(self.recipe, ProfileRecipe) else self.recipe)
        if isinstance(self.build, str):
            if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", self.build):
                raise MMBenchError(
                    f"method '{self.name}': build={self.build!r} is not an import string; use "
                    "'package.module:Name' or pass the callable."
                )
        elif not callable(self.build):
            raise MMBenchError(f"method '{self.name}': build must be callable or an import string.")
        if self.kinds is None:
            raise MMBenchError(
                f"method '{self.name}' does not declare kinds: set MethodSpec(kinds=...) to the task kinds it "
                f"supports, e.g. frozenset({{'classification'}}) or mmbench.ALL_KINDS ({', '.join(TASK_KINDS)})."
            )
        unknown = sorted(set(self.kinds) - set(TASK_KINDS))
        if unknown:
            raise MMBenchError(
                f"method '{self.name}': unknown task kind(s) {', '.join(unknown)} in kinds; "
                f"use {', '.join(TASK_KINDS)}."
            )
        if not hasattr(self.config, "__dataclass_fields__"):
            raise MMBenchError(f"method '{self.name}': config must be a dataclass type.")

    def _check_recipe_fields(self, fields_: Mapping[str, Any]) -> None:
        unknown_fields = sorted(set(fields_) - {f.name for f in dataclasses.fields(Recipe)})
        if unknown_fields:
            raise MMBenchError(
                f"method '{self.name}': recipe={{...}} names unknown recipe field(s) {', '.join(unknown_fields)}; "
                f"choose from {', '.join(f.name for f in dataclasses.fields(Recipe))}."
            )

    def recipe_for(self, task: TaskSpec, profile: str) -> dict[str, Any]:
        """The recipe fields this method fixes on ``task`` in ``profile`` (see ``recipe``)."""
        fields_ = dict(self.recipe(task, profile) if callable(self.recipe) else self.recipe)
        self._check_recipe_fields(fields_)
        return fields_

    def option_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self.config))

    def builder(self) -> Callable[[TaskSpec, Any, Any], Any]:
        """``build`` as a callable (an import string is imported now)."""
        if not isinstance(self.build, str):
            return self.build
        module_name, _, attribute = self.build.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as exc:
            raise MMBenchError(f"method '{self.name}': cannot import build={self.build!r} ({exc}).") from None
        return target


@dataclass(frozen=True)
class Reference:
    """In ``MethodSpec.requires``: the distillation protocol's ``role`` (``"teacher"`` or
    ``"student"``) reference model trained on ``modalities`` — whichever installed method declares
    it serves that role (``MethodSpec.reference``); the built-in baselines plugin provides a
    ``unimodal`` network for one modality and a ``fusion`` network (element-wise sum for a teacher)
    for several."""

    role: Literal["teacher", "student"]
    modalities: Subset


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin: where it comes from and what it registered (or why it is broken)."""

    name: str
    distribution: str
    version: str
    module: str
    error: str | None = None
    source_hash: str | None = None
    """Content hash of the plugin's source for file / module plugins and editable installs (it
    enters the run id: edited code never reuses old records); ``None`` for released installs."""
    methods: tuple[str, ...] = field(default=())
    tasks: tuple[str, ...] = field(default=())
    datasets: tuple[str, ...] = field(default=())
