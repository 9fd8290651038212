"""``cls-sunrgbd``: the 10-class Kinect v2 RGB-D scene subset of SUN RGB-D defined by Ferreri,
Bucci & Tommasi (*Multi-Modal RGB-D Scene Recognition Across Domains*, ICCVW 2021) and used by
the DisCoM-KD paper for cross-modal distillation: 2105 RGB / depth pairs, weighted F1, the paper's
70 / 10 / 20 split, distillation from RGB (the richer modality) to depth.

Derived from your own copy of SUN RGB-D (Song et al., CVPR 2015; research use, cite the sources).
The subset's file lists come from the Ferreri et al. repository
(https://github.com/silvia1993/Multi-Modal_RGB-D_Scene_Recognition_Across_Domains):
``subsets/kv2.txt`` (2105 lines ``kv2/<class>/<n>.png <label>``) and ``subsets/mapping.txt``
(``<n>.png -> /SUNRGBD/<sensor>/<subfolder>/<scene>``, the original scene folder of each image).
Place both next to the official ``SUNRGBD`` tree: ``<--data-dir>/SUNRGBD/{kv2.txt, mapping.txt,
kv2/...}``. Each sample is the scene folder's ``image/*.jpg`` and ``depth/*.png`` (SUN RGB-D's
bit-rotated millimetres, decoded to metres). The derivation — list → mapping → scene folder — is
checked for every one of the 2105 lines before anything is trained. The papers draw random
splits; mmbench fixes one stratified 70 / 10 / 20 split (dataset seed 0, independent of the run
seed) so that every method sees the same test images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mmbench import (
    CPU_SMOKE,
    DatasetSpec,
    LazyRows,
    LocalSource,
    MMBenchError,
    Recipe,
    TaskSpec,
    depth_metres,
    hookimpl,
    open_image,
    rgb_array,
)

__version__ = "0.3.0"

CLASSES = ("bathroom", "bedroom", "classroom", "computer_room", "conference_room", "dining_area",
           "discussion_area", "kitchen", "office", "rest_space")
SAMPLES = 2105
FRACTIONS = {"train": 0.7, "val": 0.1, "test": 0.2}
SPLIT_SEED = 0
LISTS_URL = "https://github.com/silvia1993/Multi-Modal_RGB-D_Scene_Recognition_Across_Domains/tree/main/subsets"
HOW_TO_GET = ("cls-sunrgbd is derived from your SUN RGB-D copy (https://rgbd.cs.princeton.edu, SUNRGBD.zip) and the "
              f"Ferreri et al. lists kv2.txt and mapping.txt ({LISTS_URL}); put both lists inside the SUNRGBD folder.")


def read_lists(root: Path) -> list[tuple[Path, int]]:
    """(scene folder, label) of every subset image, following kv2.txt through mapping.txt."""
    for name in ("kv2.txt", "mapping.txt"):
        if not (root / name).is_file():
            raise MMBenchError(f"{root / name} is missing; download it from {LISTS_URL}.")
    mapping = {}
    for line in (root / "mapping.txt").read_text().splitlines():
        if "->" in line:
            key, target = (part.strip() for part in line.split("->", 1))
            mapping[key] = target
    samples = []
    for number, line in enumerate((root / "kv2.txt").read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit() or int(fields[1]) >= len(CLASSES):
            raise MMBenchError(f"{root / 'kv2.txt'}, line {number}: expected 'kv2/<class>/<n>.png <0-9>', got '{line}'.")
        image = Path(fields[0]).name
        if image not in mapping:
            raise MMBenchError(f"{image} (kv2.txt line {number}) has no entry in mapping.txt; use the lists of {LISTS_URL}.")
        scene = mapping[image].removeprefix("/").removeprefix("SUNRGBD/")
        samples.append((root / scene, int(fields[1])))
    return samples


def _single(folder: Path, pattern: str) -> Path | None:
    files = sorted(folder.glob(pattern))
    return files[0] if len(files) == 1 else None


def check_layout(root: Path) -> str | None:
    try:
        samples = read_lists(root)
    except MMBenchError as exc:
        return str(exc)
    if len(samples) != SAMPLES:
        return f"kv2.txt lists {len(samples)} images, the subset has {SAMPLES}."
    for scene, _ in samples:
        for sub, pattern in (("image", "*.jpg"), ("depth", "*.png")):
            if _single(scene / sub, pattern) is None:
                return f"{scene.relative_to(root)}/{sub} does not hold exactly one {pattern} (is the SUN RGB-D copy complete?)."
    return None


def split_indices(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Stratified 70 / 10 / 20 partition with a fixed seed."""
    rng = np.random.default_rng(SPLIT_SEED)
    parts: dict[str, list[int]] = {s: [] for s in FRACTIONS}
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_train = int(round(FRACTIONS["train"] * len(members)))
        n_val = int(round(FRACTIONS["val"] * len(members)))
        parts["train"] += members[:n_train].tolist()
        parts["val"] += members[n_train:n_train + n_val].tolist()
        parts["test"] += members[n_train + n_val:].tolist()
    return {s: np.sort(np.asarray(v, dtype=np.int64)) for s, v in parts.items()}


def _load_sample(sample: tuple[Path, int]) -> dict[str, Any]:
    scene, label = sample
    image, depth = _single(scene / "image", "*.jpg"), _single(scene / "depth", "*.png")
    if image is None or depth is None:
        raise MMBenchError(f"{scene} lacks its image/*.jpg or depth/*.png; re-extract SUN RGB-D.")
    return {"image": open_image(image), "depth": open_image(depth), "label": label}


def read_split(root: Path, split: str) -> LazyRows:
    samples = read_lists(root)
    chosen = split_indices(np.asarray([label for _, label in samples]))[split]
    return LazyRows([samples[i] for i in chosen], _load_sample)


def decode(row: dict[str, Any]) -> dict[str, np.ndarray]:
    return {"rgb": rgb_array(row["image"]), "depth": depth_metres(row["depth"], rotated=True),
            "target": np.asarray(row["label"], dtype=np.int64)}


# DisCoM-KD: Adam lr 1e-4, batch 128, 300 epochs, ResNet-18, flips and rotations.
# The official model (model_pytorch.py) keeps torchvision's 7×7 stride-2 stem and max-pool on
# every modality and input size (2×2 last maps at 64 px), hence stem=imagenet, not auto.
FULL = Recipe(epochs=300, batch_size=128, optimizer="adam", lr=1e-4, weight_decay=0.0, scheduler="none",
              backbone="resnet18", width=64, stem="imagenet", hflip=True, vflip=True, rot90=True)
SMOKE = CPU_SMOKE.but(epochs=10, batch_size=64, hflip=True, vflip=True, rot90=True, input_scale=0.5)


@hookimpl
def mmbench_datasets() -> list[DatasetSpec]:
    return [DatasetSpec(
        name="sunrgbd-kv2-scenes", description="SUN RGB-D Kinect v2, 10 scene classes (Ferreri et al.), 2105 RGB-D pairs",
        modalities={"rgb": 3, "depth": 1},
        source=LocalSource(subdir="SUNRGBD", how_to_get=HOW_TO_GET, read=read_split, check=check_layout),
        decode=decode, splits=("train", "val", "test"),
        release_sizes={"train": 1473, "val": 211, "test": 421},  # split_indices on the subset's class sizes
        license="SUN RGB-D: research use, cite NYU v2, B3DO, SUN3D and SUN RGB-D",
        homepage="https://rgbd.cs.princeton.edu",
        citation="Ferreri, Bucci & Tommasi, Multi-Modal RGB-D Scene Recognition Across Domains, ICCVW 2021",
    )]


@hookimpl
def mmbench_tasks() -> list[TaskSpec]:
    return [TaskSpec(
        name="cls-sunrgbd", dataset="sunrgbd-kv2-scenes", kind="classification",
        description="10-class RGB-D scene recognition (SUN RGB-D kv2), weighted F1, distillation rgb -> depth",
        num_classes=len(CLASSES), class_names=CLASSES, input_size=(224, 224), val_split="val",
        metrics=("weighted_f1", "accuracy", "macro_f1"), cross_modal_teacher="rgb",
        recipes={"smoke": SMOKE, "full": FULL},
    )]
