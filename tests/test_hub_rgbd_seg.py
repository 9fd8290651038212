"""seg-nyuv2 / seg-sunrgbd through their real hub code path, offline: tiny fixtures in the exact
hub schema (parquet with ``Image`` columns of the hub's modes, the README configs with NYUv2's
``teset`` quirk) placed in a pre-populated hub cache at the pinned revisions, then the plugin's
loader → task → a one-epoch run. Decoding rules and every validation error are tested too."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import mmbench_rgbdseg as plugin
from conftest import HUB_FIXTURE_SIZES as FIXTURE_SIZES
from conftest import (
    run_cli,
    tiny_hub_sizes,
    write_nyuv2_hub_fixture,
    write_sunrgbd_hub_fixture,
)
from mmbench.data.images import depth_metres, rgb_array
from mmbench.errors import MMBenchError


@pytest.fixture(scope="module")
def nyu_fixture():
    return write_nyuv2_hub_fixture()


@pytest.fixture(scope="module")
def sun_fixture():
    return write_sunrgbd_hub_fixture()


@pytest.fixture
def fixture_sizes(monkeypatch):
    tiny_hub_sizes(monkeypatch)


FAST = {"recipe.epochs": "1", "recipe.width": "8", "recipe.batch_size": "4", "recipe.input_scale": "0.1",
        "recipe.limit_train": None, "recipe.limit_eval": None}


@pytest.mark.parametrize("task, fixture", [("seg-nyuv2", "nyu_fixture"), ("seg-sunrgbd", "sun_fixture")])
def test_hub_task_trains_offline_at_the_pinned_revision(task, fixture, request, fixture_sizes, tmp_path):
    from mmbench.artifacts import ArtifactCache
    from mmbench.engine.runner import Runner
    from mmbench.plan import plan_run
    from mmbench.plugins import Registry

    request.getfixturevalue(fixture)
    registry = Registry.load()
    overrides = {k: v for k, v in FAST.items() if v is not None}
    overrides.update({"recipe.limit_train": "12", "recipe.limit_eval": "6"})
    runner = Runner(registry, out=tmp_path / "runs", device="cpu", artifacts=ArtifactCache(tmp_path / "artifacts"))
    record, _ = runner.run(plan_run(registry, "fusion", task, 0, overrides))
    revision = plugin.NYU_REVISION if task == "seg-nyuv2" else plugin.SUN_REVISION
    assert record.dataset.repo == (plugin.NYU_REPO if task == "seg-nyuv2" else plugin.SUN_REPO)
    assert record.dataset.revision == revision and not record.dataset.revision_overridden
    assert set(record.metrics["best"]) == {"rgb+depth", "rgb", "depth"}
    assert record.dataset.sizes["test"] == FIXTURE_SIZES["test"]
    assert record.recipe["input_scale"] == 0.1


def test_real_split_sizes_are_enforced(nyu_fixture, tmp_path):
    from mmbench.data.arrays import load_task_data
    from mmbench.plugins import Registry

    registry = Registry.load()
    task = registry.task("seg-nyuv2")
    recipe = task.recipes["smoke"]
    with pytest.raises(MMBenchError, match="has 12 samples .* expects 795"):
        load_task_data(task, registry.dataset_of(task), recipe)


def test_uncached_revision_is_one_clear_line(nyu_fixture, tmp_path):
    other = "f" * 40
    done = run_cli("run", "--task", "seg-nyuv2", "--method", "fusion", "--set", f"dataset.revision={other}",
                   "--out", str(tmp_path), "--no-progress")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "not in the local hub cache" in errors[0] and "ffffffffffff" in errors[0]


def test_depth_decoding():
    millimetres = np.array([[500, 3000], [9000, 0]], dtype=np.uint16)
    assert np.allclose(depth_metres(Image.fromarray(millimetres), rotated=False)[0], millimetres / 1000)
    rotated = (((millimetres.astype(np.uint32) << 3) | (millimetres.astype(np.uint32) >> 13)) & 0xFFFF).astype(np.uint16)
    assert np.allclose(depth_metres(Image.fromarray(rotated), rotated=True)[0], millimetres / 1000)
    eight = np.array([[0, 255]], dtype=np.uint8)
    assert np.allclose(depth_metres(Image.fromarray(eight), rotated=False)[0], [[0.0, 1.0]])
    with pytest.raises(MMBenchError, match="exceeds 20 m"):  # a rotated PNG read as plain millimetres
        depth_metres(Image.fromarray(rotated), rotated=False)
    with pytest.raises(MMBenchError, match="mode 'RGB'"):
        depth_metres(Image.new("RGB", (2, 2)), rotated=False)


def test_label_and_image_decoding():
    raw = np.array([[0, 1, 40], [255, 2, 39]], dtype=np.uint8)
    assert plugin.labels(Image.fromarray(raw), 40).tolist() == [[255, 0, 39], [255, 1, 38]]
    with pytest.raises(MMBenchError, match="label value 41 outside 0..40"):
        plugin.labels(Image.fromarray(np.array([[41]], dtype=np.uint8)), 40)
    with pytest.raises(MMBenchError, match="mode 'L'"):
        rgb_array(Image.new("L", (2, 2)))
    assert rgb_array(Image.new("RGB", (4, 2))).shape == (3, 2, 4)


def test_listing_names_the_source_and_licence():
    done = run_cli("list", "datasets", "--json")
    assert done.returncode == 0
    assert "wyrx/NYUDepthv2_seg" in done.stdout and plugin.NYU_REVISION in done.stdout


def test_input_scale_out_of_range_is_rejected(tmp_path):
    done = run_cli("run", "--task", "seg-nyuv2", "--set", "recipe.input_scale=2", "--out", str(tmp_path))
    assert done.returncode == 2 and "recipe.input_scale" in done.stderr and "Traceback" not in done.stderr


def test_input_scale_sets_the_cached_resolution():
    from mmbench.data.cache import scaled_input_size
    from mmbench.plugins import Registry

    task = Registry.load().task("seg-nyuv2")
    assert scaled_input_size(task) == (480, 640)  # the ESANet protocol
    assert scaled_input_size(task, 0.25) == (120, 160)  # the smoke profile
