"""cls-tristar through its real bring-your-own code path on a fixture in the archive's layout
(conftest.make_tristar_tree): one sample per frame with exactly one posture, pairing within
shots, the authors' normalisation, the split option, the layout errors, and smoke runs."""

from __future__ import annotations

import mmbench_tristar as plugin
import numpy as np
import pytest
from PIL import Image

from conftest import (
    TRISTAR_KEPT,
    TRISTAR_SHOTS,
    make_tristar_tree,
    one_line_error,
    run_cli,
    smoke_epoch,
)

KEPT = TRISTAR_SHOTS * TRISTAR_KEPT


@pytest.fixture
def root(tmp_path):
    return make_tristar_tree(tmp_path) / "tristar"


def test_frames_with_exactly_one_posture_are_kept_and_counted(root):
    report = plugin.label_counts(root)
    for split in plugin.SPLITS:
        assert report[split]["kept"] == KEPT and report[split]["dropped"] == 2 * TRISTAR_SHOTS
        assert sum(report[split][c] for c in plugin.CLASSES) == KEPT
    assert plugin.posture(["walk", "in_room"]) == plugin.CLASSES.index("walk")
    assert plugin.posture(["sit", "walk"]) is None and plugin.posture(["out_of_view"]) is None


def test_rows_pair_frames_within_a_shot_and_use_the_authors_normalisation(root):
    rows = list(plugin.read_split(root, "val", {"split": "archive"}))
    assert len(rows) == KEPT
    first = plugin.decode(rows[0])
    raw_thermal = np.asarray(Image.open(root / "val" / "0" / "thermal" / "000000.png"), dtype=np.float64)
    np.testing.assert_allclose(first["thermal"][0], (raw_thermal - 29903.11328125) / 149.91512572744287, rtol=1e-5)
    raw_depth = np.asarray(Image.open(root / "val" / "0" / "depth" / "000000.png"), dtype=np.float64)
    np.testing.assert_allclose(first["depth"][0], (raw_depth - 2959.2861328125) / 1928.0287860921578, rtol=1e-5)
    labels = [int(plugin.decode(r)["target"]) for r in rows]
    expected = [(frame + shot) % 6 for shot in range(TRISTAR_SHOTS) for frame in range(TRISTAR_KEPT)]
    assert labels == expected


def test_the_splits_may_sit_in_a_data_folder(tmp_path):
    root = make_tristar_tree(tmp_path, nested="data") / "tristar"
    assert plugin.splits_root(root) == root / "data" and plugin.check_layout(root) is None


def test_discomkd_split_option_pools_every_kept_frame(root):
    sizes = {s: len(plugin.read_split(root, s, {"split": "discomkd-4"})) for s in plugin.SPLITS}
    per_class = 3 * KEPT // len(plugin.CLASSES)
    train, val = int(per_class * 0.7), int(per_class * (0.7 + 0.1)) - int(per_class * 0.7)
    assert sizes == {"train": 6 * train, "val": 6 * val, "test": 6 * (per_class - train - val)}


@pytest.mark.parametrize("damage, message", [
    (lambda r: (r / "val" / "1" / "thermal" / "000003.png").unlink(),
     "val/1: rgb 14, depth 14, thermal 13 frames and 14 actions.txt rows"),
    (lambda r: (r / "train" / "0" / "actions.txt").write_text("0 stand\n"),
     "train/0: rgb 14, depth 14, thermal 14 frames and 1 actions.txt rows"),
    (lambda r: (r / "test" / "1" / "actions.txt").unlink(), "test/1 has no actions.txt"),
    (lambda r: (r / "test" / "0" / "actions.txt").write_text("0 jump\n" * 14), "unknown labels ['jump']"),
])
def test_a_damaged_layout_is_one_line_naming_the_shot(root, tmp_path, damage, message):
    damage(root)
    result = run_cli("run", "--method", "fusion", "--task", "cls-tristar", "--data-dir", str(tmp_path),
                     "--out", str(tmp_path / "runs"))
    line = one_line_error(result)
    assert message in line and "does not have the expected layout" in line


def test_missing_split_folders_say_how_to_get_the_archive(tmp_path):
    (tmp_path / "tristar" / "other").mkdir(parents=True)
    result = run_cli("run", "--method", "fusion", "--task", "cls-tristar", "--data-dir", str(tmp_path),
                     "--out", str(tmp_path / "runs"))
    line = one_line_error(result)
    assert "no train/, val/ and test/ folders" in line and "found other" in line and "zenodo.org/record/7996570" in line


@pytest.mark.slow
@pytest.mark.parametrize("method, scenario", [("fusion", None), ("discomkd", None), ("dkd", "cross-modal"),
                                              ("dkd", "multi-modal")])
def test_one_smoke_epoch_trains(method, scenario, root, tmp_path):
    record = smoke_epoch("cls-tristar", method, scenario, tmp_path, data_dir=tmp_path)
    assert record.status == "completed" and record.dataset.sizes["train"] == KEPT
    assert record.dataset.options == {"split": "archive"}
    if method == "dkd":
        teacher = {"cross-modal": ["thermal"], "multi-modal": ["thermal", "depth"]}[scenario]
        assert record.distillation.teacher == teacher and set(record.metrics["best"]) == {"depth"}
