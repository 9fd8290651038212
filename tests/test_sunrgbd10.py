"""cls-sunrgbd: the Ferreri et al. lists followed into a SUN RGB-D tree (fixture of 2105 tiny
scenes in the official layout), the fixed stratified split, the layout errors, a smoke epoch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mmbench_sunrgbd10 as plugin
from conftest import run_cli

RNG = np.random.default_rng(0)
PER_CLASS = [150, 121, 535, 65, 69, 192, 62, 86, 418, 407]  # the kv2 subset's class sizes


@pytest.fixture(scope="module")
def sunrgbd(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "SUNRGBD"
    kv2, mapping, n = [], [], 4000
    for label, count in enumerate(PER_CLASS):
        for _ in range(count):
            n += 1
            sub = "align_kv2" if n % 9 == 0 else "kinect2data"
            scene = f"kv2/{sub}/{n:06d}_2014-06-0{label}_scene"
            (root / scene / "image").mkdir(parents=True)
            (root / scene / "depth").mkdir()
            Image.fromarray(RNG.integers(0, 255, (6, 8, 3), dtype=np.uint8)).save(root / scene / "image" / f"{n}.jpg")
            millimetres = RNG.integers(500, 2400, (6, 8)).astype(np.uint32)
            rotated = ((millimetres << 3) | (millimetres >> 13)) & 0xFFFF
            Image.fromarray(rotated.astype(np.uint16)).save(root / scene / "depth" / f"{n}.png")
            kv2.append(f"kv2/{plugin.CLASSES[label]}/{n}.png {label}")
            mapping.append(f"{n}.png -> /SUNRGBD/{scene}")
    (root / "kv2.txt").write_text("\n".join(kv2) + "\n")
    (root / "mapping.txt").write_text("1.png -> /SUNRGBD/kv1/NYUdata/NYU0001\n" + "\n".join(mapping) + "\n")
    return root


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
