"""The data path: hub snapshot (offline, pre-populated cache) → datasets → memory-mapped cache."""

import os
from pathlib import Path

import numpy as np
import pytest

from mmbench import DatasetSpec, HubSource, LocalSource, Recipe, TaskSpec
from mmbench.data.arrays import ArrayBatches, load_task_data, make_loader
from mmbench.errors import MMBenchError

SHA = "0123456789abcdef0123456789abcdef01234567"
REPO = "mmbench-tests/tiny-rgbd-seg"


def hub_cache() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


@pytest.fixture(scope="module")
def hub_fixture():
    """A tiny RGB-D segmentation repo in the exact hub layout (refs/main + snapshots/<sha>), with
    16-bit depth PNGs and 8-bit label PNGs where 0 = void, and a `teset`-style split name."""
    import datasets
    from PIL import Image

    root = hub_cache() / f"datasets--{REPO.replace('/', '--')}"
    snapshot = root / "snapshots" / SHA
    (snapshot / "data").mkdir(parents=True, exist_ok=True)
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(SHA)
    rng = np.random.default_rng(0)
    features = datasets.Features({"image": datasets.Image(), "depth": datasets.Image(), "label": datasets.Image()})
    for split, count in (("train", 12), ("teset", 6)):
        rows = {"image": [], "depth": [], "label": []}
        for _ in range(count):
            rows["image"].append(Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)))
            rows["depth"].append(Image.fromarray(rng.integers(500, 9000, (24, 32)).astype(np.uint16)))
            rows["label"].append(Image.fromarray(rng.integers(0, 4, (24, 32)).astype(np.uint8)))
        datasets.Dataset.from_dict(rows, features=features).to_parquet(str(snapshot / "data" / f"{split}-00000-of-00001.parquet"))
    (snapshot / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n"
                                        "    path: data/train-*\n  - split: teset\n    path: data/teset-*\n---\n")
    return snapshot


def decode(row):
    depth = np.asarray(row["depth"])
    assert depth.dtype == np.uint16  # 16-bit PNG decodes to I;16 -> uint16
    label = np.asarray(row["label"]).astype(np.int64) - 1  # 0 = void -> -1 -> ignore 255
    return {
        "rgb": np.asarray(row["image"], dtype=np.float32).transpose(2, 0, 1) / 255,
        "depth": depth[None].astype(np.float32) / 1000,
        "target": np.where(label < 0, 255, label),
    }


def specs(revision=SHA, size=(16, 16)):
    dataset = DatasetSpec(
        name="tiny-rgbd-seg", description="test", modalities={"rgb": 3, "depth": 1},
        source=HubSource(REPO, revision, data_files={"train": "data/train-*.parquet", "test": "data/teset-*.parquet"},
                         allow_patterns=("data/*", "README.md")),
        decode=decode, splits=("train", "test"),
    )
    task = TaskSpec(name="tiny-seg", description="test", dataset="tiny-rgbd-seg", kind="segmentation",
                    num_classes=3, ignore_index=255, input_size=size, recipes={"smoke": Recipe()})
    return task, dataset


def test_hub_dataset_loads_offline_through_snapshot(hub_fixture):
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    task, dataset = specs()
    data = load_task_data(task, dataset, Recipe(limit_eval=4))
    assert data.revision == SHA
    assert data.shapes == {"rgb": (3, 16, 16), "depth": (1, 16, 16)}  # resized once into the cache
    assert len(data.train) + len(data.val) == 12 and len(data.val) == 1  # val carved from train
    assert len(data.test) == 4
    batch = next(iter(make_loader(ArrayBatches(data.test, data.stats, data.modalities), 4, shuffle=False)))
    assert batch["rgb"].dtype.is_floating_point and batch["target"].shape == (4, 16, 16)
    assert set(batch["target"].unique().tolist()) <= {0, 1, 2, 255}
    train = ArrayBatches(data.train, data.stats, data.modalities)
    everything = train[list(range(len(train)))]
    assert abs(float(everything["depth"].mean())) < 0.2  # normalised with train statistics


def test_uncached_revision_is_a_clear_error(hub_fixture):
    task, dataset = specs(revision="f" * 40)
    with pytest.raises(MMBenchError, match="is not in the local hub cache"):
        load_task_data(task, dataset, Recipe())


def test_labels_outside_the_task_are_rejected(hub_fixture):
    task, dataset = specs(size=(8, 8))
    task = TaskSpec(**{**task.__dict__, "num_classes": 2})
    with pytest.raises(MMBenchError, match=r"labels \[2\] outside 0..1"):
        load_task_data(task, dataset, Recipe())


def test_split_sizes_are_checked_against_the_spec(hub_fixture):
    task, dataset = specs()
    dataset = DatasetSpec(**{**dataset.__dict__, "expected_sizes": {"train": 795, "test": 6}})
    with pytest.raises(MMBenchError, match="split 'train' has 12 samples .* the spec expects 795"):
        load_task_data(task, dataset, Recipe())


def test_cache_is_built_once_and_reused(hub_fixture, monkeypatch):
    task, dataset = specs(size=(12, 12))
    load_task_data(task, dataset, Recipe())
    import mmbench.data.cache as cache

    monkeypatch.setattr(cache, "split_rows", lambda *a, **k: pytest.fail("cache was rebuilt"))
    data = load_task_data(task, dataset, Recipe())
    assert isinstance(data.train.arrays["rgb"], np.memmap)


def test_validation_carve_is_fixed_across_runs(hub_fixture):
    task, dataset = specs()
    one = load_task_data(task, dataset, Recipe())
    two = load_task_data(task, dataset, Recipe(limit_train=5))
    assert one.val.indices.tolist() == two.val.indices.tolist()
    assert set(two.train.indices) <= set(one.train.indices) and len(two.train) == 5
    assert not set(one.val.indices) & set(one.train.indices)


def test_local_dataset_missing_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("MMBENCH_DATA", raising=False)
    source = LocalSource(subdir="CASIA-SURF", how_to_get="Request it from the CASIA-SURF authors.",
                         read=lambda root, split: [], check=lambda root: "no train list")
    dataset = DatasetSpec(name="surf", description="", modalities={"rgb": 3}, source=source, decode=decode)
    task = TaskSpec(name="surf", description="", dataset="surf", kind="anti-spoofing", num_classes=2,
                    recipes={"smoke": Recipe()})
    with pytest.raises(MMBenchError, match="must be supplied by you: Request it"):
        load_task_data(task, dataset, Recipe())
    with pytest.raises(MMBenchError, match="not found at"):
        load_task_data(task, dataset, Recipe(), data_dir=tmp_path)
    (tmp_path / "CASIA-SURF").mkdir()
    with pytest.raises(MMBenchError, match="expected layout: no train list"):
        load_task_data(task, dataset, Recipe(), data_dir=tmp_path)


def test_damaged_cache_is_a_clear_error(hub_fixture):
    from mmbench.data.cache import build_split_cache

    task, dataset = specs(size=(10, 10))
    directory = build_split_cache(dataset, task, "train", SHA)
    (directory / "rgb.npy").write_bytes(b"garbage")
    with pytest.raises(MMBenchError, match="is damaged"):
        load_task_data(task, dataset, Recipe())


def test_channel_stats_match_numpy():
    from mmbench.data.cache import ChannelStats

    rng = np.random.default_rng(0)
    images = rng.normal(3.0, 2.0, size=(5, 2, 4, 4))
    stats = ChannelStats()
    for image in images:
        stats.update(image)
    result = stats.result()
    np.testing.assert_allclose(result["mean"], images.mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(result["std"], images.std(axis=(0, 2, 3)))
    vectors = ChannelStats()
    for vector in images.reshape(5, -1):
        vectors.update(vector)
    np.testing.assert_allclose(vectors.result()["mean"], images.reshape(5, -1).mean(axis=0))
