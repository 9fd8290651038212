"""Batched augmentation: registered modalities and dense labels move together, any channel count,
and methods can ask the engine for extra independently augmented views."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mmbench.data.augment import recipe_view, strong_view
from mmbench.specs import Recipe

ALL_GEOMETRY = Recipe(hflip=True, vflip=True, rot90=True, crop_padding=3)


def registered_batch(batch_size=16, size=12, channels=(3, 13)):
    """Every modality and the label map encode the pixel's position, so any registered transform
    keeps them equal wherever the label is not the fill value."""
    position = torch.arange(size * size).reshape(size, size).float()
    target = (position % 7).long().expand(batch_size, -1, -1).clone()
    batch = {f"m{c}": (position % 7).expand(batch_size, c, -1, -1).clone() for c in channels}
    batch["target"] = target
    return batch


@pytest.mark.parametrize("recipe", [Recipe(hflip=True), Recipe(vflip=True), Recipe(rot90=True),
                                    Recipe(crop_padding=3), ALL_GEOMETRY])
def test_recipe_view_keeps_modalities_and_labels_registered(recipe):
    torch.manual_seed(0)
    batch = registered_batch()
    out = recipe_view(batch, ("m3", "m13"), recipe, dense_target=True, ignore_index=255)
    valid = out["target"] != 255
    for key in ("m3", "m13"):
        assert out[key].shape == batch[key].shape
        for c in range(out[key].shape[1]):
            assert torch.equal(out[key][:, c][valid], out["target"][valid].float())
    assert not torch.equal(out["m3"], batch["m3"])  # something moved
    assert torch.equal(batch["m3"], registered_batch()["m3"])  # the input is left untouched


def test_crop_pads_images_with_zero_and_labels_with_ignore():
    torch.manual_seed(1)
    out = recipe_view(registered_batch(), ("m3",), Recipe(crop_padding=4), dense_target=True, ignore_index=255)
    assert (out["target"] == 255).any()
    assert (out["m3"][:, 0][out["target"] == 255] == 0).all()


def test_classification_targets_are_never_transformed():
    batch = {"x": torch.randn(8, 2, 10, 10), "target": torch.arange(8)}
    out = strong_view(batch, ("x",), ALL_GEOMETRY, dense_target=False)
    assert torch.equal(out["target"], torch.arange(8)) and out["x"].shape == (8, 2, 10, 10)


def test_no_augmentation_is_the_identity():
    batch = registered_batch()
    out = recipe_view(batch, ("m3", "m13"), Recipe(), dense_target=True)
    assert all(torch.equal(out[k], batch[k]) for k in batch)


def test_strong_view_changes_images_and_keeps_labels_valid():
    torch.manual_seed(2)
    batch = registered_batch(batch_size=64)
    out = strong_view(batch, ("m3", "m13"), Recipe(), dense_target=True, ignore_index=255)
    assert all(torch.isfinite(out[k]).all() for k in ("m3", "m13"))
    changed = (out["m3"] != batch["m3"]).flatten(1).any(dim=1)
    assert changed.float().mean() > 0.8  # two ops + cutout: almost every sample differs
    assert set(out["target"].unique().tolist()) <= set(range(7)) | {255}
    assert out["target"].dtype == torch.long


def test_vector_modalities_pass_through():
    batch = {"v": torch.randn(4, 6), "target": torch.arange(4)}
    assert torch.equal(strong_view(batch, ("v",), ALL_GEOMETRY, dense_target=False)["v"], batch["v"])


def test_engine_gives_independent_extra_views(tmp_path):
    from mmbench import MethodSpec
    from mmbench.testing import check_method
    from mmbench_baselines import UnimodalConfig
    from mmbench_baselines.models import build_unimodal

    seen = {}

    def build(task, config, ctx):
        module = build_unimodal(task, UnimodalConfig(), ctx)
        module.extra_views = ("strong",)
        base_step = module.training_step

        def step(batch, index):
            strong = batch["views"]["strong"]
            seen["shapes"] = (batch["rgb"].shape, strong["rgb"].shape)
            seen["differs"] = not torch.equal(batch["rgb"], strong["rgb"])
            assert torch.equal(batch["target"], strong["target"])
            return base_step(batch, index)

        module.training_step = step
        return module

    spec = MethodSpec(name="two-views", description="", build=build, kinds=frozenset({"classification"}),
                      trained_modalities=lambda mods, cfg: ("rgb",),
                      deploy_subsets=lambda subsets, trained, cfg: (("rgb",),))
    check_method(spec, out=tmp_path)
    assert seen["shapes"][0] == seen["shapes"][1] and seen["differs"]

    def bad(task, config, ctx):
        module = build(task, config, ctx)
        module.extra_views = ("ultra",)
        return module

    with pytest.raises(AssertionError, match=r"unknown view\(s\) \['ultra'\]"):
        check_method(dataclasses.replace(spec, name="bad-views", build=bad), out=tmp_path)


def test_augment_probability_leaves_the_other_samples_untouched():
    """DisCoM-KD's official augmentation is applied to a sample with probability 0.5: with a
    horizontal flip of probability ½ inside, a quarter of the samples change, registered."""
    torch.manual_seed(0)
    batch = registered_batch(batch_size=4000, size=4, channels=(2,))
    out = recipe_view(batch, ["m2"], Recipe(hflip=True, augment_probability=0.5), dense_target=True)
    changed = (out["m2"] != batch["m2"]).flatten(1).any(dim=1).float().mean().item()
    assert changed == pytest.approx(0.25, abs=0.03)
    assert torch.equal(out["m2"][:, 0].long(), out["target"])  # modalities and labels move together
    assert torch.equal(recipe_view(batch, ["m2"], Recipe(hflip=True, augment_probability=0.0), True)["m2"], batch["m2"])


# -- ESANet's random rescale + crop and HSV jitter ------------------------------------------------------


def ramp_batch(batch_size=8, size=(24, 32)):
    """rgb = (column, row, column) and depth = row as ramps, the label = column // 2: after a
    registered zoom + crop, rgb's column channel (bilinear) rounds to the label's column (nearest)."""
    rows, cols = torch.meshgrid(torch.arange(size[0]).float(), torch.arange(size[1]).float(), indexing="ij")
    rgb = torch.stack([cols, rows, cols]).expand(batch_size, -1, -1, -1).clone()
    return {"rgb": rgb, "depth": rows.expand(batch_size, 1, -1, -1).clone(),
            "target": (cols // 2).long().expand(batch_size, -1, -1).clone()}


def test_scale_crop_keeps_modalities_and_labels_registered():
    torch.manual_seed(0)
    batch = ramp_batch()
    out = recipe_view(batch, ("rgb", "depth"), Recipe(scale_range=(1.0, 1.4)), dense_target=True, ignore_index=255)
    assert out["rgb"].shape == batch["rgb"].shape and out["target"].shape == batch["target"].shape
    agree = (out["rgb"][:, 0].round() // 2 == out["target"].float()).float().mean()
    assert agree > 0.97  # the rest: exact .5 ties between bilinear rounding and nearest
    assert set(out["target"].unique().tolist()) <= set(batch["target"].unique().tolist())  # nearest: no new labels
    assert (out["depth"] == out["depth"].round()).all()  # depth resampled nearest, as ESANet's INTER_NEAREST
    assert (out["rgb"][:, 1] - out["depth"][:, 0]).abs().max() < 1.0  # depth moves with the rgb rows
    assert not torch.equal(out["rgb"], batch["rgb"])


def test_an_integer_zoom_is_a_crop_of_the_pixel_repeated_image():
    """cv2.resize(INTER_NEAREST) by 2 repeats each pixel: the output is that image cropped at an
    offset in [0, 2·size − size), as ESANet's RandomCrop."""
    torch.manual_seed(3)
    batch = ramp_batch(batch_size=4, size=(6, 8))
    batch["target"] = torch.arange(48).reshape(6, 8).expand(4, -1, -1).clone()
    out = recipe_view(batch, ("rgb",), Recipe(scale_range=(2.0, 2.0)), dense_target=True)
    zoomed = batch["target"][0].repeat_interleave(2, 0).repeat_interleave(2, 1)
    for sample in out["target"]:
        offsets = [(dy, dx) for dy in range(6) for dx in range(8) if torch.equal(zoomed[dy:dy + 6, dx:dx + 8], sample)]
        assert len(offsets) == 1


def test_hsv_conversions_equal_matplotlibs_and_the_jitter_keeps_its_range():
    import matplotlib.colors
    import numpy as np

    from mmbench.data.augment import _hsv_to_rgb, _rgb_to_hsv, hsv_jitter

    torch.manual_seed(0)
    rgb = torch.rand(2, 3, 5, 7)
    rgb[0, :, 0, 0] = torch.tensor([0.5, 0.5, 0.2])  # ties between channels
    rgb[0, :, 0, 1] = 0.3  # grey: no hue
    hsv = _rgb_to_hsv(rgb)
    expected = matplotlib.colors.rgb_to_hsv(rgb.movedim(1, -1).numpy())
    np.testing.assert_allclose(hsv.movedim(1, -1).numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(_hsv_to_rgb(hsv).movedim(1, -1).numpy(), matplotlib.colors.hsv_to_rgb(expected), atol=1e-6)
    mean, std = torch.full((1, 3, 1, 1), 120.0), torch.full((1, 3, 1, 1), 60.0)
    image = ((rgb * 255).floor() - mean) / std
    # factors of 1: ESANet's RandomHSV round trip (float32 matplotlib, truncated to uint8) — it may lower a value by 1
    raw = (image * std + mean).movedim(1, -1).numpy().astype("float32") / 255.0
    official = (matplotlib.colors.hsv_to_rgb(matplotlib.colors.rgb_to_hsv(raw)) * 255).astype("uint8")
    ours = (hsv_jitter(image, mean, std, 0.0) * std + mean).round().movedim(1, -1).numpy()
    assert np.abs(ours - official).max() <= 1 and (ours == official).mean() > 0.95
    jittered = hsv_jitter(image, mean, std, 0.1) * std + mean
    assert jittered.min() >= 0 and jittered.max() <= 255 and (jittered - jittered.round()).abs().max() < 1e-3


def test_hsv_jitter_needs_the_rgb_statistics():
    with pytest.raises(ValueError, match="normalisation statistics"):
        recipe_view(ramp_batch(), ("rgb", "depth"), Recipe(hsv_jitter=0.1), dense_target=True)


def test_face_geometry_is_the_official_resize_rotate_crop():
    """MMANet face code: resize 144 → rotation about the centre onto a canvas of
    int(0.8·144·(|sin| + |cos|)) px → random crop 112. At 0° the canvas is the 115-px centre region
    (shifted by 144/2 − 115/2 = 14.5 px), so output column u samples the cached 112-px image at
    (u + offset + 15)·112/144 − 0.5, offset ∈ {0, 1, 2}."""
    from mmbench.data.augment import face_rotate_crop

    torch.manual_seed(0)
    ramp = torch.arange(112).float().expand(6, 1, 112, -1).clone()
    out = face_rotate_crop({"x": ramp, "target": torch.zeros(6)}, ["x"], 144, 0)["x"]
    u = torch.arange(20, 90).float()  # away from the border (bilinear on a ramp is exact inside)
    offsets = (out[:, 0, 50, 20:90] + 0.5) * 144 / 112 - 15 - u
    assert torch.allclose(offsets, offsets.round(), atol=1e-3)
    assert set(offsets.round()[:, 0].tolist()) <= {0.0, 1.0, 2.0} and offsets.std(dim=1).max() < 1e-3


def test_face_geometry_rotates_every_modality_alike_with_black_outside():

    torch.manual_seed(1)
    size = 112
    rows, cols = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    image = (rows * size + cols).expand(8, 1, -1, -1)
    batch = {"rgb": image.expand(-1, 3, -1, -1).clone(), "depth": image.clone(), "target": torch.zeros(8)}
    stats = {"rgb": (torch.full((3, 1, 1), 100.0).numpy(), torch.full((3, 1, 1), 50.0).numpy()),
             "depth": (torch.full((1, 1, 1), 100.0).numpy(), torch.full((1, 1, 1), 50.0).numpy())}
    out = recipe_view(batch, ("rgb", "depth"), Recipe(face_augmentation=(144, 30)), dense_target=False, stats=stats)
    assert torch.allclose(out["rgb"][:, 0], out["depth"][:, 0]) and torch.allclose(out["rgb"][:, 2], out["depth"][:, 0])
    black = -100.0 / 50.0
    corners = out["depth"][:, 0, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners == black).any()  # rotated far enough, a corner falls outside the image
    assert torch.equal(out["target"], batch["target"])
