"""Indoor RGB-D semantic segmentation from the Hugging Face hub: ``seg-nyuv2`` (NYU Depth v2,
40 classes) and ``seg-sunrgbd`` (SUN RGB-D, 37 classes), as the MMANet and OS-MD papers evaluate
them (ESANet protocol: 640×480 input, mIoU over the classes from an accumulated confusion matrix,
void ignored; deployment subsets RGB, depth, RGB-D).

Both repositories (``wyrx/NYUDepthv2_seg``, ``wyrx/SUNRGBD_seg``) are plain parquet with three
``Image`` columns (``image``, ``depth``, ``label``). Loaded with ``snapshot_download`` at a pinned
full commit sha and ``load_dataset(<snapshot>, data_files=...)`` — never ``load_dataset(repo)``
(offline it ignores the revision) and never a loading script.

Quirks handled (see the project's hub-datasets notes):

* NYUv2's card names its test split ``teset``: the data files are always passed explicitly.
* Labels: ``0`` is void, ``1..K`` the classes → ``label − 1`` with void (and any 255) → 255.
* Depth is decoded by its PNG mode: 16-bit PNGs are millimetres (NYUv2) or the SUN RGB-D
  toolbox's bit-rotated millimetres (``(p >> 3) | (p << 13)``), returned in metres and checked to
  lie in 0–20 m; 8-bit PNGs (the DFormer-style normalised depth) are returned as ``p / 255`` —
  relative depth, which the per-channel normalisation makes equivalent as a network input.
* Validation carved from train (10 %, fixed seed): the papers select on test, mmbench never does.

The SUN RGB-D repository's second config (``uint8/``) appeared after the pinned first commit;
load it with ``--set dataset.revision=<sha>`` on a dataset spec pointing at ``uint8/*`` (not
shipped: its commit could not be verified from here).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmbench import (
    CPU_SMOKE,
    DatasetSpec,
    Deviation,
    HubSource,
    MMBenchError,
    Recipe,
    TaskSpec,
    depth_metres,
    hookimpl,
    rgb_array,
)

__version__ = "0.2.0"

NYU_REPO = "wyrx/NYUDepthv2_seg"
NYU_REVISION = "82ca4004869fd9dbeb054ce3eaac835bd7f3bafe"  # README pointing `teset` at data/test-*
NYU_SIZES = {"train": 795, "test": 654}
NYU_CLASSES = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf", "picture",
    "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror", "floor mat", "clothes",
    "ceiling", "books", "refrigerator", "television", "paper", "towel", "shower curtain", "box", "whiteboard",
    "person", "night stand", "toilet", "sink", "lamp", "bathtub", "bag", "otherstructure", "otherfurniture",
    "otherprop",
)
SUN_REPO = "wyrx/SUNRGBD_seg"
SUN_REVISION = "0e9592d693a5ae80ef8a228b6f3de96350a3702f"  # first commit: the default config
SUN_SIZES = {"train": 5285, "test": 5050}
SUN_CLASSES = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf", "picture",
    "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror", "floor mat", "clothes",
    "ceiling", "books", "fridge", "tv", "paper", "towel", "shower curtain", "box", "whiteboard", "person",
    "night stand", "toilet", "sink", "lamp", "bathtub", "bag",
)
DATA_FILES = {"train": "data/train-*.parquet", "test": "data/test-*.parquet"}
IGNORE = 255


def labels(image: Any, num_classes: int) -> np.ndarray:
    """``label − 1`` with void (0) and 255 → ignore; values above ``num_classes`` are an error."""
    raw = np.asarray(image).astype(np.int64)
    bad = raw[(raw > num_classes) & (raw != IGNORE)]
    if bad.size:
        raise MMBenchError(f"label value {int(bad.max())} outside 0..{num_classes} (0 = void): the label encoding "
                           "differs from the spec.")
    out = raw - 1
    out[(raw == 0) | (raw == IGNORE)] = IGNORE
    return out


def _decoder(num_classes: int, rotated_depth: bool):
    def decode(row: dict[str, Any]) -> dict[str, np.ndarray]:
        return {"rgb": rgb_array(row["image"]), "depth": depth_metres(row["depth"], rotated_depth),
                "target": labels(row["label"], num_classes)}
    return decode


def _dataset(name: str, description: str, repo: str, revision: str, sizes: dict[str, int], classes: tuple[str, ...],
             rotated: bool, homepage: str, citation: str) -> DatasetSpec:
    return DatasetSpec(
        name=name, description=description, modalities={"rgb": 3, "depth": 1},
        source=HubSource(repo=repo, revision=revision, data_files=DATA_FILES, allow_patterns=("data/*", "README.md")),
        decode=_decoder(len(classes), rotated), splits=("train", "test"), expected_sizes=sizes,
        license="research use (no licence stated on the hub copy; cite the original dataset)",
        homepage=homepage, citation=citation,
    )


# The MMANet segmentation code's recipe (its ESANet fork; the paper's text says Adam, the code runs
# SGD): segmentation/src/args.py defaults and train_nyuv2_mmanet.sh — SGD nesterov lr 0.01, momentum
# 0.9, wd 1e-4, batch 8, 300 epochs, one-cycle over the epochs (train_missing_mmanet.py:
# OneCycleLR(total_steps=args.epochs), stepped once per epoch, momentum cycled), median-frequency
# class weights (args.class_weighting), 640×480, ESANet's decoder (ppm context, deep supervision);
# augmentation (src/preprocessing.py): random rescale 1.0-1.4 + crop back to 640×480, HSV jitter
# ±10 % on RGB, horizontal flip. Encoders start from ImageNet weights: torchvision's
# ResNet-34 for any method; the methods fix their paper's encoder (ProfileRecipe): ESANet / OS-MD
# ResNet-34 NBt1D (the authors' weights file, recipe.weights), MMANet and the methods its tables
# compare (RFNet, mmFormer, HeMIS) ResNet-50.
# Smoke: a quarter of the resolution, a few epochs, on CPU, from scratch, the light decoder.
SMOKE = CPU_SMOKE.but(epochs=4, batch_size=16, eval_batch_size=32, hflip=True, input_scale=0.25, limit_train=320,
                      limit_eval=160)
FULL = Recipe(epochs=300, batch_size=8, eval_batch_size=16, optimizer="sgd", nesterov=True, lr=1e-2, momentum=0.9,
              weight_decay=1e-4, scheduler="onecycle", scheduler_interval="epoch", backbone="resnet34", width=64,
              pretrained="imagenet", hflip=True, scale_range=(1.0, 1.4), hsv_jitter=0.1, decoder="esanet", context="ppm",
              class_weighting="median-frequency")


# SUN RGB-D's images differ in size (561x427 ... 730x530): ESANet rescales each from its own size and
# scores the predictions at it (label_orig), so its full recipe works at native resolution; NYUv2's
# images are 640x480, the input size, where both resolutions are the same.
SUN_FULL = FULL.but(resolution="native")


AUGMENTATION = Deviation(
    aspect="augmentation",
    official="random rescale 1.0-1.4 of the image as read, random crop 480x640 (a resize when not larger), HSV "
             "jitter ±10 % (RGB), flip, by cv2 on the uint8 images on the CPU",
    mmbench="the same ranges and rules from the images as read (SUN RGB-D: recipe.resolution=native), batched on "
            "the device in float: rescale and crop composed into one resampling",
    source="TUI-NICR/ESANet src/preprocessing.py (kept by the MMANet fork)")
TEST_SELECTION = Deviation(
    aspect="selection",
    official="trains on the whole training split, validates on the test split and reports the best test epoch "
             "(the MMANet fork: from epoch 240)",
    mmbench="10 % of train carved for validation, selected there; --set recipe.selection=paper (with "
            "recipe.select_from_epoch=241 for MMANet) follows the papers, shown flagged",
    source="ESANet train.py; MMANet-CVPR2023 segmentation/train_missing_mmanet.py")
PRECISION = Deviation(
    aspect="precision",
    official="float32 (ESANet's train.py; the MMANet fork also ships an AMP script, train_missing_amp.py)",
    mmbench="on CUDA, mixed precision (bf16 where supported, else fp16 with a GradScaler) and channels-last by "
            "default, a speed choice; --set recipe.amp=false trains in float32",
    source="TUI-NICR/ESANet train.py; MMANet-CVPR2023 segmentation/train_missing_amp.py")
DEVIATIONS = (AUGMENTATION, TEST_SELECTION, PRECISION)


@hookimpl
def mmbench_datasets() -> list[DatasetSpec]:
    return [
        _dataset("nyuv2-seg", "NYU Depth v2 labelled set: 795/654 RGB-D images, NYU-40 labels", NYU_REPO,
                 NYU_REVISION, NYU_SIZES, NYU_CLASSES, rotated=False,
                 homepage="https://cs.nyu.edu/~fergus/datasets/nyu_depth_v2.html",
                 citation="Silberman et al., Indoor Segmentation and Support Inference from RGBD Images, ECCV 2012"),
        _dataset("sunrgbd-seg", "SUN RGB-D: 5285/5050 RGB-D images, 37 classes", SUN_REPO, SUN_REVISION, SUN_SIZES,
                 SUN_CLASSES, rotated=True, homepage="https://rgbd.cs.princeton.edu/",
                 citation="Song, Lichtenberg & Xiao, SUN RGB-D: A RGB-D Scene Understanding Benchmark Suite, CVPR 2015"),
    ]


@hookimpl
def mmbench_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(name="seg-nyuv2", dataset="nyuv2-seg", kind="segmentation",
                 description="NYUv2 40-class RGB-D segmentation (hub, pinned), mIoU, 640x480",
                 num_classes=len(NYU_CLASSES), class_names=NYU_CLASSES, ignore_index=IGNORE, input_size=(480, 640),
                 recipes={"smoke": SMOKE, "full": FULL}, deviations=DEVIATIONS),
        TaskSpec(name="seg-sunrgbd", dataset="sunrgbd-seg", kind="segmentation",
                 description="SUN RGB-D 37-class RGB-D segmentation (hub, pinned), mIoU, 640x480",
                 num_classes=len(SUN_CLASSES), class_names=SUN_CLASSES, ignore_index=IGNORE, input_size=(480, 640),
                 recipes={"smoke": SMOKE, "full": SUN_FULL}, deviations=DEVIATIONS),
    ]
