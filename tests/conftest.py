"""Shared fixtures. Every test runs offline, with its caches in a per-session temp directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Set before anything imports datasets / huggingface_hub (they read these once at import).
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="mmbench-tests-"))
os.environ["MMBENCH_HOME"] = str(_SESSION_HOME / "home")
os.environ["HF_HOME"] = str(_SESSION_HOME / "hf")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.pop("MMBENCH_PLUGINS", None)

def pytest_unconfigure(config):
    """Remove the session's caches (half a gigabyte of data caches and hub fixtures per run)."""
    import shutil

    shutil.rmtree(_SESSION_HOME, ignore_errors=True)


#: Overrides that make a synthetic run take seconds.
FAST = [
    "--set", "recipe.epochs=2", "--set", "recipe.limit_train=192", "--set", "recipe.limit_eval=96",
    "--set", "recipe.width=8", "--set", "recipe.batch_size=32",
]
FAST_OVERRIDES = {"recipe.epochs": "2", "recipe.limit_train": "192", "recipe.limit_eval": "96",
                  "recipe.width": "8", "recipe.batch_size": "32"}


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: str | Path | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m mmbench ARGS`` in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "mmbench", *args], capture_output=True, text=True,
        env={**os.environ, **(env or {})}, cwd=cwd, timeout=timeout,
    )


def one_line_error(result: subprocess.CompletedProcess, code: int = 2) -> str:
    """The single ``error:`` line of a failed CLI run (no traceback, the expected exit code)."""
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return errors[0]


def smoke_epoch(task: str, method: str, scenario: str | None, tmp_path: Path, data_dir: Path | None = None):
    """One smoke-recipe epoch of ``method`` (a distillation ``scenario`` if given) on ``task``,
    through the runner; returns the record."""
    from mmbench.artifacts import ArtifactCache
    from mmbench.engine.runner import Runner
    from mmbench.plan import plan_run
    from mmbench.plugins import Registry

    registry = Registry.load()
    overrides = {"recipe.epochs": "1", "recipe.batch_size": "16", **({"scenario": scenario} if scenario else {})}
    runner = Runner(registry, out=tmp_path / "runs", device="cpu", artifacts=ArtifactCache(tmp_path / "artifacts"),
                    data_dir=str(data_dir) if data_dir else None)
    record, _ = runner.run(plan_run(registry, method, task, 0, overrides))
    return record


def make_runner(registry, tmp_path, **kwargs):
    from mmbench.artifacts import ArtifactCache
    from mmbench.engine.runner import Runner

    return Runner(registry, out=tmp_path / "runs", device="cpu", artifacts=ArtifactCache(tmp_path / "artifacts"), **kwargs)


NAN_PLUGIN = """
from mmbench import MethodSpec, hookimpl

def build(task, config, ctx):
    from mmbench_baselines import FusionConfig
    from mmbench_baselines.models import build_fusion
    inner = build_fusion(task, FusionConfig(), ctx)
    original = inner.training_step

    def training_step(batch, step):
        terms = original(batch, step)
        terms["aux"] = terms["ce"] * (float("nan") if step >= {bad_step} else 0.0)
        return terms

    inner.training_step = training_step
    return inner

@hookimpl
def mmbench_methods():
    return [MethodSpec(name="goes-nan", description="test", build=build, min_modalities=2,
                       kinds=frozenset({{"classification"}}))]
"""


@pytest.fixture(scope="session")
def registry():
    from mmbench.plugins import Registry

    return Registry.load()


@pytest.fixture
def cli():
    return run_cli


# ---------------------------------------------------------------------------------------------
# Fixtures of the tasks whose data comes from outside (hub, bring your own), in their exact
# layouts. Each task's own test module uses them; test_conformance loads every such task through
# its real code path with them.

CASIA_COUNTS = {"train_list.txt": 24, "val_private_list.txt": 8, "test_private_list.txt": 8}


def make_casia_release(base: Path) -> Path:
    """CASIA-SURF in its release layout under ``base`` (list files + images); returns the root."""
    rng = np.random.default_rng(0)
    root = base / "CASIA-SURF"
    for name, count in CASIA_COUNTS.items():
        lines = []
        part = name.split("_")[0].capitalize()
        for i in range(count):
            label = i % 2
            folder = f"{part}/{'real' if label else 'fake'}_part/S{i:04d}"
            paths = [f"{folder}/{kind}/{i}.jpg" for kind in ("color", "depth", "ir")]
            for rel, channels in zip(paths, (3, 1, 1), strict=True):
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                shape = (40, 36, 3) if channels == 3 else (40, 36)
                Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(root / rel)
            lines.append(" ".join([*paths, str(label)]))
        (root / name).write_text("\n".join(lines) + "\n")
    return root


# (race, subject, device, session, pai): train EA 0-199, val EA 200-299 (PAI 1, 4), test AF 300-499 (PAI 1, 2)
CEFA_VIDEOS = ["3_010_1_1_1", "3_011_3_2_4", "3_012_1_2_1", "3_013_1_1_4",  # train
          "3_210_1_1_1", "3_211_1_1_4",                                # val
          "1_310_1_1_1", "1_311_3_1_2",                                # test
          "3_014_2_1_1", "3_015_1_3_1", "3_016_1_1_2", "2_017_1_1_1", "1_012_1_1_1"]  # outside the protocol


def make_cefa_release(base: Path, frames: int = 2) -> Path:
    """CeFA in its release layout (race / subject / video / modality folders) under ``base``."""
    import mmbench_faceas as plugin

    rng = np.random.default_rng(0)
    root = base / "CeFA-Race"
    for video in CEFA_VIDEOS:
        race = plugin.RACES[int(video[0]) - 1]
        for modal in plugin.CEFA_MODALS:
            folder = root / race / f"{race}-{video.split('_')[1]}" / video / modal
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(frames):
                shape = (24, 20, 3) if modal == "profile" else (24, 20)
                Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(folder / f"{i:04d}.jpg")
    for race in plugin.RACES:
        (root / race).mkdir(parents=True, exist_ok=True)
    return root


CITYSCAPES_CAMERA = {"extrinsic": {"baseline": 0.209313}, "intrinsic": {"fx": 2262.52}}


def make_cityscapes_tree(base: Path, label_high: int = 19, size: tuple[int, int] = (32, 64),
                         counts: tuple[int, int] = (6, 3)) -> Path:
    """The official Cityscapes tree (leftImg8bit, gtFine train ids, disparity, camera) under ``base``
    (images of ``size``; the real ones are 1024×2048)."""
    rng = np.random.default_rng(0)
    root = base / "cityscapes"
    for official, count in zip(("train", "val"), counts, strict=True):
        for i in range(count):
            city = "aachen" if i % 2 else "bremen"
            stem = f"{city}_{i:06d}_000019"
            files = {
                "leftImg8bit": (f"{stem}_leftImg8bit.png", rng.integers(0, 255, (*size, 3), dtype=np.uint8)),
                "gtFine": (f"{stem}_gtFine_labelTrainIds.png",
                           np.where(rng.random(size) < 0.1, 255, rng.integers(0, label_high, size)).astype(np.uint8)),
                "disparity": (f"{stem}_disparity.png", rng.integers(2000, 30000, size).astype(np.uint16)),
            }
            for folder, (name, array) in files.items():
                path = root / folder / official / city / name
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(array).save(path)
            camera = root / "camera" / official / city / f"{stem}_camera.json"
            camera.parent.mkdir(parents=True, exist_ok=True)
            camera.write_text(json.dumps(CITYSCAPES_CAMERA))
    return root


SUNRGBD10_PER_CLASS = [150, 121, 535, 65, 69, 192, 62, 86, 418, 407]  # the kv2 subset's class sizes


def make_sunrgbd10_tree(base: Path) -> Path:
    """A SUN RGB-D tree with the Ferreri et al. lists (2105 tiny kv2 scenes) under ``base``."""
    import mmbench_sunrgbd10 as plugin

    rng = np.random.default_rng(0)
    root = base / "SUNRGBD"
    kv2, mapping, n = [], [], 4000
    for label, count in enumerate(SUNRGBD10_PER_CLASS):
        for _ in range(count):
            n += 1
            sub = "align_kv2" if n % 9 == 0 else "kinect2data"
            scene = f"kv2/{sub}/{n:06d}_2014-06-0{label}_scene"
            (root / scene / "image").mkdir(parents=True)
            (root / scene / "depth").mkdir()
            Image.fromarray(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)).save(root / scene / "image" / f"{n}.jpg")
            millimetres = rng.integers(500, 2400, (6, 8)).astype(np.uint32)
            rotated = ((millimetres << 3) | (millimetres >> 13)) & 0xFFFF
            Image.fromarray(rotated.astype(np.uint16)).save(root / scene / "depth" / f"{n}.png")
            kv2.append(f"kv2/{plugin.CLASSES[label]}/{n}.png {label}")
            mapping.append(f"{n}.png -> /SUNRGBD/{scene}")
    (root / "kv2.txt").write_text("\n".join(kv2) + "\n")
    (root / "mapping.txt").write_text("1.png -> /SUNRGBD/kv1/NYUdata/NYU0001\n" + "\n".join(mapping) + "\n")
    return root


TRISTAR_SHOTS, TRISTAR_KEPT = 2, 12  # per split; kept frames per shot (two more are dropped)


def make_tristar_tree(base: Path, nested: str = "") -> Path:
    """A TRISTAR archive as unpacked under ``base/tristar[/nested]``: per split, shots ``0``, ``1``
    with rgb / depth / thermal 16-bit PNG frames (rgb 8-bit), ``mask/`` .npy files and
    ``actions.txt``; of each shot's 14 frames, 12 hold one posture (classes in turn) and two are
    dropped (two postures; none)."""
    import mmbench_tristar as plugin

    rng = np.random.default_rng(0)
    root = base / "tristar" / nested if nested else base / "tristar"
    for split in plugin.SPLITS:
        for shot in range(TRISTAR_SHOTS):
            folder = root / split / str(shot)
            for modality in (*plugin.MODALITY_FOLDERS, "mask"):
                (folder / modality).mkdir(parents=True)
            lines = []
            for frame in range(TRISTAR_KEPT + 2):
                if frame < TRISTAR_KEPT:
                    labels = [plugin.CLASSES[(frame + shot) % len(plugin.CLASSES)], "in_room"]
                else:
                    labels = ["sit", "walk"] if frame == TRISTAR_KEPT else ["out_of_view"]
                lines.append(" ".join([f"{frame:06d}", *labels]))
                label = plugin.CLASSES.index(labels[0]) if frame < TRISTAR_KEPT else 0
                name = f"{frame:06d}.png"
                Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(folder / "rgb" / name)
                depth = rng.integers(500, 6000, (24, 32)) + 200 * label
                Image.fromarray(depth.astype(np.uint16)).save(folder / "depth" / name)
                thermal = rng.normal(29900 + 40 * label, 100, (24, 32)).clip(0, 65535)
                Image.fromarray(thermal.astype(np.uint16)).save(folder / "thermal" / name)
                np.save(folder / "mask" / f"{frame:06d}.npy", np.zeros((24, 32), dtype=bool))
            (folder / "actions.txt").write_text("\n".join(lines) + "\n")
    return base


HUB_RNG = np.random.default_rng(0)
HUB_FIXTURE_SIZES = {"train": 12, "test": 6}


def write_rgbd_repo(repo: str, revision: str, files: dict[str, list[dict]], readme: str) -> Path:
    """``files``: parquet path → rows of the three ``Image`` columns."""
    import datasets

    features = datasets.Features({"image": datasets.Image(), "depth": datasets.Image(), "label": datasets.Image()})
    columns = {name: {key: [row[key] for row in rows] for key in features} for name, rows in files.items()}
    from mmbench.testing import write_hub_fixture

    return write_hub_fixture(repo, revision, columns, features, {"README.md": readme})


SUN_FIXTURE_SHAPES = ((30, 40), (27, 36), (33, 46))
"""The SUN RGB-D fixture's image sizes in turn: like its sensors' (561×427 … 730×530), they differ."""


def rgbd_rows(count: int, classes: int, depth: str, shapes: tuple[tuple[int, int], ...] = ((30, 40),)) -> list[dict]:
    out = []
    for index in range(count):
        shape = shapes[index % len(shapes)]
        if depth == "8bit":
            d = Image.fromarray(HUB_RNG.integers(0, 255, shape, dtype=np.uint8))
        else:
            millimetres = HUB_RNG.integers(500, 9000, shape).astype(np.uint16)
            if depth == "rotated":  # the SUN RGB-D toolbox stores mm rotated left by 3 bits
                millimetres = (((millimetres.astype(np.uint32) << 3) | (millimetres.astype(np.uint32) >> 13)) & 0xFFFF).astype(np.uint16)
            d = Image.fromarray(millimetres)
        out.append({"image": Image.fromarray(HUB_RNG.integers(0, 255, (*shape, 3), dtype=np.uint8)), "depth": d,
                    "label": Image.fromarray(HUB_RNG.integers(0, classes + 1, shape).astype(np.uint8))})
    return out


NYU_README = ("---\ndataset_info:\n  features:\n  - name: image\n    dtype: image\n  - name: depth\n    dtype: image\n"
              "  - name: label\n    dtype: image\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n"
              "    path: data/train-*\n  - split: teset\n    path: data/test-*\n---\n")
SUN_README = ("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train-*\n"
              "  - split: test\n    path: data/test-*\n---\n")

def write_nyuv2_hub_fixture() -> Path:
    """seg-nyuv2's repository at its pinned revision in the offline hub cache (tiny splits)."""
    import mmbench_rgbdseg as plugin

    return write_rgbd_repo(plugin.NYU_REPO, plugin.NYU_REVISION, {
        "data/train-00000-of-00001.parquet": rgbd_rows(HUB_FIXTURE_SIZES["train"], 40, "8bit"),
        "data/test-00000-of-00001.parquet": rgbd_rows(HUB_FIXTURE_SIZES["test"], 40, "8bit"),
    }, NYU_README)


def write_sunrgbd_hub_fixture() -> Path:
    """seg-sunrgbd's repository at its pinned revision in the offline hub cache (tiny splits)."""
    import mmbench_rgbdseg as plugin

    return write_rgbd_repo(plugin.SUN_REPO, plugin.SUN_REVISION, {
        "data/train-00000-of-00002.parquet": rgbd_rows(6, 37, "rotated", SUN_FIXTURE_SHAPES),
        "data/train-00001-of-00002.parquet": rgbd_rows(6, 37, "rotated", SUN_FIXTURE_SHAPES),
        "data/test-00000-of-00002.parquet": rgbd_rows(3, 37, "rotated", SUN_FIXTURE_SHAPES),
        "data/test-00001-of-00002.parquet": rgbd_rows(3, 37, "rotated", SUN_FIXTURE_SHAPES),
    }, SUN_README)


def tiny_hub_sizes(monkeypatch) -> None:
    """The hub specs expect the real split sizes; the fixtures are tiny."""
    import mmbench_rgbdseg as plugin

    for sizes in (plugin.NYU_SIZES, plugin.SUN_SIZES):
        for split, count in HUB_FIXTURE_SIZES.items():
            monkeypatch.setitem(sizes, split, count)


EUROSAT_PER_CLASS = 12
EUROSAT_SPLITS = {"train": range(1, 9), "val": range(9, 11), "test": range(11, 13)}


def _tiff(array: np.ndarray, planar: bool) -> bytes:
    import io

    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, photometric="minisblack", planarconfig="separate" if planar else "contig")
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def sar_fill(label: int, number: int) -> float:
    """The VV value of the fixture's SAR image ``<Class>_<number>``: who it belongs to, in dB."""
    return -30.0 + label + number / 100.0


def write_eurosat_hub_fixture(monkeypatch=None, drop_sar: tuple[str, ...] = ()) -> dict[str, Path]:
    """cls-eurosat-mssar's two repositories at their pinned revisions in the offline hub cache:
    ``EuroSATallBands.zip`` with 13-band uint16 GeoTIFFs (band-interleaved, as (64, 64, 13)) at
    the release's member paths, the three torchgeo split lists (``.jpg`` names), and
    ``EuroSAT-SAR.zip`` with 2-band float32 GeoTIFFs (planar) stored in reverse order, so that
    pairing by position would mispair every image. ``drop_sar``: image names left out of the SAR
    zip. ``monkeypatch``: the plugin's md5s set to the fixture's."""
    import hashlib

    import mmbench_eurosat as plugin

    from mmbench.testing import write_hub_files

    rng = np.random.default_rng(0)
    ms, sar, lists = {}, {}, {split: [] for split in EUROSAT_SPLITS}
    for label, cls in enumerate(plugin.CLASSES):
        for number in range(1, EUROSAT_PER_CLASS + 1):
            name = f"{cls}_{number}"
            level = 800 + 150 * label
            image = rng.integers(level, level + 400, size=(64, 64, 13), dtype=np.uint16)
            ms[f"{plugin.MS_PREFIX}{cls}/{name}.tif"] = _tiff(image, planar=False)
            if f"{name}.tif" not in drop_sar:
                backscatter = np.full((2, 64, 64), sar_fill(label, number), dtype=np.float32)
                backscatter[1] = rng.normal(-20 + label, 2, size=(64, 64)).astype(np.float32)
                sar[f"EuroSAT-SAR/{cls}/{name}.tif"] = _tiff(backscatter, planar=True)
            split = next(s for s, numbers in EUROSAT_SPLITS.items() if number in numbers)
            lists[split].append(f"{name}.jpg")
    ms_files = {plugin.MS_ZIP: _zip(ms), **{plugin.SPLIT_LISTS[s]: "\n".join(names) + "\n" for s, names in lists.items()}}
    snapshots = {
        plugin.MS_REPO: write_hub_files(plugin.MS_REPO, plugin.MS_REVISION, ms_files),
        plugin.SAR_REPO: write_hub_files(plugin.SAR_REPO, plugin.SAR_REVISION,
                                         {plugin.SAR_ZIP: _zip(dict(reversed(list(sar.items()))))}),
    }
    if monkeypatch is not None:
        for name in plugin.MD5:
            data = (snapshots[plugin.MS_REPO] / name).read_bytes()
            monkeypatch.setitem(plugin.MD5, name, hashlib.md5(data).hexdigest())
    return snapshots


def external_data(task: str, base: Path, monkeypatch) -> Path | None:
    """Write ``task``'s fixture; returns the ``--data-dir`` it needs (``None`` for hub data)."""
    writers = {
        "cls-casia-surf": make_casia_release, "cls-cefa": make_cefa_release,
        "seg-cityscapes": make_cityscapes_tree, "cls-sunrgbd": make_sunrgbd10_tree, "cls-tristar": make_tristar_tree,
    }
    if task in writers:
        writers[task](base)
        return base
    if task == "cls-eurosat-mssar":
        write_eurosat_hub_fixture(monkeypatch)
        return None
    hub = {"seg-nyuv2": write_nyuv2_hub_fixture, "seg-sunrgbd": write_sunrgbd_hub_fixture}
    assert task in hub, f"task '{task}' reads external data but tests/conftest.py has no fixture writer for it"
    hub[task]()
    tiny_hub_sizes(monkeypatch)
    return None
