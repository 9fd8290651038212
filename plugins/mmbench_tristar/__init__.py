"""``cls-tristar``: TRISTAR thermal + depth posture recognition, 6 classes, weighted F1 — the TRISTAR
benchmark of the DisCoM-KD paper (Ienco & Dantas 2024), which keeps the dataset's two most
informative modalities (thermal and depth; 14,201 pairs, 6 classes) and distils thermal → depth.

Bring your own data: Stippel, Heitzinger & Kampel, *A Trimodal Dataset: RGB, Thermal, and Depth
for Human Segmentation and Temporal Action Detection* (DAGM GCPR 2023), archive ``tristar.zip`` of
Zenodo record 7996570 (licence as stated there). Unpack it under ``<--data-dir>/tristar`` so that
``tristar/{train,val,test}/<shot>/`` holds — as the authors' loader reads it
(``tristar/data/datasets.py`` of their support code, fork kwc0216/tristar_autolabel at 14b2219) —
``rgb/``, ``depth/``, ``thermal/`` (one image per frame; depth and thermal 16-bit single-channel)
and ``actions.txt`` (one line per frame: a first token the loader skips, then the frame's active
labels among ``put_down pick_up drink type wave get_down get_up sit walk stand lay out_of_view
out_of_room in_room``). A ``data/`` or ``tristar/`` folder between ``<--data-dir>/tristar`` and
the splits (as the archive may unpack) is found too.

How DisCoM-KD reduced the frames to one label each is not public. Here: one sample per frame
whose posture labels (positions 5–10: ``get_down get_up sit walk stand lay``, the mutually
exclusive head) hold exactly one active class; frames with none or several are dropped
(:func:`label_counts` reports both per split and class, to compare with the paper's 14,201).
Frames are paired across modalities by sorted file name within each shot, as the authors' loader
pairs them, after checking every modality and ``actions.txt`` have as many frames. Values are
normalised with the authors' statistics (``NormalizeTransform``: depth 2959.286 ± 1928.029,
thermal 29903.113 ± 149.915, RGB per channel) before they are cached, then standardised on the
training split like every task. Frames are resized to 128×128 (the paper states no resolution;
square, so neither sensor orientation is distorted differently).

Options (``--set dataset.<name>=``): ``split`` — ``archive`` (default: the archive's train / val /
test folders, whole shots apart) or ``discomkd-<i>``, i = 0…9, DisCoM-KD's per-class 70 / 10 / 20
random split (:func:`mmbench.per_class_split`, ``random_state=1000·i``) over every kept frame in
(split, shot, frame) order — consecutive frames of one shot then fall on both sides of the split.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from mmbench import (
    CPU_SMOKE,
    DatasetSpec,
    LazyRows,
    LocalSource,
    MMBenchError,
    Recipe,
    TaskSpec,
    hookimpl,
    open_image,
    per_class_split,
    rgb_array,
)

__version__ = "0.3.0"

ACTIONS = ("put_down", "pick_up", "drink", "type", "wave", "get_down", "get_up", "sit", "walk", "stand", "lay",
           "out_of_view", "out_of_room", "in_room")
CLASSES = ACTIONS[5:11]
SPLITS = ("train", "val", "test")
MODALITY_FOLDERS = ("rgb", "depth", "thermal")
NORMALISATION = {  # tristar/data/transforms.py, NormalizeTransform
    "rgb": (np.array([126.39476776123047, 128.59066772460938, 134.02708435058594]),
            np.array([84.279945, 83.32872, 82.45626])),
    "depth": (np.array([2959.2861328125]), np.array([1928.0287860921578])),
    "thermal": (np.array([29903.11328125]), np.array([149.91512572744287])),
}
SPLIT_OPTIONS = ("archive", *(f"discomkd-{i}" for i in range(10)))
HOW_TO_GET = ("TRISTAR is the archive tristar.zip of Zenodo record 7996570 (https://zenodo.org/record/7996570); "
              "unpack it so that DIR/tristar/{train,val,test}/<shot>/ holds rgb/, depth/, thermal/ and actions.txt.")


class Frame(NamedTuple):
    split: str
    shot: str
    files: tuple[Path, Path, Path]
    """rgb, depth, thermal."""
    label: int


def splits_root(root: Path) -> Path:
    """The folder holding ``train``, ``val`` and ``test``: ``root`` or its ``data`` / ``tristar`` folder."""
    for candidate in (root, root / "data", root / "tristar"):
        if all((candidate / split).is_dir() for split in SPLITS):
            return candidate
    found = ", ".join(sorted(p.name for p in root.iterdir() if p.is_dir())) or "nothing"
    raise MMBenchError(f"no train/, val/ and test/ folders in {root} (or its data/ or tristar/ folder); found {found}. "
                       f"{HOW_TO_GET}")


def posture(labels: list[str]) -> int | None:
    """The class of a frame's ``actions.txt`` labels: the one active posture, else ``None``."""
    active = [CLASSES.index(label) for label in labels if label in CLASSES]
    return active[0] if len(active) == 1 else None


def _shot_frames(split: str, shot: Path) -> tuple[list[Frame], int]:
    """The kept frames of one shot and how many it dropped; a shot whose modalities or actions
    disagree in length is an error naming it."""
    files = {}
    for modality in MODALITY_FOLDERS:
        folder = shot / modality
        files[modality] = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    actions_file = shot / "actions.txt"
    if not actions_file.is_file():
        raise MMBenchError(f"{split}/{shot.name} has no actions.txt; re-extract TRISTAR.")
    rows = [line.split(" ")[1:] for line in actions_file.read_text().splitlines() if line.strip()]
    counts = {m: len(f) for m, f in files.items()}
    if len(set(counts.values())) != 1 or not counts["depth"] or len(rows) != counts["depth"]:
        raise MMBenchError(f"{split}/{shot.name}: {', '.join(f'{m} {n}' for m, n in counts.items())} frames and "
                           f"{len(rows)} actions.txt rows; every modality needs one frame per actions.txt row.")
    unknown = sorted({label for row in rows for label in row} - set(ACTIONS))
    if unknown:
        raise MMBenchError(f"{split}/{shot.name}/actions.txt has unknown labels {unknown[:3]}; expected {', '.join(ACTIONS)}.")
    kept = []
    for index, row in enumerate(rows):
        label = posture(row)
        if label is not None:
            kept.append(Frame(split, shot.name, (files["rgb"][index], files["depth"][index], files["thermal"][index]),
                              label))
    return kept, len(rows) - len(kept)


def _shots(root: Path, split: str) -> list[Path]:
    shots = [p for p in (splits_root(root) / split).iterdir() if p.is_dir()]
    return sorted(shots, key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name))


def read_frames(root: Path, split: str) -> tuple[list[Frame], int]:
    """Kept frames of an archive split, in (shot, frame) order, and the number dropped."""
    frames, dropped = [], 0
    for shot in _shots(root, split):
        kept, lost = _shot_frames(split, shot)
        frames += kept
        dropped += lost
    return frames, dropped


def label_counts(root: Path) -> dict[str, dict[str, int]]:
    """Per archive split: kept frames per class, ``kept`` and ``dropped`` (no or several postures)."""
    report = {}
    for split in SPLITS:
        frames, dropped = read_frames(root, split)
        per_class = Counter(CLASSES[f.label] for f in frames)
        report[split] = {**{c: per_class.get(c, 0) for c in CLASSES}, "kept": len(frames), "dropped": dropped}
    return report


def check_layout(root: Path) -> str | None:
    try:
        base = splits_root(root)
        for split in SPLITS:
            if not _shots(root, split):
                return f"{base / split} holds no shot folder."
            frames, _ = read_frames(root, split)
            if not frames:
                return f"the {split} split has no frame with exactly one posture label ({', '.join(CLASSES)})."
    except MMBenchError as exc:
        return str(exc)
    return None


def _load_frame(frame: Frame) -> dict[str, Any]:
    rgb, depth, thermal = (open_image(path) for path in frame.files)
    return {"rgb": rgb, "depth": depth, "thermal": thermal, "label": frame.label}


def read_split(root: Path, split: str, options: dict[str, str]) -> LazyRows:
    scheme = options["split"]
    if scheme == "archive":
        return LazyRows(read_frames(root, split)[0], _load_frame)
    frames = [f for s in SPLITS for f in read_frames(root, s)[0]]
    chosen = per_class_split(np.asarray([f.label for f in frames]), random_state=1000 * int(scheme.removeprefix("discomkd-")))
    return LazyRows([frames[i] for i in np.sort(chosen[split])], _load_frame)


def _single_channel(image: Any, modality: str) -> np.ndarray:
    if image.mode not in ("I;16", "I;16B", "I;16L", "I", "L"):
        raise MMBenchError(f"a {modality} frame has PIL mode '{image.mode}', expected a single-channel (16-bit) image.")
    return np.asarray(image, dtype=np.float32)[None]


def _normalised(values: np.ndarray, modality: str) -> np.ndarray:
    mean, std = NORMALISATION[modality]
    return ((values - mean.reshape(-1, 1, 1)) / std.reshape(-1, 1, 1)).astype(np.float32)


def decode(row: dict[str, Any]) -> dict[str, np.ndarray]:
    return {"rgb": _normalised(rgb_array(row["rgb"]), "rgb"),
            "depth": _normalised(_single_channel(row["depth"], "depth"), "depth"),
            "thermal": _normalised(_single_channel(row["thermal"], "thermal"), "thermal"),
            "target": np.asarray(row["label"], dtype=np.int64)}


# DisCoM-KD: ResNet-18 from scratch, Adam lr 1e-4, batch 128, 300 epochs, flips and rotations.
# The official model (model_pytorch.py) keeps torchvision's 7×7 stride-2 stem and max-pool on
# every modality and input size (2×2 last maps at 64 px), hence stem=imagenet, not auto.
FULL = Recipe(epochs=300, batch_size=128, optimizer="adam", lr=1e-4, weight_decay=0.0, scheduler="none",
              backbone="resnet18", width=64, stem="imagenet", hflip=True, vflip=True, rot90=True)
SMOKE = CPU_SMOKE.but(epochs=10, batch_size=64, hflip=True, vflip=True, rot90=True, input_scale=0.5,
                      limit_train=2048, limit_eval=1024)


@hookimpl
def mmbench_datasets() -> list[DatasetSpec]:
    return [DatasetSpec(
        name="tristar", description="TRISTAR: RGB, depth and thermal frames of indoor scenes, one posture per frame "
                                    "(bring your own)",
        modalities={"rgb": 3, "depth": 1, "thermal": 1},
        source=LocalSource(subdir="tristar", how_to_get=HOW_TO_GET, read=read_split, check=check_layout),
        decode=decode, splits=SPLITS, options={"split": SPLIT_OPTIONS},
        license="as stated on Zenodo record 7996570", homepage="https://zenodo.org/record/7996570",
        citation="Stippel, Heitzinger & Kampel, A Trimodal Dataset: RGB, Thermal, and Depth for Human Segmentation "
                 "and Temporal Action Detection, DAGM GCPR 2023",
    )]


@hookimpl
def mmbench_tasks() -> list[TaskSpec]:
    return [TaskSpec(
        name="cls-tristar", dataset="tristar", kind="classification", modalities=("thermal", "depth"),
        description="6-posture recognition from thermal + depth frames (TRISTAR), weighted F1, distillation thermal "
                    "-> depth (bring your own)",
        num_classes=len(CLASSES), class_names=CLASSES, input_size=(128, 128), val_split="val",
        metrics=("weighted_f1", "accuracy", "macro_f1"), cross_modal_teacher="thermal",
        recipes={"smoke": SMOKE, "full": FULL},
    )]
