"""cls-sunrgbd: the Ferreri et al. lists followed into a SUN RGB-D tree (fixture of 2105 tiny
scenes in the official layout), the fixed stratified split, the layout errors, a smoke epoch."""

from __future__ import annotations

import numpy as np
import pytest

import mmbench_sunrgbd10 as plugin
from conftest import SUNRGBD10_PER_CLASS as PER_CLASS
from conftest import make_sunrgbd10_tree, run_cli


@pytest.fixture(scope="module")
def sunrgbd(tmp_path_factory):
    return make_sunrgbd10_tree(tmp_path_factory.mktemp("data"))


def test_lists_lead_to_every_scene(sunrgbd):
    assert plugin.check_layout(sunrgbd) is None
    samples = plugin.read_lists(sunrgbd)
    assert len(samples) == 2105 and np.bincount([label for _, label in samples]).tolist() == PER_CLASS


def test_split_is_stratified_fixed_and_disjoint(sunrgbd):
    labels = np.asarray([label for _, label in plugin.read_lists(sunrgbd)])
    parts = plugin.split_indices(labels)
    sizes = {s: len(v) for s, v in parts.items()}
    assert sum(sizes.values()) == 2105 and abs(sizes["train"] - 1474) <= 5 and abs(sizes["test"] - 421) <= 5
    assert len(np.unique(np.concatenate(list(parts.values())))) == 2105
    for split, members in parts.items():  # every class in every split, in proportion
        share = np.bincount(labels[members], minlength=10) / np.asarray(PER_CLASS)
        assert np.allclose(share, plugin.FRACTIONS[split], atol=0.05), split
    assert all(np.array_equal(parts[s], plugin.split_indices(labels)[s]) for s in parts)


def test_layout_errors(sunrgbd, tmp_path):
    import shutil

    copy = tmp_path / "SUNRGBD"
    shutil.copytree(sunrgbd, copy)
    (copy / "mapping.txt").write_text("\n".join((copy / "mapping.txt").read_text().splitlines()[:-1]) + "\n")
    assert "has no entry in mapping.txt" in plugin.check_layout(copy)
    shutil.copy(sunrgbd / "mapping.txt", copy / "mapping.txt")
    victim = next((copy / "kv2" / "kinect2data").iterdir())
    next((victim / "depth").iterdir()).unlink()
    assert "depth does not hold exactly one *.png" in plugin.check_layout(copy)
    (copy / "kv2.txt").unlink()
    assert "kv2.txt is missing" in plugin.check_layout(copy)


@pytest.mark.slow
def test_smoke_epoch_and_distillation_setup(sunrgbd, tmp_path):
    done = run_cli("run", "--task", "cls-sunrgbd", "--method", "fusion", "--data-dir", str(sunrgbd.parent),
                   "--out", str(tmp_path / "runs"), "--no-progress", "--set", "recipe.epochs=1",
                   "--set", "recipe.width=8", "--set", "recipe.input_scale=0.05")
    assert done.returncode == 0, done.stderr[-2000:]
    import json

    record = json.loads(next((tmp_path / "runs").rglob("*.json")).read_text())
    assert "weighted_f1" in record["metrics"]["best"]["rgb+depth"]
    assert record["dataset"]["sizes"]["test"] == len(plugin.split_indices(
        np.asarray([label for _, label in plugin.read_lists(sunrgbd)]))["test"])
