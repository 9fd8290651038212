"""``seg-cityscapes``: Cityscapes RGB + depth semantic segmentation (Cordts et al., CVPR 2016), 19
classes, mIoU — the MMANet paper's second segmentation benchmark (ESANet protocol: 1024×512).

Bring your own data: the Cityscapes licence forbids redistribution and no hub copy carries the
official disparity maps. mmbench reads the official tree under ``<--data-dir>/cityscapes``:

    leftImg8bit/{train,val}/<city>/<name>_leftImg8bit.png
    gtFine/{train,val}/<city>/<name>_gtFine_labelTrainIds.png   (cityscapesScripts' csCreateTrainIdLabelImgs)
    disparity/{train,val}/<city>/<name>_disparity.png
    camera/{train,val}/<city>/<name>_camera.json

The test split's labels are not public, so — as ESANet and the papers that report Cityscapes
numbers do — the official ``val`` split (500 images) is the test split here; validation is carved
from ``train`` (2975). Depth in metres from the 16-bit disparity: ``d = (p − 1) / 256`` for
``p > 0`` and ``depth = baseline · fx / d`` with the image's camera file; invalid pixels are 0, and
so is every depth above 300 m (ESANet's Cityscapes loader, kept by the MMANet fork: "most likely not
valid").
"""

from __future__ import annotations

import json
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

CLASSES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
           "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")
SPLITS = {"train": "train", "test": "val"}  # mmbench split -> official folder
SUFFIX = {"image": "_leftImg8bit.png", "label": "_gtFine_labelTrainIds.png", "disparity": "_disparity.png",
          "camera": "_camera.json"}
MAX_DEPTH = 300.0  # metres; src/datasets/cityscapes/pytorch_dataset.py: depth[depth > 300] = 0
FOLDER = {"image": "leftImg8bit", "label": "gtFine", "disparity": "disparity", "camera": "camera"}
HOW_TO_GET = ("Cityscapes is distributed at https://www.cityscapes-dataset.com after registration (no "
              "redistribution); download leftImg8bit_trainvaltest, gtFine_trainvaltest, disparity_trainvaltest and "
              "camera_trainvaltest, unpack them into one 'cityscapes' folder and create the *_labelTrainIds.png "
              "files with cityscapesScripts' csCreateTrainIdLabelImgs.")


def samples(root: Path, split: str) -> list[dict[str, Path]]:
    """Every image of an official split with its label, disparity and camera files."""
    folder = root / FOLDER["image"] / SPLITS[split]
    out = []
    for image in sorted(folder.glob(f"*/*{SUFFIX['image']}")):
        stem, city = image.name[: -len(SUFFIX["image"])], image.parent.name
        paths = {kind: root / FOLDER[kind] / SPLITS[split] / city / f"{stem}{SUFFIX[kind]}" for kind in FOLDER}
        out.append(paths)
    return out


def check_layout(root: Path) -> str | None:
    for split, official in SPLITS.items():
        found = samples(root, split)
        if not found:
            return f"no {FOLDER['image']}/{official}/<city>/*{SUFFIX['image']} images."
        for sample in found:
            for kind, path in sample.items():
                if not path.is_file():
                    hint = " (run csCreateTrainIdLabelImgs)" if kind == "label" else ""
                    return f"{path.relative_to(root)} is missing for {sample['image'].name}{hint}."
    return None


def depth_from_disparity(disparity: np.ndarray, camera: dict[str, Any]) -> np.ndarray:
    """Metres from the 16-bit disparity PNG values and the camera's baseline and focal length."""
    try:
        baseline, fx = float(camera["extrinsic"]["baseline"]), float(camera["intrinsic"]["fx"])
    except (KeyError, TypeError, ValueError):
        raise MMBenchError("camera file without extrinsic.baseline / intrinsic.fx; re-extract camera_trainvaltest.") from None
    values = disparity.astype(np.float64)
    valid = values > 0
    depth = np.zeros_like(values)
    d = (values[valid] - 1.0) / 256.0
    depth[valid] = np.where(d > 0, baseline * fx / np.maximum(d, 1e-6), 0.0)
    depth[depth > MAX_DEPTH] = 0.0
    return depth.astype(np.float32)


def _load_sample(sample: dict[str, Path]) -> dict[str, Any]:
    row = {kind: np.asarray(open_image(sample[kind])) for kind in ("image", "label", "disparity")}
    try:
        row["camera"] = json.loads(sample["camera"].read_text())
    except (OSError, ValueError) as exc:
        raise MMBenchError(f"cannot read {sample['camera']}: {exc}; re-extract camera_trainvaltest.") from None
    return row


def read_split(root: Path, split: str) -> LazyRows:
    return LazyRows(samples(root, split), _load_sample)


def decode(row: dict[str, Any]) -> dict[str, np.ndarray]:
    label = row["label"].astype(np.int64)
    bad = label[(label >= len(CLASSES)) & (label != 255)]
    if bad.size:
        raise MMBenchError(f"label value {int(bad.max())} is not a train id (0-18, 255): use the "
                           "*_labelTrainIds.png files, not *_labelIds.png.")
    return {"rgb": np.moveaxis(row["image"][..., :3].astype(np.float32), -1, 0),
            "depth": depth_from_disparity(row["disparity"], row["camera"])[None], "target": label}


SMOKE = CPU_SMOKE.but(epochs=3, batch_size=8, eval_batch_size=16, hflip=True, input_scale=0.125, limit_train=256,
                      limit_eval=100)
# The MMANet fork's Cityscapes scripts (segmentation/train_cityscape_mmant.sh, train_cityscape_full.sh):
# Adam lr 1e-4 (betas 0.9/0.999, wd 1e-4 from args.py), batch 8, 300 epochs (args.py), one-cycle over
# the epochs stepped once per epoch (β1 cycled, torch's default), --class_weighting None, --he_init,
# --context_module appm-1-2-4-8, 1024×512, ESANet-R34-NBt1D (--encoder resnet34 --encoder_block
# NonBottleneck1D; MMANet's own student is forced to ResNet-50 by its plugin); augmentation: ESANet's
# preprocessing with --aug_scale_min 0.5 --aug_scale_max 2.0 of the 2048×1024 images as read
# (recipe.resolution=native), crop 1024×512; test: the input resized to 1024×512, the prediction
# resized to the 2048×1024 label (train.py, label_orig).
FULL = Recipe(epochs=300, batch_size=8, eval_batch_size=8, optimizer="adam", lr=1e-4, weight_decay=1e-4,
              scheduler="onecycle", scheduler_interval="epoch", backbone="resnet34", width=64, pretrained="imagenet",
              he_init=True, hflip=True, resolution="native", scale_range=(0.5, 2.0), hsv_jitter=0.1, decoder="esanet",
              context="appm-1-2-4-8")


DEVIATIONS = (
    Deviation(aspect="precision", official="float32 (ESANet's train.py)",
              mmbench="on CUDA, mixed precision and channels-last by default (a speed choice); --set "
                      "recipe.amp=false trains in float32", source="TUI-NICR/ESANet train.py"),
    Deviation(aspect="augmentation",
              official="random rescale 0.5-2.0 of the 2048x1024 images, random crop 512x1024, HSV jitter, flip, by cv2 "
                       "on the uint8 images on the CPU",
              mmbench="the same from the 2048x1024 images (recipe.resolution=native), batched on the device in float: "
                      "rescale and crop composed into one resampling",
              source="ESANet src/preprocessing.py with --aug_scale_min 0.5 --aug_scale_max 2.0 (train_cityscape_*.sh)"),
    Deviation(aspect="selection", official="validates on the test split (the official val) and reports the best epoch",
              mmbench="validation carved from train; --set recipe.selection=paper follows the papers, shown flagged",
              source="MMANet-CVPR2023 segmentation/train_missing_mmanet.py"),
)


@hookimpl
def mmbench_datasets() -> list[DatasetSpec]:
    return [DatasetSpec(
        name="cityscapes", description="Cityscapes fine annotations with stereo depth (bring your own)",
        modalities={"rgb": 3, "depth": 1},
        source=LocalSource(subdir="cityscapes", how_to_get=HOW_TO_GET, read=read_split, check=check_layout,
                           version=2),  # 2: depth above 300 m is 0
        decode=decode, splits=("train", "test"),
        release_sizes={"train": 2975, "test": 500},  # the official train and val (used as test) splits
        license="Cityscapes licence: non-commercial research, no redistribution",
        homepage="https://www.cityscapes-dataset.com",
        citation="Cordts et al., The Cityscapes Dataset for Semantic Urban Scene Understanding, CVPR 2016",
    )]


@hookimpl
def mmbench_tasks() -> list[TaskSpec]:
    return [TaskSpec(
        name="seg-cityscapes", dataset="cityscapes", kind="segmentation",
        description="Cityscapes 19-class RGB-D segmentation, mIoU, 1024x512 (bring your own data)",
        num_classes=len(CLASSES), class_names=CLASSES, ignore_index=255, input_size=(512, 1024), version="2",  # 2: no depth above 300 m
        recipes={"smoke": SMOKE, "full": FULL}, deviations=DEVIATIONS,
    )]
