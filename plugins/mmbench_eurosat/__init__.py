"""``cls-eurosat-mssar``: EuroSAT multispectral (Sentinel-2, 13 bands) paired with Sentinel-1 SAR
(VV, VH), 10 land-cover classes, weighted F1 — the EUROSAT-MS-SAR benchmark of the DisCoM-KD paper
(Ienco & Dantas, *Discovering Common and Modality-specific Knowledge Distillation*, 2024).

Sources, both pinned on the Hugging Face hub and read without extracting the zips:

* MS: ``torchgeo/eurosat`` at the revision torchgeo's own ``datasets/eurosat.py`` pins (Helber et
  al., *EuroSAT*, IEEE JSTARS 2019; MIT) — ``EuroSATallBands.zip`` (md5 checked) and the split
  lists ``eurosat-{train,val,test}.txt`` (md5 checked).
* SAR: ``wangyi111/EuroSAT-SAR`` (Wang et al., *Feature Guided Masked Autoencoder*, 2023; MIT) —
  ``EuroSAT-SAR.zip``, one 2-band float32 GeoTIFF per EuroSAT image.

The halves are paired **by file name**. The DisCoM-KD preprocessing pairs two unsorted ``glob``
listings by row index, which silently mispairs when either listing's order differs; here an
image without a partner is an error naming how many and which.

Preprocessing follows DisCoM-KD (``preproc2.py``, tanodino/CMKD_Disentangle at b63bd5c): all 13 MS
bands and both SAR bands, each band scaled from its 2nd–98th percentile to [0, 1] and clipped; the
inputs are fed as scaled (no further standardisation). Options (``--set dataset.<name>=``):

* ``split`` — ``torchgeo`` (default: the public, fixed torchgeo lists, 16,200 / 5,400 / 5,400) or
  ``discomkd-<i>``, i = 0…9: ``createSplits.py``'s 70 / 10 / 20 split per class, each class's
  images shuffled by ``sklearn.utils.shuffle(random_state=1000·i)`` (the same permutation as
  ``numpy.random.RandomState(1000·i).shuffle``), the cuts at ``int(n·0.7)`` and ``int(n·0.8)``.
  The official order of the images is an unsorted glob; here they are sorted by class and image
  number, so the index sets are DisCoM-KD's but the images they pick are not the paper's.
* ``percentiles`` — ``train`` (default: computed on the training split, so nothing of the
  validation and test images enters the inputs) or ``all`` (the official whole-dataset
  statistics, over every image of the three lists).
"""

from __future__ import annotations

from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np

from mmbench import (
    CPU_SMOKE,
    DatasetSpec,
    HubFilesSource,
    HubRepo,
    LazyRows,
    MMBenchError,
    Recipe,
    TaskSpec,
    hookimpl,
    per_class_split,
)
from mmbench_eurosat.archive import (
    Pair,
    ZipIndex,
    check_md5,
    image_key,
    index_zip,
    iter_members,
    pair_by_name,
    read_member,
    read_split_list,
)
from mmbench_eurosat.scaling import band_percentiles, rescale

__version__ = "0.3.0"

MS_REPO, MS_REVISION = "torchgeo/eurosat", "1ce6f1bfb56db63fd91b6ecc466ea67f2509774c"
SAR_REPO, SAR_REVISION = "wangyi111/EuroSAT-SAR", "0c8997d72b71af1ff162e33ab0bce265d9430083"
MS_ZIP, SAR_ZIP = "EuroSATallBands.zip", "EuroSAT-SAR.zip"
MS_PREFIX = "ds/images/remote_sensing/otherDatasets/sentinel_2/tif/"
SPLIT_LISTS = {"train": "eurosat-train.txt", "val": "eurosat-val.txt", "test": "eurosat-test.txt"}
MD5 = {MS_ZIP: "5ac12b3b2557aa56e1826e981e8e200e", "eurosat-train.txt": "908f142e73d6acdf3f482c5e80d851b1",
       "eurosat-val.txt": "95de90f2aa998f70a3b2416bfe0687b4", "eurosat-test.txt": "7ae5ab94471417b6e315763121e67c5f"}
"""The published md5 of each file read from the MS repository (the SAR card publishes none)."""

CLASSES = ("AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial", "Pasture", "PermanentCrop",
           "Residential", "River", "SeaLake")
MS_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A")
SAR_BANDS = ("VV", "VH")
REPETITIONS = 10
SPLIT_OPTIONS = ("torchgeo", *(f"discomkd-{i}" for i in range(REPETITIONS)))


def _snapshot(snapshots: dict[str, Path], repo: str, name: str) -> Path:
    path = snapshots[repo] / name
    if not path.is_file():
        raise MMBenchError(f"{name} is missing from the {repo} snapshot; download the dataset again.")
    return path


def _version(path: Path) -> tuple[Path, int, int]:
    """A file's identity for the in-process caches below (a rewritten file is another version)."""
    stat = path.stat()
    return path, stat.st_size, stat.st_mtime_ns


@lru_cache(maxsize=4)
def _index(version: tuple[Path, int, int], prefix: str | None) -> ZipIndex:
    return index_zip(version[0], prefix)


def _indexes(ms_zip: Path, sar_zip: Path) -> tuple[ZipIndex, ZipIndex]:
    return _index(_version(ms_zip), MS_PREFIX), _index(_version(sar_zip), None)


def split_names(snapshots: dict[str, Path], scheme: str, ms: ZipIndex) -> dict[str, list[str]]:
    """The image names of each split under ``scheme`` (``torchgeo`` or ``discomkd-<i>``)."""
    if scheme == "torchgeo":
        names = {}
        for split, list_name in SPLIT_LISTS.items():
            path = _snapshot(snapshots, MS_REPO, list_name)
            check_md5(path, MD5[list_name])
            names[split] = read_split_list(path)
        return names
    unknown = sorted(n for n in ms.members if image_key(n)[0] not in CLASSES)
    if unknown:
        raise MMBenchError(f"{ms.path.name} holds an image of an unknown class: {unknown[0]}.")
    keys = {n: (CLASSES.index(image_key(n)[0]), image_key(n)[1]) for n in ms.members}  # (label, number)
    everything = sorted(ms.members, key=keys.__getitem__)
    labels = np.asarray([keys[n][0] for n in everything])
    indices = per_class_split(labels, random_state=1000 * int(scheme.removeprefix("discomkd-")))
    return {split: [everything[i] for i in idx] for split, idx in indices.items()}


@lru_cache(maxsize=4)
def _scaling(ms_version: tuple[Path, int, int], sar_version: tuple[Path, int, int],
             names: tuple[str, ...]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-band (2nd, 98th) percentiles of both halves over the images ``names``."""
    ms_zip, sar_zip = ms_version[0], sar_version[0]
    ms, sar = _indexes(ms_zip, sar_zip)
    return {"ms": band_percentiles(iter_members(ms_zip, (ms.members[n] for n in names), len(MS_BANDS)), len(MS_BANDS)),
            "sar": band_percentiles(iter_members(sar_zip, (sar.members[n] for n in names), len(SAR_BANDS)),
                                    len(SAR_BANDS))}


def _load_pair(ms_zip: Path, sar_zip: Path, scaling: dict[str, tuple[np.ndarray, np.ndarray]], pair: Pair) -> dict[str, Any]:
    return {"ms": rescale(read_member(ms_zip, pair.ms_member, len(MS_BANDS)), *scaling["ms"]),
            "sar": rescale(read_member(sar_zip, pair.sar_member, len(SAR_BANDS)), *scaling["sar"]),
            "label": pair.label, "name": pair.name}


def read_split(snapshots: dict[str, Path], split: str, options: dict[str, str]) -> LazyRows:
    """The paired, scaled images of ``split`` under the chosen split scheme and percentiles."""
    ms_zip, sar_zip = _snapshot(snapshots, MS_REPO, MS_ZIP), _snapshot(snapshots, SAR_REPO, SAR_ZIP)
    check_md5(ms_zip, MD5[MS_ZIP])
    ms, sar = _indexes(ms_zip, sar_zip)
    names = split_names(snapshots, options["split"], ms)
    pairs = {s: pair_by_name(n, ms, sar, CLASSES, f"the {s} split ({options['split']})") for s, n in names.items()}
    statistics_over = names["train"] if options["percentiles"] == "train" else [n for s in names.values() for n in s]
    scaling = _scaling(_version(ms_zip), _version(sar_zip), tuple(statistics_over))
    return LazyRows(pairs[split], partial(_load_pair, ms_zip, sar_zip, scaling))


def decode(row: dict[str, Any]) -> dict[str, np.ndarray]:
    return {"ms": row["ms"], "sar": row["sar"], "target": np.asarray(row["label"], dtype=np.int64)}


# DisCoM-KD: ResNet-18 from scratch (first convolution for 13 / 2 channels), Adam lr 1e-4, batch
# 128, 300 epochs, flips and 90° rotations.
# The official model (model_pytorch.py) keeps torchvision's 7×7 stride-2 stem and max-pool on
# every modality and input size (2×2 last maps at 64 px), hence stem=imagenet, not auto.
FULL = Recipe(epochs=300, batch_size=128, optimizer="adam", lr=1e-4, weight_decay=0.0, scheduler="none",
              backbone="resnet18", width=64, stem="imagenet", hflip=True, vflip=True, rot90=True)
SMOKE = CPU_SMOKE.but(epochs=10, batch_size=64, hflip=True, vflip=True, rot90=True, limit_train=2048, limit_eval=1024)


@hookimpl
def mmbench_datasets() -> list[DatasetSpec]:
    return [DatasetSpec(
        name="eurosat-mssar", description="EuroSAT Sentinel-2 MS (13 bands) paired by name with Sentinel-1 SAR (VV, VH)",
        modalities={"ms": len(MS_BANDS), "sar": len(SAR_BANDS)},
        source=HubFilesSource(repos=(HubRepo(MS_REPO, MS_REVISION, (MS_ZIP, *SPLIT_LISTS.values())),
                                     HubRepo(SAR_REPO, SAR_REVISION, (SAR_ZIP,))), read=read_split),
        decode=decode, splits=("train", "val", "test"),
        options={"split": SPLIT_OPTIONS, "percentiles": ("train", "all")}, standardize=False,
        release_sizes={"train": 16_200, "val": 5_400, "test": 5_400},  # the default torchgeo lists
        license="MIT (EuroSAT; EuroSAT-SAR)", homepage="https://github.com/phelber/EuroSAT",
        citation="Helber et al., EuroSAT, IEEE JSTARS 2019; Wang et al., Feature Guided Masked Autoencoder, 2023",
    )]


@hookimpl
def mmbench_tasks() -> list[TaskSpec]:
    return [TaskSpec(
        name="cls-eurosat-mssar", dataset="eurosat-mssar", kind="classification",
        description="10-class land cover from Sentinel-2 MS + Sentinel-1 SAR (EuroSAT), weighted F1, distillation ms -> sar",
        num_classes=len(CLASSES), class_names=CLASSES, input_size=(64, 64), val_split="val",
        metrics=("weighted_f1", "accuracy", "macro_f1"), cross_modal_teacher="ms",
        recipes={"smoke": SMOKE, "full": FULL},
    )]
