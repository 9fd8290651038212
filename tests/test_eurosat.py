"""cls-eurosat-mssar through its real hub code path, offline: both repositories at their pinned
revisions in a pre-populated hub cache, with zips of GeoTIFFs at the releases' member paths and
torchgeo's split lists (conftest.write_eurosat_hub_fixture). Pairing by name, DisCoM-KD's
percentile scaling and splits (against scikit-learn's output and numpy.percentile), the options'
reach into caches, run ids and records, and every one-line error."""

from __future__ import annotations

import mmbench_eurosat as plugin
import numpy as np
import pytest
from mmbench_eurosat.archive import index_zip, pair_by_name, pairing_report, read_member
from mmbench_eurosat.scaling import band_percentiles, rescale

from conftest import (
    EUROSAT_PER_CLASS,
    EUROSAT_SPLITS,
    one_line_error,
    run_cli,
    sar_fill,
    smoke_epoch,
    write_eurosat_hub_fixture,
)
from mmbench import per_class_split
from mmbench.errors import MMBenchError

TRAIN = len(plugin.CLASSES) * len(EUROSAT_SPLITS["train"])
TORCHGEO = {"split": "torchgeo", "percentiles": "train"}


@pytest.fixture
def snapshots(monkeypatch):
    return write_eurosat_hub_fixture(monkeypatch)


def zips(snapshots):
    return snapshots[plugin.MS_REPO] / plugin.MS_ZIP, snapshots[plugin.SAR_REPO] / plugin.SAR_ZIP


def test_halves_are_paired_by_name_not_by_position(snapshots):
    ms_zip, sar_zip = zips(snapshots)
    ms, sar = index_zip(ms_zip, plugin.MS_PREFIX), index_zip(sar_zip, None)
    assert list(sar.members) != list(ms.members)  # stored in another order: pairing by position would mispair
    pairs = pair_by_name(sorted(ms.members), ms, sar, plugin.CLASSES, "every image")
    for pair in pairs:
        cls, number = pair.name.removesuffix(".tif").split("_")
        assert pair.label == plugin.CLASSES.index(cls)
        vv = read_member(sar_zip, pair.sar_member, 2)[0]
        assert np.allclose(vv, sar_fill(pair.label, int(number)))
        assert read_member(ms_zip, pair.ms_member, 13).shape == (13, 64, 64)  # stored (64, 64, 13)
    report = pairing_report(ms, sar)
    assert report["pairs"] == report["ms_images"] == report["sar_images"] == len(plugin.CLASSES) * EUROSAT_PER_CLASS


def test_an_image_without_its_sar_partner_is_an_error_naming_it(monkeypatch):
    snapshots = write_eurosat_hub_fixture(monkeypatch, drop_sar=("Forest_2.tif", "River_1.tif"))
    with pytest.raises(MMBenchError, match=r"^2 of 80 images of the train split \(torchgeo\) have no SAR image in "
                                           r"EuroSAT-SAR.zip \(first: Forest_2.tif, River_1.tif\)"):
        plugin.read_split(snapshots, "train", TORCHGEO)
    ms, sar = (index_zip(z, p) for z, p in zip(zips(snapshots), (plugin.MS_PREFIX, None), strict=True))
    assert pairing_report(ms, sar)["first_ms_without_sar"] == ["Forest_2.tif", "River_1.tif"]


def test_the_ms_zip_and_split_lists_are_checked_against_their_md5(snapshots, monkeypatch):
    monkeypatch.setitem(plugin.MD5, plugin.MS_ZIP, "0" * 32)
    with pytest.raises(MMBenchError, match=r"EuroSATallBands.zip has md5 [0-9a-f]{32}, the pinned release has 0{32}"):
        plugin.read_split(snapshots, "train", TORCHGEO)


def test_a_member_outside_the_release_layout_is_an_error(snapshots, tmp_path):
    import zipfile

    bad = tmp_path / "EuroSAT-SAR.zip"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("EuroSAT-SAR/Forest/River_3.tif", b"")
    with pytest.raises(MMBenchError, match="member 'EuroSAT-SAR/Forest/River_3.tif' does not follow the layout"):
        index_zip(bad, None)


def test_histogram_percentiles_equal_numpy():
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 3000, size=(3, 7, 5), dtype=np.uint16) for _ in range(9)]
    images.append(np.full((3, 7, 5), 65535, dtype=np.uint16))
    low, high = band_percentiles(images, 3)
    stacked = np.stack(images).astype(np.float64)
    for band in range(3):
        np.testing.assert_allclose([low[band], high[band]], np.percentile(stacked[:, band], [2, 98]), rtol=1e-12)
    floats = [rng.normal(-12, 5, size=(2, 4, 4)).astype(np.float32) for _ in range(5)]
    low, high = band_percentiles(floats, 2)
    np.testing.assert_allclose(low, np.percentile(np.stack(floats)[:, :, :, :], 2, axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(high, np.percentile(np.stack(floats), 98, axis=(0, 2, 3)), rtol=1e-6)


def test_rescale_is_the_official_clip_of_the_percentile_range():
    image = np.array([[[0.0, 5.0, 10.0, 20.0]], [[3.0, 3.0, 3.0, 3.0]]], dtype=np.float32)
    scaled = rescale(image, np.array([5.0, 3.0]), np.array([15.0, 3.0]))
    np.testing.assert_array_equal(scaled[0], [[0.0, 0.0, 0.5, 1.0]])
    np.testing.assert_array_equal(scaled[1], [[0.0, 0.0, 0.0, 0.0]])  # constant band: 0, not NaN


@pytest.mark.parametrize("statistics", ["train", "all"])
def test_rows_are_scaled_with_the_chosen_split_percentiles(snapshots, statistics):
    ms_zip, sar_zip = zips(snapshots)
    ms, sar = index_zip(ms_zip, plugin.MS_PREFIX), index_zip(sar_zip, None)
    splits = ("train",) if statistics == "train" else tuple(EUROSAT_SPLITS)
    names = [f"{c}_{n}.tif" for s in splits for c in plugin.CLASSES for n in EUROSAT_SPLITS[s]]
    raw_ms = np.stack([read_member(ms_zip, ms.members[n], 13) for n in names]).astype(np.float64)
    raw_sar = np.stack([read_member(sar_zip, sar.members[n], 2) for n in names]).astype(np.float64)
    rows = plugin.read_split(snapshots, "test", {"split": "torchgeo", "percentiles": statistics})
    assert len(rows) == len(plugin.CLASSES) * len(EUROSAT_SPLITS["test"])
    row = next(iter(rows))
    raw = read_member(ms_zip, ms.members[row["name"]], 13).astype(np.float64)
    low, high = np.percentile(raw_ms, [2, 98], axis=(0, 2, 3))
    expected = np.clip((raw - low[:, None, None]) / (high - low)[:, None, None], 0, 1)
    np.testing.assert_allclose(row["ms"], expected, atol=1e-6)
    vv_low, vv_high = np.percentile(raw_sar[:, 0], [2, 98])
    label, number = row["label"], int(row["name"].removesuffix(".tif").split("_")[1])
    assert np.allclose(row["sar"][0], np.clip((sar_fill(label, number) - vv_low) / (vv_high - vv_low), 0, 1), atol=1e-6)


# scikit-learn 1.9.1's output of the official createSplits.createSplit(labels, 0.7, 0.1, rs=1000·i)
# for labels = [0]*10 + [1]*7 + [2]*5 (class 0 gets no validation image: int(10 * (0.7 + 0.1)) is 7).
SKLEARN_SPLITS = {
    0: ([2, 8, 4, 9, 1, 6, 7, 16, 12, 11, 13, 19, 17, 18], [10], [3, 0, 5, 15, 14, 20, 21]),
    3: ([4, 9, 7, 0, 2, 5, 6, 16, 15, 12, 11, 19, 18, 17], [10], [1, 8, 3, 13, 14, 20, 21]),
}


@pytest.mark.parametrize("repetition", sorted(SKLEARN_SPLITS))
def test_discomkd_split_equals_the_official_sklearn_split(repetition):
    labels = np.repeat(np.arange(3), [10, 7, 5])
    split = per_class_split(labels, random_state=1000 * repetition)
    assert tuple(split[s].tolist() for s in ("train", "val", "test")) == SKLEARN_SPLITS[repetition]


def test_discomkd_split_option_partitions_the_sorted_images(snapshots):
    sizes = {s: len(plugin.read_split(snapshots, s, {"split": "discomkd-2", "percentiles": "train"}))
             for s in ("train", "val", "test")}
    per_class = {"train": int(12 * 0.7), "val": int(12 * (0.7 + 0.1)) - int(12 * 0.7)}
    per_class["test"] = 12 - per_class["train"] - per_class["val"]
    assert sizes == {s: n * len(plugin.CLASSES) for s, n in per_class.items()}
    names = {s: {r["name"] for r in plugin.read_split(snapshots, s, {"split": "discomkd-2", "percentiles": "train"})}
             for s in ("train", "test")}
    assert not names["train"] & names["test"]


def test_options_enter_the_run_id_cache_and_record(snapshots, tmp_path):
    from mmbench.artifacts import ArtifactCache
    from mmbench.engine.runner import Runner
    from mmbench.plan import plan_run
    from mmbench.plugins import Registry

    registry = Registry.load()
    fast = {"recipe.epochs": "1", "recipe.width": "8", "recipe.batch_size": "16", "recipe.limit_train": "32",
            "recipe.limit_eval": "16"}
    default = plan_run(registry, "fusion", "cls-eurosat-mssar", 0, fast)
    other = plan_run(registry, "fusion", "cls-eurosat-mssar", 0, {**fast, "dataset.percentiles": "all"})
    assert default.dataset_options == TORCHGEO and other.dataset_options["percentiles"] == "all"
    assert default.run_id != other.run_id
    runner = Runner(registry, out=tmp_path / "runs", device="cpu", artifacts=ArtifactCache(tmp_path / "artifacts"))
    record, _ = runner.run(other)
    assert record.dataset.options == {"split": "torchgeo", "percentiles": "all"}
    assert record.dataset.source == "hub-files" and record.dataset.repo == f"{plugin.MS_REPO}+{plugin.SAR_REPO}"
    assert record.dataset.revision == f"{plugin.MS_REVISION}+{plugin.SAR_REVISION}"
    assert set(record.metrics["best"]) == {"ms+sar", "ms", "sar"}


@pytest.mark.parametrize("option, message", [
    ("dataset.split=random", "invalid value dataset.split='random' for dataset 'eurosat-mssar': choose one of torchgeo, "
                             "discomkd-0"),
    ("dataset.bands=rgb", "unknown option dataset.bands for dataset 'eurosat-mssar'; valid: dataset.revision, "
                          "dataset.split, dataset.percentiles."),
    ("dataset.revision=main", "dataset.revision applies to single-repository hub datasets only"),
])
def test_bad_dataset_options_are_one_line_errors(option, message, tmp_path):
    result = run_cli("run", "--method", "fusion", "--task", "cls-eurosat-mssar", "--set", option, "--out", str(tmp_path))
    assert message in one_line_error(result)


def test_an_uncached_repository_says_how_to_get_it(tmp_path):
    result = run_cli("run", "--method", "fusion", "--task", "cls-eurosat-mssar", "--out", str(tmp_path / "runs"),
                     env={"HF_HOME": str(tmp_path / "empty-hf"), "HF_HUB_CACHE": str(tmp_path / "empty-hf" / "hub"),
                          "MMBENCH_HOME": str(tmp_path / "home")})  # no data cache built by an earlier test
    line = one_line_error(result)
    assert f"dataset {plugin.MS_REPO}@{plugin.MS_REVISION[:12]} is not in the local hub cache" in line
    assert "connect once to download it" in line


@pytest.mark.slow
@pytest.mark.parametrize("method, scenario", [("fusion", None), ("discomkd", None), ("dkd", "cross-modal"),
                                              ("dkd", "multi-modal")])
def test_one_smoke_epoch_trains_offline(method, scenario, snapshots, tmp_path):
    record = smoke_epoch("cls-eurosat-mssar", method, scenario, tmp_path)
    assert record.status == "completed" and record.dataset.sizes["train"] == TRAIN
    if method == "dkd":
        teacher = {"cross-modal": ["ms"], "multi-modal": ["ms", "sar"]}[scenario]
        assert record.distillation.teacher == teacher and set(record.metrics["best"]) == {"sar"}
