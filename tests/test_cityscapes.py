"""seg-cityscapes on a fixture in the official Cityscapes tree, the disparity → depth conversion
and the layout errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import mmbench_cityscapes as plugin
from conftest import CITYSCAPES_CAMERA as CAMERA
from conftest import make_cityscapes_tree as make_tree
from conftest import run_cli
from mmbench.errors import MMBenchError


def test_depth_from_disparity():
    disparity = np.array([[0, 1, 257, 25601]], dtype=np.uint16)
    depth = plugin.depth_from_disparity(disparity, CAMERA)
    # 473.6 m at disparity 1 is above ESANet's 300 m validity limit: 0
    expected = [0.0, 0.0, 0.0, 0.209313 * 2262.52 / 100.0]
    assert np.allclose(depth[0], expected, rtol=1e-6)
    assert plugin.depth_from_disparity(np.array([[1 + 256 * 2]], dtype=np.uint16), CAMERA)[0, 0] == pytest.approx(
        0.209313 * 2262.52 / 2.0, rel=1e-6)  # 236.8 m: kept
    with pytest.raises(MMBenchError, match="baseline"):
        plugin.depth_from_disparity(disparity, {"intrinsic": {}})


def test_label_ids_instead_of_train_ids_are_named():
    row = {"image": np.zeros((2, 2, 3), np.uint8), "label": np.array([[7, 26], [0, 255]], np.uint8),
           "disparity": np.zeros((2, 2), np.uint16), "camera": CAMERA}
    with pytest.raises(MMBenchError, match="labelTrainIds"):
        plugin.decode(row)


def test_layout_check(tmp_path):
    root = make_tree(tmp_path)
    assert plugin.check_layout(root) is None
    assert [len(plugin.samples(root, s)) for s in ("train", "test")] == [6, 3]
    next(root.rglob("*_gtFine_labelTrainIds.png")).unlink()
    assert "csCreateTrainIdLabelImgs" in plugin.check_layout(root)


def test_missing_tree_is_one_line(tmp_path):
    done = run_cli("run", "--task", "seg-cityscapes", "--method", "fusion", "--data-dir", str(tmp_path),
                   "--out", str(tmp_path / "runs"))
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and len(errors) == 1 and "cityscapes-dataset.com" in errors[0]


@pytest.mark.slow
def test_smoke_epoch_on_the_official_tree(tmp_path):
    make_tree(tmp_path / "data")
    done = run_cli("run", "--task", "seg-cityscapes", "--method", "fusion", "--data-dir", str(tmp_path / "data"),
                   "--out", str(tmp_path / "runs"), "--no-progress", "--set", "recipe.epochs=1",
                   "--set", "recipe.width=8", "--set", "recipe.input_scale=0.0625")
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(next((tmp_path / "runs").rglob("*.json")).read_text())
    assert set(record["metrics"]["best"]) == {"rgb+depth", "rgb", "depth"}
    assert record["dataset"]["sizes"]["test"] == 3
