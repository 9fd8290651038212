"""cls-cefa: protocol race_prot_rdi_4@5 selection, frame pairing, layout errors and a smoke epoch
on a fixture in the release layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import mmbench_faceas as plugin
from conftest import make_cefa_release as make_release
from conftest import run_cli
from mmbench.errors import MMBenchError


def test_protocol_selects_the_papers_videos(tmp_path):
    root = make_release(tmp_path)
    videos = {split: sorted({s[0].split("/")[2] for s in plugin.cefa_samples(root, split)}) for split in ("train", "val", "test")}
    assert videos == {"train": ["3_010_1_1_1", "3_011_3_2_4", "3_012_1_2_1", "3_013_1_1_4"],
                      "val": ["3_210_1_1_1", "3_211_1_1_4"], "test": ["1_310_1_1_1", "1_311_3_1_2"]}
    samples = plugin.cefa_samples(root, "test")
    assert len(samples) == 4 and [s[3] for s in samples] == [1, 1, 0, 0]  # PAI 1 = live
    assert all(s[0].endswith(Path(s[1]).name) and "/profile/" in s[0] and "/ir/" in s[2] for s in samples)
    assert plugin.cefa_check(root) is None


def test_unequal_frames_and_missing_race_are_named(tmp_path):
    root = make_release(tmp_path)
    next(root.rglob("1_310_1_1_1/ir/0001.jpg")).unlink()
    with pytest.raises(MMBenchError, match=r"1_310_1_1_1: profile 2, depth 2, ir 1 frames"):
        plugin.cefa_check(root)
    other = make_release(tmp_path / "b")
    shutil.rmtree(other / "CA")
    assert plugin.cefa_check(other) == "missing race folder(s) CA."


def test_missing_data_is_one_line(tmp_path):
    done = run_cli("run", "--task", "cls-cefa", "--method", "fusion", "--data-dir", str(tmp_path), "--out", str(tmp_path))
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and len(errors) == 1 and "signed release agreement" in errors[0]


@pytest.mark.slow
def test_smoke_epoch(tmp_path):
    make_release(tmp_path / "data")
    done = run_cli("run", "--task", "cls-cefa", "--method", "fusion", "--data-dir", str(tmp_path / "data"),
                   "--out", str(tmp_path / "runs"), "--no-progress", "--set", "recipe.epochs=1", "--set", "recipe.width=8",
                   "--set", "recipe.batch_size=4")
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"test": 4' in next((tmp_path / "runs").rglob("*.json")).read_text()
