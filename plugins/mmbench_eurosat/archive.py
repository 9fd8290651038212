"""The EuroSAT archives as published on the hub: GeoTIFF members of a zip, read one by one with
``tifffile`` (the zips are never extracted), the split lists, and the pairing of the two halves
by file name.

The MS half (``torchgeo/eurosat``) holds ``EuroSATallBands.zip`` with
``ds/images/remote_sensing/otherDatasets/sentinel_2/tif/<Class>/<Class>_<n>.tif`` (13 bands,
B01 … B12 then B8A) and the split lists ``eurosat-{train,val,test}.txt``, one name per line
written with a ``.jpg`` extension (torchgeo reads them as ``.tif``). The SAR half
(``wangyi111/EuroSAT-SAR``) holds ``EuroSAT-SAR.zip`` with 2-band (VV, VH) float32 GeoTIFFs,
one per EuroSAT image, expected as ``EuroSAT-SAR/<Class>/<Class>_<n>.tif``; the reader indexes
its members by file name wherever they sit and says so when a member does not follow
``<Class>/<Class>_<n>.tif``.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from mmbench import MMBenchError

IMAGE_NAME = re.compile(r"^(?P<cls>[A-Za-z]+)_(?P<n>\d+)\.tif$")


def md5_of(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.md5()  # noqa: S324 - the published checksums are md5
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@cache
def _md5_of_version(path: Path, size: int, mtime_ns: int) -> str:
    return md5_of(path)


def check_md5(path: Path, expected: str) -> None:
    """``path`` has the published md5 (computed once per file version and process)."""
    stat = path.stat()
    found = _md5_of_version(path, stat.st_size, stat.st_mtime_ns)
    if found != expected:
        raise MMBenchError(f"{path.name} has md5 {found}, the pinned release has {expected}: the download is "
                           f"damaged or another file; delete {path.parent} from the hub cache and download it again.")


def image_key(name: str) -> tuple[str, int]:
    """``(class folder, image number)`` of ``<Class>_<n>.tif``, the order images are listed in."""
    match = IMAGE_NAME.match(name)
    if match is None:
        raise MMBenchError(f"'{name}' is not a EuroSAT image name '<Class>_<n>.tif'.")
    return match["cls"], int(match["n"])


def read_split_list(path: Path) -> list[str]:
    """Image names of a torchgeo split list, ``.jpg`` read as ``.tif`` (as torchgeo does)."""
    names = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if not line.endswith((".jpg", ".tif")):
            raise MMBenchError(f"{path.name}, line {number}: expected '<Class>_<n>.jpg', got '{line}'.")
        names.append(line.rsplit(".", 1)[0] + ".tif")
    return names


@dataclass(frozen=True)
class ZipIndex:
    """The ``.tif`` members of one zip, by file name."""

    path: Path
    members: Mapping[str, str]
    """``{<Class>_<n>.tif: member path}``."""


def index_zip(path: Path, prefix: str | None) -> ZipIndex:
    """Index the GeoTIFFs of ``path`` by file name. ``prefix``: the folder every image must sit in
    as ``<prefix><Class>/<Class>_<n>.tif``; ``None``: any folder whose last part is the class."""
    if not path.is_file():
        raise MMBenchError(f"{path} is missing from the hub snapshot; download the dataset again.")
    try:
        with zipfile.ZipFile(path) as archive:
            names = [info.filename for info in archive.infolist() if not info.is_dir()]
    except zipfile.BadZipFile:
        raise MMBenchError(f"{path} is not a readable zip archive; delete it from the hub cache and download it "
                           "again.") from None
    members: dict[str, str] = {}
    for member in names:
        if not member.lower().endswith((".tif", ".tiff")):
            continue
        parts = member.split("/")
        file_name, folder = parts[-1], parts[-2] if len(parts) > 1 else ""
        match = IMAGE_NAME.match(file_name)
        where = member[: len(member) - len(file_name) - len(folder) - 1] if folder else ""
        if match is None or match["cls"] != folder or (prefix is not None and where != prefix):
            expected = f"{prefix or '<folder>/'}<Class>/<Class>_<n>.tif"
            raise MMBenchError(f"{path.name}: member '{member}' does not follow the layout {expected}; "
                               "is this the pinned release?")
        if file_name in members:
            raise MMBenchError(f"{path.name} holds {file_name} twice ({members[file_name]} and {member}); "
                               "images are paired by name, which needs unique names.")
        members[file_name] = member
    if not members:
        raise MMBenchError(f"{path.name} holds no GeoTIFF image; is this the pinned release?")
    return ZipIndex(path, members)


@dataclass(frozen=True)
class Pair:
    name: str
    ms_member: str
    sar_member: str
    label: int


def pair_by_name(names: Sequence[str], ms: ZipIndex, sar: ZipIndex, classes: Sequence[str], what: str) -> list[Pair]:
    """The MS and SAR members of each image in ``names``, matched by file name (never by
    position). An image without exactly one partner in either zip is an error naming the count and
    the first ones missing."""
    label_of = {c: i for i, c in enumerate(classes)}
    for index, label in ((ms, "MS"), (sar, "SAR")):
        missing = [n for n in names if n not in index.members]
        if missing:
            raise MMBenchError(f"{len(missing)} of {len(names)} images of {what} have no {label} image in "
                               f"{index.path.name} (first: {', '.join(missing[:3])}); is this the pinned release?")
    pairs = []
    for name in names:
        cls, _ = image_key(name)
        if cls not in label_of:
            raise MMBenchError(f"{name} ({what}) is of class '{cls}', not one of {', '.join(classes)}.")
        pairs.append(Pair(name, ms.members[name], sar.members[name], label_of[cls]))
    return pairs


def pairing_report(ms: ZipIndex, sar: ZipIndex) -> dict[str, object]:
    """How the two halves pair up: image counts, pairs, and the first unpaired names of each."""
    only_ms = sorted(set(ms.members) - set(sar.members), key=image_key)
    only_sar = sorted(set(sar.members) - set(ms.members), key=image_key)
    return {"ms_images": len(ms.members), "sar_images": len(sar.members),
            "pairs": len(set(ms.members) & set(sar.members)),
            "ms_without_sar": len(only_ms), "sar_without_ms": len(only_sar),
            "first_ms_without_sar": only_ms[:3], "first_sar_without_ms": only_sar[:3]}


_open_zips = threading.local()


def _archive(path: Path) -> zipfile.ZipFile:
    """An open handle of ``path`` per thread (members are read one at a time as caches build)."""
    handles = _open_zips.__dict__.setdefault("handles", {})
    if path not in handles:
        handles[path] = zipfile.ZipFile(path)
    return handles[path]


def read_member(path: Path, member: str, bands: int) -> np.ndarray:
    """One GeoTIFF member as ``[bands, H, W]`` in its stored dtype (band-interleaved or planar)."""
    import tifffile

    try:
        array = tifffile.imread(io.BytesIO(_archive(path).read(member)))
    except Exception as exc:  # tifffile raises several error types for a damaged file
        raise MMBenchError(f"{path.name}: member '{member}' is not a readable GeoTIFF ({type(exc).__name__}); "
                           "delete the archive from the hub cache and download it again.") from None
    if array.ndim == 3 and array.shape[0] == bands:
        return array
    if array.ndim == 3 and array.shape[-1] == bands:
        return np.moveaxis(array, -1, 0)
    raise MMBenchError(f"{path.name}: member '{member}' has shape {array.shape}, expected {bands} bands.")


def iter_members(path: Path, members: Iterable[str], bands: int) -> Iterable[np.ndarray]:
    for member in members:
        yield read_member(path, member, bands)
