"""``recipe.resolution=native``: samples cached as decoded (sizes differ), ESANet's rescale + crop
from each sample's own size, predictions scored at the labels' own size; and the face recipes'
training cache at the official 144-px resize."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import (
    SUN_FIXTURE_SHAPES,
    one_line_error,
    run_cli,
    tiny_hub_sizes,
    write_sunrgbd_hub_fixture,
)
from mmbench.data.augment import face_rotate_crop, recipe_view, scale_crop
from mmbench.data.class_weights import label_frequencies
from mmbench.data.native import RaggedImages, build_native_cache, open_native_cache
from mmbench.errors import MMBenchError
from mmbench.metrics import SegmentationMeter
from mmbench.specs import Recipe


def ramps(height: int, width: int, count: int = 1) -> dict[str, torch.Tensor]:
    """rgb channel 0 = column, channel 1 = row; depth = row; label = column."""
    rows, cols = torch.meshgrid(torch.arange(height).float(), torch.arange(width).float(), indexing="ij")
    return {"rgb": torch.stack([cols, rows, cols]).expand(count, -1, -1, -1).clone(),
            "depth": rows.expand(count, 1, -1, -1).clone(), "target": cols.long().expand(count, -1, -1).clone()}


def test_a_zoomed_image_larger_than_the_input_is_cropped_at_an_esanet_offset():
    torch.manual_seed(0)
    batch = ramps(40, 50, count=16)
    out = scale_crop(batch, ["rgb", "depth", "target"], (1.0, 1.0), size=(24, 32))
    assert out["rgb"].shape == (16, 3, 24, 32) and out["target"].shape == (16, 24, 32)
    dx = out["rgb"][:, 0, 0, 0].round()  # scale 1: a plain crop, the offset = the first pixel's value
    dy = out["rgb"][:, 1, 0, 0].round()
    assert torch.allclose(out["rgb"][:, 0], dx[:, None, None] + torch.arange(32.0), atol=1e-4)
    assert torch.allclose(out["depth"][:, 0], dy[:, None, None] + torch.arange(24.0)[:, None], atol=1e-4)
    assert dx.min() >= 0 and dx.max() <= 50 - 32 - 1 and dy.max() <= 40 - 24 - 1  # np.random.randint(0, h - crop)
    assert len(set(dx.tolist())) > 4  # the offsets are random
    assert torch.equal(out["target"].float(), out["rgb"][:, 0].round())


def test_a_zoomed_image_not_larger_than_the_input_is_resized_to_it():
    """ESANet's RandomCrop: ``if h <= crop_height or w <= crop_width`` the zoomed image is resized
    to the crop size (the whole image, aspect not kept) instead of cropped."""
    batch = ramps(20, 40, count=2)
    out = scale_crop(batch, ["rgb", "target"], (1.0, 1.0), size=(24, 32))  # 20 ≤ 24: resize
    u = torch.arange(4, 28).float()
    assert torch.allclose(out["rgb"][:, 0, 5, 4:28], (u + 0.5) * 40 / 32 - 0.5, atol=1e-4)
    v = torch.arange(3, 21).float()
    assert torch.allclose(out["rgb"][:, 1, 3:21, 5], (v + 0.5) * 20 / 24 - 0.5, atol=1e-4)


def test_padded_samples_are_zoomed_from_their_own_extent_and_never_sample_the_padding():
    torch.manual_seed(1)
    small, large = ramps(30, 40), ramps(36, 48)
    padded = {k: torch.cat([torch.nn.functional.pad(small[k].float(), (0, 8, 0, 6), value=-100.0).to(small[k].dtype),
                            large[k]]) for k in small}
    extents = torch.tensor([[30, 40], [36, 48]])
    for _ in range(20):
        out = scale_crop(padded, ["rgb", "depth", "target"], (1.0, 1.4), size=(24, 32), extents=extents)
        assert out["target"].min() >= 0 and out["target"][0].max() <= 39  # never the padding, never beyond 40 columns
        assert out["rgb"].min() >= -0.5 and out["rgb"][0, 0].max() <= 39.5
        assert (out["rgb"][:, 0].round() - out["target"]).abs().max() <= 1  # registered


def test_recipe_view_brings_native_batches_to_the_input_size_and_drops_the_extents():
    batch = {**ramps(36, 48, count=2), "extent": torch.tensor([[30, 40], [36, 48]])}
    out = recipe_view(batch, ("rgb", "depth"), Recipe(resolution="native", scale_range=(1.0, 1.4), hflip=True),
                      dense_target=True, ignore_index=255, input_size=(24, 32))
    assert out["rgb"].shape[-2:] == (24, 32) and out["target"].shape[-2:] == (24, 32) and "extent" not in out


def test_face_geometry_from_the_144_cache_crops_112():
    """At 0°: the 115-px centre region of the 144 image (from 14.5 px), cropped at offset ∈ {0, 1, 2}."""
    torch.manual_seed(0)
    ramp = torch.arange(144).float().expand(6, 1, 144, -1).clone()
    out = face_rotate_crop({"x": ramp, "target": torch.zeros(6)}, ["x"], 144, 0, crop=112)["x"]
    assert out.shape == (6, 1, 112, 112)
    offsets = out[:, 0, 50, 10:100] - 14.5 - torch.arange(10, 100).float()
    assert torch.allclose(offsets, offsets.round(), atol=1e-3) and offsets.std(dim=1).max() < 1e-3
    assert set(offsets.round()[:, 0].tolist()) <= {0.0, 1.0, 2.0}


def test_native_meter_scores_each_prediction_resized_to_its_own_label():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 6, 8)
    target = torch.full((2, 12, 20), 255)
    target[0, :12, :16] = torch.randint(0, 3, (12, 16))
    target[1, :9, :20] = torch.randint(0, 3, (9, 20))
    extents = torch.tensor([[12, 16], [9, 20]])
    meter = SegmentationMeter(3, 255)
    meter.update_native(logits, target, extents)
    expected = SegmentationMeter(3, 255)
    for i, (h, w) in enumerate(extents.tolist()):
        resized = torch.nn.functional.interpolate(logits[i:i + 1], (h, w), mode="bilinear", align_corners=False)
        expected.update(resized, target[i:i + 1, :h, :w])
    assert torch.equal(meter.matrix, expected.matrix) and meter.matrix.sum() == 12 * 16 + 9 * 20


@pytest.fixture
def sun_native(monkeypatch, tmp_path):
    monkeypatch.setenv("MMBENCH_HOME", str(tmp_path / "home"))
    write_sunrgbd_hub_fixture()
    tiny_hub_sizes(monkeypatch)
    from mmbench.plugins import Registry

    registry = Registry.load()
    return registry.task("seg-sunrgbd"), registry.dataset("sunrgbd-seg")


def test_the_native_cache_keeps_every_sample_at_its_decoded_size(sun_native):
    task, dataset = sun_native
    directory = build_native_cache(dataset, task, "train", dataset.revision, ("rgb", "depth", "target"))
    arrays, meta = open_native_cache(directory, task.ignore_index)
    expected = [SUN_FIXTURE_SHAPES[i % 3] for i in range(6)] * 2  # two parquet shards of six rows
    assert [tuple(e) for e in arrays["rgb"].extents] == expected and meta["count"] == 12
    batch = arrays["target"][np.arange(3)]
    assert batch.shape == (3, 33, 46) and arrays["rgb"][np.arange(3)].shape == (3, 3, 33, 46)
    assert (batch[1, 27:] == 255).all() and (batch[1, :, 36:] == 255).all()  # labels padded with the ignore index
    rgb = arrays["rgb"][np.array([1])][0]
    assert np.array_equal(rgb[:, :27, 36:], np.repeat(rgb[:, :27, 35:36], 10, axis=2))  # images by their edge
    pixels, image_pixels = label_frequencies(arrays["target"], np.arange(12), task.num_classes)
    manual_pixels, manual_image = np.zeros(task.num_classes, np.int64), np.zeros(task.num_classes, np.int64)
    for row in range(12):
        label = arrays["target"].sample(row)
        counts = np.bincount(label[label != 255].astype(np.int64), minlength=task.num_classes)
        manual_pixels += counts
        manual_image += (counts > 0) * label.size  # ESANet: h · w of the image as read
    assert np.array_equal(pixels, manual_pixels) and np.array_equal(image_pixels, manual_image)


def test_a_damaged_native_cache_is_one_line(sun_native):
    task, dataset = sun_native
    directory = build_native_cache(dataset, task, "test", dataset.revision, ("target",))
    (directory / "target.bin").write_bytes(b"\0" * 10)
    with pytest.raises(MMBenchError, match="native data cache .* is damaged"):
        open_native_cache(directory, task.ignore_index)


def test_ragged_reads_are_the_samples():
    extents = np.array([[2, 3], [3, 2]])
    values = np.arange(2 * 3 + 3 * 2, dtype=np.float16)

    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "x.bin"
        file.write_bytes(values.tobytes())
        images = RaggedImages(file, np.float16, 1, extents, label=False, pad_label=0)
        assert images.shape == (2, 1, 3, 3) and images.ndim == 4
        assert np.array_equal(images.sample(1)[0], values[6:].reshape(3, 2))
        assert np.array_equal(images[np.array([0])][0, 0], [[0, 1, 2], [3, 4, 5], [3, 4, 5]])


@pytest.mark.slow
def test_a_native_sun_rgbd_run_trains_from_the_decoded_sizes_and_scores_at_them(sun_native, tmp_path):
    from conftest import make_runner
    from mmbench.plan import plan_run
    from mmbench.plugins import Registry

    registry = Registry.load()
    overrides = {"recipe.epochs": "1", "recipe.width": "8", "recipe.batch_size": "4", "recipe.input_scale": "0.5",
                 "recipe.resolution": "native", "recipe.scale_range": "1.0,1.4", "recipe.hsv_jitter": "0.1",
                 "recipe.class_weighting": "median-frequency", "recipe.limit_train": "none",
                 "recipe.limit_eval": "none"}
    record, _ = make_runner(registry, tmp_path).run(plan_run(registry, "fusion", "seg-sunrgbd", 0, overrides))
    assert record.recipe["resolution"] == "native" and set(record.metrics["best"]) == {"rgb+depth", "rgb", "depth"}
    assert all(np.isfinite(m["miou"]) for m in record.metrics["best"].values())
    caches = sorted(p.name.split("-")[1] for p in (tmp_path / "home" / "cache").rglob("*-native-*"))
    assert caches == ["native", "native"]  # the training samples and the test labels


def test_native_resolution_needs_a_segmentation_task_and_a_rescale(tmp_path):
    done = run_cli("run", "--method", "fusion", "--task", "synth-rgbd-cls", "--set", "recipe.resolution=native",
                   "--set", "recipe.scale_range=1.0,1.4", "--out", str(tmp_path))
    assert done.returncode == 2 and "segmentation" in one_line_error(done)
    done = run_cli("run", "--method", "fusion", "--task", "synth-rgbd-seg", "--set", "recipe.resolution=native",
                   "--out", str(tmp_path))
    assert done.returncode == 2 and "recipe.scale_range" in one_line_error(done)
    done = run_cli("run", "--method", "fusion", "--task", "synth-rgbd-seg", "--set", "recipe.face_augmentation=144,30",
                   "--out", str(tmp_path))
    assert done.returncode == 2 and "face_augmentation" in one_line_error(done)
    assert not any(tmp_path.rglob("*.json"))


def test_face_recipes_train_from_the_144_resize(tmp_path, monkeypatch):
    from conftest import make_casia_release, make_runner
    from mmbench.plan import plan_run
    from mmbench.plugins import Registry

    monkeypatch.setenv("MMBENCH_HOME", str(tmp_path / "home"))
    data = make_casia_release(tmp_path / "data").parent
    registry = Registry.load()
    overrides = {"recipe.epochs": "1", "recipe.width": "8", "recipe.batch_size": "8", "recipe.input_scale": "0.5",
                 "recipe.face_augmentation": "144,30", "recipe.limit_train": "none", "recipe.limit_eval": "none"}
    record, _ = make_runner(registry, tmp_path, data_dir=str(data)).run(
        plan_run(registry, "fusion", "cls-casia-surf", 0, overrides))
    assert record.metrics["best"]
    sides = sorted(json.loads(meta.read_text())["shapes"]["rgb"][-1]
                   for meta in (tmp_path / "home" / "cache").rglob("train-*/meta.json"))
    assert sides == [56, 72]  # the input size (112 · 0.5) and the face code's resize (144 · 0.5)


@pytest.mark.slow
def test_a_full_profile_cityscapes_run_takes_a_step_from_2048x1024(tmp_path, monkeypatch):
    """seg-cityscapes ``--profile full`` on a tree of 2048×1024 images: ESANet-R34-NBt1D trains on
    crops of 1024×512 from the native images (rescaled 0.5-2.0) and is scored at 2048×1024."""
    from test_esanet import esanet_nbt1d_file

    from conftest import make_cityscapes_tree, make_runner
    from mmbench.plan import plan_run
    from mmbench.plugins import Registry

    monkeypatch.setenv("MMBENCH_HOME", str(tmp_path / "home"))
    make_cityscapes_tree(tmp_path / "data", size=(1024, 2048), counts=(3, 1))
    registry = Registry.load()
    overrides = {"recipe.epochs": "1", "recipe.batch_size": "2", "recipe.eval_batch_size": "1",
                 "recipe.weights": str(esanet_nbt1d_file(tmp_path)[0])}
    plan = plan_run(registry, "esanet", "seg-cityscapes", 0, overrides, "full")
    record, _ = make_runner(registry, tmp_path, data_dir=str(tmp_path / "data")).run(plan)
    assert record.status == "completed" and record.recipe["resolution"] == "native"
    assert tuple(record.recipe["scale_range"]) == (0.5, 2.0) and len(record.curves) == 1
    native = sorted((tmp_path / "home" / "cache").rglob("*-native-*"))
    metas = sorted((m["split"], m["count"], sorted(m["channels"]))
                   for m in (json.loads((folder / "meta.json").read_text()) for folder in native))
    assert metas == [("test", 1, ["target"]), ("train", 3, ["depth", "rgb", "target"])]
    assert all((np.load(folder / "extent.npy") == (1024, 2048)).all() for folder in native)
