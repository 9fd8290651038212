"""The embedded synthetic tasks: deterministic, and built so that modalities are complementary."""

import numpy as np
import pytest

from mmbench_synth import scenes


@pytest.mark.parametrize("scene", [scenes.classification_scene, scenes.segmentation_scene, scenes.face_scene,
                                   scenes.mssar_scene])
def test_scenes_are_deterministic(scene):
    one = scene(np.random.default_rng([1, 2, 3]))
    two = scene(np.random.default_rng([1, 2, 3]))
    other = scene(np.random.default_rng([1, 2, 4]))
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(one, other, strict=True))


def test_scene_encodings_match_hub_conventions():
    rgb, depth, label = scenes.classification_scene(np.random.default_rng(0))
    assert rgb.dtype == np.uint8 and rgb.shape == (3, 32, 32)
    assert depth.dtype == np.uint16 and 2000 < np.median(depth) < 4000  # millimetres
    assert 0 <= label < 12
    _, _, mask = scenes.segmentation_scene(np.random.default_rng(0))
    assert set(np.unique(mask)) <= set(range(scenes.SEG_CLASSES)) | {scenes.IGNORE}
    _, _, ir, live, _ = scenes.face_scene(np.random.default_rng(0))
    assert ir.dtype == np.uint8 and live in (0, 1)
    ms, sar, label = scenes.mssar_scene(np.random.default_rng(0))
    assert ms.shape == (4, 32, 32) and sar.shape == (2, 32, 32) and ms.dtype == sar.dtype == np.uint8
    assert 0 <= label < 10


def test_multiband_images_round_trip_through_datasets(registry):
    """4-band MS (PNG RGBA) and 2-band SAR (PNG LA) come back with their channel counts."""
    from mmbench import Recipe
    from mmbench.data.arrays import load_task_data

    task = registry.task("synth-mssar-cls")
    data = load_task_data(task, registry.dataset_of(task), Recipe(limit_train=64, limit_eval=32))
    assert data.shapes == {"ms": (4, 32, 32), "sar": (2, 32, 32)}
    assert sorted(np.unique(np.asarray(data.test.arrays["target"])).tolist()) == list(range(10))


def test_each_attack_is_visible_in_exactly_one_modality():
    """Print attacks are flat in depth, replay attacks have no heat in IR, mask attacks have a
    textured face in RGB; in every other modality an attack looks like a live face."""
    rng = np.random.default_rng(5)
    cues: dict[str, list[tuple[float, float, float]]] = {}
    for _ in range(400):
        rgb, depth, ir, live, kind = scenes.face_scene(rng)
        assert live == (kind == "live")
        centre, cheek = depth[14:18, 14:18].astype(float), depth[14:18, 11:13].astype(float)
        relief = float(np.median(cheek) - np.median(centre))  # mm the face centre bulges out
        heat = float(ir[12:20, 12:20].mean())
        texture = float(np.abs(np.diff(rgb[:, 12:20, 12:20].astype(float), axis=2)).mean())
        cues.setdefault(kind, []).append((relief, heat, texture))
    mean = {kind: np.median(values, axis=0) for kind, values in cues.items()}
    assert set(mean) == {"live", "print", "replay", "mask"}
    relief, heat, texture = 0, 1, 2
    assert mean["print"][relief] < 40 < mean["live"][relief]
    assert mean["replay"][heat] < 100 < mean["live"][heat]
    assert mean["mask"][texture] > mean["live"][texture] + 5
    for attack, visible in (("print", relief), ("replay", heat), ("mask", texture)):
        for cue in {relief, heat, texture} - {visible}:
            assert abs(mean[attack][cue] - mean["live"][cue]) < 0.25 * abs(mean["live"][cue]) + 5, (attack, cue)


def test_synthetic_dataset_round_trips_through_datasets(registry):
    from mmbench.data.arrays import load_task_data

    task = registry.task("synth-rgbdi-pad")
    from mmbench import Recipe

    data = load_task_data(task, registry.dataset_of(task), Recipe(limit_train=64, limit_eval=32))
    assert data.shapes == {"rgb": (3, 32, 32), "depth": (1, 32, 32), "ir": (1, 32, 32)}
    labels = np.asarray(data.test.arrays["target"])
    assert 0.4 < labels.mean() < 0.6  # live / spoof balanced


@pytest.mark.slow
def test_modalities_are_complementary_on_the_smoke_profile(registry, tmp_path):
    """The design claim of the synthetic family, on the default task and profile: all modalities
    beat every single one by >= 10 points and every single modality clearly beats chance."""
    from mmbench.artifacts import ArtifactCache
    from mmbench.engine.runner import Runner
    from mmbench.plan import plan_run

    runner = Runner(registry, out=tmp_path, device="cpu", artifacts=ArtifactCache(tmp_path / "artifacts"))
    fusion, _ = runner.run(plan_run(registry, "fusion", "synth-rgbd-cls", 0))
    single = {
        m: runner.run(plan_run(registry, "unimodal", "synth-rgbd-cls", 0, {"modality": m}))[0].metrics["best"][m]["accuracy"]
        for m in ("rgb", "depth")
    }
    chance = 1 / 12
    assert fusion.metrics["best"]["rgb+depth"]["accuracy"] >= max(single.values()) + 0.10, (fusion.metrics, single)
    assert min(single.values()) >= chance + 0.05, single


@pytest.mark.slow
def test_cross_modal_task_has_a_clearly_richer_modality(registry, tmp_path):
    """synth-mssar-cls on the smoke profile: MS alone is near perfect, SAR alone far from it but
    well above chance — the setting where cross-modal distillation is meaningful."""
    from mmbench.artifacts import ArtifactCache
    from mmbench.engine.runner import Runner
    from mmbench.plan import plan_run

    runner = Runner(registry, out=tmp_path, device="cpu", artifacts=ArtifactCache(tmp_path / "artifacts"))
    f1 = {
        m: runner.run(plan_run(registry, "unimodal", "synth-mssar-cls", 0, {"modality": m}))[0]
        .metrics["best"][m]["weighted_f1"]
        for m in ("ms", "sar")
    }
    assert f1["ms"] >= 0.9 and 0.3 <= f1["sar"] <= f1["ms"] - 0.2, f1
