"""Face anti-spoofing, bring your own data: ``cls-casia-surf`` and ``cls-cefa``.

``cls-casia-surf``: CASIA-SURF multi-modal face anti-spoofing (Zhang et al., *A Dataset and
Benchmark for Large-scale Multi-modal Face Anti-spoofing*, CVPR 2019) — RGB, depth and IR, live
vs spoof, ACER; the MMANet paper's protocol: every one of the 7 modality subsets, the
intra-testing split (train / ``val_private`` / ``test_private``), 112×112 inputs.

Bring your own data: the release is under a signed agreement and may not be redistributed.
mmbench reads the official layout under ``<--data-dir>/CASIA-SURF``: the list files
``train_list.txt``, ``val_private_list.txt``, ``test_private_list.txt`` — one sample per line,
``<color path> <depth path> <ir path> <label>`` with paths relative to the root and label 1 = live,
0 = spoof (as the MMANet code reads them) — and the images they name. The layout is checked
before anything is trained: lists present, every line well formed, every named file present.

``cls-cefa``: CASIA-SURF CeFA (Liu et al., *CASIA-SURF CeFA: A Benchmark for Multi-modal
Cross-ethnicity Face Anti-spoofing*, WACV 2021) as the MMANet code uses it: the race subset under
``<--data-dir>/CeFA-Race`` (``<AF|CA|EA>/<subject>/<race_id_device_session_pai>/{profile,depth,ir}/
<frame>.jpg``) with protocol ``race_prot_rdi_4@5`` — train: East-Asian subjects 0-199, dev:
200-299, real + screen attacks; test: African subjects 300-499, real + cloth attacks (cross
ethnicity and cross attack); acquisition devices 1 and 3, sessions 1 and 2; every frame. The
MMANet code labels real 0 and pairs the three modalities by sorted order; mmbench keeps 1 = live
(as for CASIA-SURF; ACER is symmetric) and pairs frames by sorted order within each video, after
checking that the three modalities have as many frames.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from mmbench import (
    CPU_SMOKE,
    DatasetSpec,
    Deviation,
    LazyRows,
    LocalSource,
    MMBenchError,
    Recipe,
    TaskSpec,
    hookimpl,
    open_image,
)

__version__ = "0.2.0"

LISTS = {"train": "train_list.txt", "val": "val_private_list.txt", "test": "test_private_list.txt"}
HOW_TO_GET = ("CASIA-SURF is distributed by CASIA / ChaLearn under a signed release agreement "
              "(https://sites.google.com/view/face-anti-spoofing-challenge); request it there and unpack it with its "
              "list files train_list.txt, val_private_list.txt and test_private_list.txt at the top.")


def parse_list(path: Path) -> list[tuple[str, str, str, int]]:
    """The samples of one list file; a malformed line is an error naming file and line."""
    samples = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 4 or fields[3] not in ("0", "1"):
            raise MMBenchError(f"{path}, line {number}: expected '<color> <depth> <ir> <0|1>', got '{line.strip()}'.")
        samples.append((fields[0], fields[1], fields[2], int(fields[3])))
    return samples


def check_layout(root: Path) -> str | None:
    """``None`` when the release is complete, else what is missing (first missing file named)."""
    missing_lists = [name for name in LISTS.values() if not (root / name).is_file()]
    if missing_lists:
        return f"missing list file(s) {', '.join(missing_lists)} at the top of the dataset folder."
    for split, name in LISTS.items():
        samples = parse_list(root / name)
        if not samples:
            return f"{name} lists no samples."
        absent = [p for sample in samples for p in sample[:3] if not (root / p).is_file()]
        if absent:
            return f"{len(absent)} image(s) named in {name} are missing, e.g. {absent[0]} ({split} split)."
    return None


def _load_sample(root: Path, sample: tuple[str, str, str, int]) -> dict[str, Any]:
    color, depth, ir, label = sample
    return {"color": open_image(root / color), "depth": open_image(root / depth), "ir": open_image(root / ir),
            "label": label}


def read_split(root: Path, split: str) -> LazyRows:
    return LazyRows(parse_list(root / LISTS[split]), partial(_load_sample, root))


def _three_channels(image: Any) -> np.ndarray:
    """``[3, H, W]`` float32; a grayscale image is replicated, as ``cv2.imread`` reads it."""
    return np.moveaxis(np.asarray(image.convert("RGB"), dtype=np.float32), -1, 0)


def decode(row: dict[str, Any]) -> dict[str, np.ndarray]:
    """RGB, depth and IR as three channels each — the MMANet code reads all three with
    ``cv2.imread`` (its networks' first convolutions take 3 channels)."""
    return {"rgb": _three_channels(row["color"]), "depth": _three_channels(row["depth"]),
            "ir": _three_channels(row["ir"]), "target": np.asarray(row["label"], dtype=np.int64)}


RACES = ("AF", "CA", "EA")
CEFA_MODALS = ("profile", "depth", "ir")
CEFA_PROTOCOL = {  # race_prot_rdi_4@5 of the MMANet code (CASIA_Race_RDI)
    "train": {"race": {3}, "ids": range(0, 200), "pai": {1, 4}},
    "val": {"race": {3}, "ids": range(200, 300), "pai": {1, 4}},
    "test": {"race": {1}, "ids": range(300, 500), "pai": {1, 2}},
}
CEFA_DEVICES, CEFA_SESSIONS = {1, 3}, {1, 2}
CEFA_HOW_TO_GET = ("CASIA-SURF CeFA is distributed by CASIA / ChaLearn under a signed release agreement "
                   "(https://sites.google.com/view/face-anti-spoofing-challenge); unpack its race part so that "
                   "CeFA-Race/<AF|CA|EA>/<subject>/<video>/{profile,depth,ir}/ holds the frames.")


def cefa_video_in_split(name: str, split: str) -> bool:
    """Whether a video folder ``race_id_device_session_pai`` belongs to the protocol's split."""
    parts = name.split("_")
    if len(parts) != 5 or not all(p.isdigit() for p in parts):
        return False
    race, subject, device, session, pai = (int(p) for p in parts)
    rule = CEFA_PROTOCOL[split]
    return (race in rule["race"] and subject in rule["ids"] and device in CEFA_DEVICES
            and session in CEFA_SESSIONS and pai in rule["pai"])


def cefa_samples(root: Path, split: str) -> list[tuple[str, str, str, int]]:
    """(profile, depth, ir, label) frame paths of a split, label 1 = live (PAI 1)."""
    samples = []
    for race in RACES:
        for video in sorted(p for p in (root / race).glob("*/*") if p.is_dir() and cefa_video_in_split(p.name, split)):
            frames = [sorted(f.name for f in (video / modal).iterdir() if f.is_file()) if (video / modal).is_dir() else []
                      for modal in CEFA_MODALS]
            if not frames[0] or len({len(f) for f in frames}) != 1:
                raise MMBenchError(f"{video.relative_to(root)}: {', '.join(f'{m} {len(f)}' for m, f in zip(CEFA_MODALS, frames, strict=True))} "
                                   "frames; every video needs as many profile, depth and ir frames.")
            live = int(video.name.split("_")[-1] == "1")
            rel = video.relative_to(root).as_posix()
            samples += [(*(f"{rel}/{m}/{f[i]}" for m, f in zip(CEFA_MODALS, frames, strict=True)), live)
                        for i in range(len(frames[0]))]
    return samples


def cefa_check(root: Path) -> str | None:
    missing = [race for race in RACES if not (root / race).is_dir()]
    if missing:
        return f"missing race folder(s) {', '.join(missing)}."
    for split in CEFA_PROTOCOL:
        samples = cefa_samples(root, split)
        if not samples:
            return f"no video of the {split} split of protocol race_prot_rdi_4@5."
        if len({s[3] for s in samples}) < 2:
            return f"the {split} split has only {'live' if samples[0][3] else 'attack'} videos."
    return None


def cefa_read(root: Path, split: str) -> LazyRows:
    return LazyRows(cefa_samples(root, split), partial(_load_sample, root))


# The MMANet classification code (shicaiwei123/MMANet-CVPR2023, classification/):
# * configuration/config_feature_kd.py: SGD nesterov (src/surf_mmanet.py) lr 1e-3, momentum 0.9,
#   wd 5e-4, batch 64, train_epoch 100, lr_warmup with total_epoch 5, lr_decrease multi_step;
# * lib/model_develop.py: MultiStepLR(milestones = 100·(1/6, 2/6, 3/6) → 16, 33, 50) behind
#   GradualWarmupScheduler, which hands it ``epoch − 5`` — the milestones count after the warm-up;
#   stepped once per epoch; epoch 0 of the 100-epoch loop skips every batch (``if epoch == 0:
#   continue``), so 99 epochs train; the kept checkpoint is the best full-modality validation
#   accuracy of the epochs after 30 (``accuracy_test > accuracy_best and epoch > 30``, p = [0, 0, 0]);
# * models/resnet18_se.py: ResNet-18 with a 3×3 stride-2 conv1 (+ max-pool), from scratch;
# * datasets/surf_txt.py: cv2.imread of every modality — depth and IR as 3 channels; training
#   augmentation (src/surf_baseline_multi_dataloader.py) resize 144 (the training cache) → rotation
#   ±30° → crop 112 → flip (recipe.face_augmentation), test resize 112 (the test cache).
# GradualWarmupScheduler(multiplier=1) sets base·e/5 after official epoch e: the first trained
# epoch runs at 0, the full rate is reached at the sixth (recipe.warmup_from_zero);
# datasets/surf_txt.py Normaliztion_multi scales every modality (x − 127.5) / 128
# (recipe.input_scaling).
FULL = Recipe(epochs=99, batch_size=64, optimizer="sgd", nesterov=True, lr=1e-3, momentum=0.9, weight_decay=5e-4,
              scheduler="multistep", milestones=(16, 33, 50), gamma=0.1, warmup_epochs=5, warmup_from_zero=True,
              scheduler_interval="epoch",
              select_from_epoch=31, selection_metric="accuracy", selection_subsets="full", stem="3x3", width=64,
              hflip=True, face_augmentation=(144, 30), input_scaling=(127.5, 128.0))
SMOKE = CPU_SMOKE.but(epochs=5, batch_size=64, hflip=True, input_scale=0.5, limit_train=2048, limit_eval=1024)


DEVIATIONS = (
    Deviation(aspect="augmentation", official="resize 144, random rotation ±30° (0.8-scaled canvas), random crop 112, "
              "flip, each by cv2 on the image read; test: resize 112",
              mmbench="the training split cached at the official 144x144 resize; rotation and crop composed into one "
                      "bilinear resampling on the device, in float",
              source="MMANet-CVPR2023 classification/src/surf_baseline_multi_dataloader.py, datasets/surf_txt.py"),
)


@hookimpl
def mmbench_datasets() -> list[DatasetSpec]:
    cefa = DatasetSpec(
        name="cefa-race", description="CASIA-SURF CeFA race part, protocol 4@5 (bring your own)",
        modalities={"rgb": 3, "depth": 3, "ir": 3},
        source=LocalSource(subdir="CeFA-Race", how_to_get=CEFA_HOW_TO_GET, read=cefa_read, check=cefa_check, version=2),  # 2: 3-channel depth / IR
        decode=decode, splits=("train", "val", "test"),
        release_sizes={"train": 35_000, "val": 18_000, "test": 54_000},  # MMANet §4.1: "35k, 18k, and 54k"
        license="CASIA-SURF CeFA release agreement: research use, no redistribution",
        homepage="https://sites.google.com/view/face-anti-spoofing-challenge",
        citation="Liu et al., CASIA-SURF CeFA: A Benchmark for Multi-modal Cross-ethnicity Face Anti-spoofing, WACV 2021",
    )
    return [cefa, DatasetSpec(
        name="casia-surf", description="CASIA-SURF: RGB, depth, IR faces, live vs print/cut attacks (bring your own)",
        modalities={"rgb": 3, "depth": 3, "ir": 3},
        source=LocalSource(subdir="CASIA-SURF", how_to_get=HOW_TO_GET, read=read_split, check=check_layout, version=2),
        decode=decode, splits=("train", "val", "test"),
        release_sizes={"train": 29_000, "val": 1_000, "test": 57_000},  # MMANet §4.1: "29k, 1k, and 57k"
        license="CASIA-SURF release agreement: research use, no redistribution",
        homepage="https://sites.google.com/view/face-anti-spoofing-challenge",
        citation="Zhang et al., A Dataset and Benchmark for Large-scale Multi-modal Face Anti-spoofing, CVPR 2019",
    )]


@hookimpl
def mmbench_tasks() -> list[TaskSpec]:
    cefa = TaskSpec(
        name="cls-cefa", dataset="cefa-race", kind="anti-spoofing",
        description="CeFA cross-ethnicity / cross-attack (race_prot_rdi_4@5), 7 subsets, ACER (bring your own)",
        num_classes=2, class_names=("spoof", "live"), input_size=(112, 112), val_split="val", version="2",  # 2: 3-channel depth / IR
        recipes={"smoke": SMOKE, "full": FULL}, deviations=DEVIATIONS,
    )
    return [cefa, TaskSpec(
        name="cls-casia-surf", dataset="casia-surf", kind="anti-spoofing",
        description="CASIA-SURF face anti-spoofing, 7 modality subsets, ACER (bring your own data)",
        num_classes=2, class_names=("spoof", "live"), input_size=(112, 112), val_split="val", version="2",  # 2: 3-channel depth / IR
        recipes={"smoke": SMOKE, "full": FULL}, deviations=DEVIATIONS,
    )]
