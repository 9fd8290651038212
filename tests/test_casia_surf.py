"""cls-casia-surf on a fixture in the official release layout (list files + images), and every
way a user's copy can be wrong: absent, incomplete, malformed, corrupt — each one clear line."""

from __future__ import annotations

import pytest

from conftest import make_casia_release as make_release
from conftest import run_cli


@pytest.fixture
def release(tmp_path):
    return make_release(tmp_path / "data")


def run(data_dir, out, *extra):
    return run_cli("run", "--method", "fusion", "--task", "cls-casia-surf", "--data-dir", str(data_dir),
                   "--out", str(out), "--no-progress", "--set", "recipe.epochs=1", "--set", "recipe.width=8", *extra)


@pytest.mark.slow
def test_smoke_epoch_on_the_official_layout(release, tmp_path):
    done = run(release.parent, tmp_path / "runs")
    assert done.returncode == 0, done.stderr[-2000:]
    from mmbench.results import load_runs

    frame = load_runs(tmp_path / "runs")
    assert set(frame["subset"]) >= {"rgb+depth+ir", "rgb", "depth", "ir", "depth+ir"}
    assert (frame["metric"] == "acer").any()
    record = next((tmp_path / "runs").rglob("*.json")).read_text()
    assert '"train": 24' in record and '"test": 8' in record and '"source": "local"' in record


def _one_error(done, *needles):
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def test_missing_data_says_where_it_comes_from(tmp_path):
    _one_error(run(tmp_path / "nothing", tmp_path / "runs"), "signed release agreement", "CASIA-SURF")
    done = run_cli("run", "--method", "fusion", "--task", "cls-casia-surf", "--out", str(tmp_path / "runs"),
                   env={"MMBENCH_DATA": ""})
    _one_error(done, "--data-dir")


def test_incomplete_release(release, tmp_path):
    (release / "val_private_list.txt").unlink()
    _one_error(run(release.parent, tmp_path / "runs"), "val_private_list.txt")


def test_missing_image(release, tmp_path):
    next(release.rglob("ir/3.jpg")).unlink()
    _one_error(run(release.parent, tmp_path / "runs"), "missing", "ir/3.jpg")


def test_malformed_list_line(release, tmp_path):
    with (release / "test_private_list.txt").open("a") as f:
        f.write("only two fields\n")
    _one_error(run(release.parent, tmp_path / "runs"), "test_private_list.txt, line 9")


def test_corrupt_image(release, tmp_path):
    next(release.rglob("Train*/**/color/2.jpg")).write_bytes(b"not a jpeg")
    _one_error(run(release.parent, tmp_path / "runs"), "cannot read", "color/2.jpg")
    assert not list((tmp_path / "runs").rglob("*.json"))  # nothing half-written
