"""Batched data augmentation on device tensors (any number of channels, any modality).

Augmentations act on whole training batches after they are moved to the device, one random
draw per sample, every modality of a sample (and a dense label map) transformed alike so the
modalities stay registered. Inputs are per-channel normalised, so a fill value of 0 is the
dataset mean of each channel.

* :func:`recipe_view` — the task recipe's augmentation, applied to every method's training
  batch: ESANet's random rescale + crop (``recipe.scale_range``: zoom by s ~ U[lo, hi], then a
  random crop to the input size — images bilinear, depth and dense labels nearest, as ESANet's
  ``RandomRescale`` / ``RandomCrop``; one ``grid_sample`` per batch; from each sample's own size
  in a native-resolution batch, ``recipe.resolution=native``), its HSV jitter on
  the ``rgb`` modality (``recipe.hsv_jitter``: hue, saturation and value each multiplied by a
  factor ~ U[1 − a, 1 + a] and clipped, on the 0-255 values, as ESANet's ``RandomHSV``), then
  horizontal / vertical flips, 90° rotations and random crop with zero padding. Faces: the MMANet
  face code's rotation → crop of its 144-px resize (``recipe.face_augmentation``,
  :func:`face_rotate_crop`).
* :func:`strong_view` — the recipe view followed by a channel-agnostic RandAugment
  (Cubuk et al., 2020: two operations per sample, magnitude drawn uniformly as in the MLKD code)
  and Cutout (DeVries & Taylor, 2017: a square of random size up to half the width). Photometric
  operations that only make sense for 8-bit RGB (posterize, solarize, equalize, colour) are
  replaced by their channel-agnostic counterparts (brightness, contrast, noise), so depth, IR,
  SAR or 13-band images get the same treatment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from mmbench.data.cache import scaled_side
from mmbench.data.native import EXTENT
from mmbench.specs import Recipe

Batch = dict[str, torch.Tensor]
Stats = Mapping[str, tuple[np.ndarray, np.ndarray]]
NEAREST = ("depth",)
"""Image modalities resampled by nearest neighbour (ESANet rescales depth with INTER_NEAREST)."""
STRONG_OPS = ("identity", "rotate", "shear_x", "shear_y", "translate_x", "translate_y",
              "brightness", "contrast", "noise")


def _image_keys(batch: Batch, modalities: Sequence[str], dense_target: bool) -> list[str]:
    keys = [m for m in modalities if batch[m].dim() == 4]
    if dense_target and batch["target"].dim() == 3:
        keys.append("target")
    return keys


def _where(flags: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(flags.reshape(-1, *([1] * (a.dim() - 1))), a, b)


def _random_flags(batch_size: int, device: torch.device, p: float = 0.5) -> torch.Tensor:
    return torch.rand(batch_size, device=device) < p


def _crop(value: torch.Tensor, padding: int, dy: torch.Tensor, dx: torch.Tensor, fill: float) -> torch.Tensor:
    """Per-sample crop of the zero-padded map at offsets (dy, dx) ∈ [0, 2·padding]."""
    squeeze = value.dim() == 3
    if squeeze:
        value = value.unsqueeze(1)
    height, width = value.shape[-2:]
    padded = F.pad(value, (padding,) * 4, value=fill)
    rows = (dy[:, None] + torch.arange(height, device=value.device)[None])  # [B, H]
    cols = (dx[:, None] + torch.arange(width, device=value.device)[None])  # [B, W]
    index = torch.arange(value.shape[0], device=value.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[index, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    return out.squeeze(1) if squeeze else out


def scale_crop(batch: Batch, keys: Sequence[str], scale_range: Sequence[float], size: Sequence[int] | None = None,
               extents: torch.Tensor | None = None) -> Batch:
    """ESANet's ``RandomRescale`` + ``RandomCrop`` per sample, every key with the same draw: zoom the
    sample (``extents``: each one's ``(h, w)`` within the padded batch, default the batch's size) by
    s ~ U[lo, hi] (rounded to whole pixels as cv2.resize), then crop ``size`` (default: the batch's
    size) at an offset ~ U{0 .. zoomed − size − 1} (``np.random.randint``) — or, when the zoomed image
    is not larger than ``size`` on both sides, resize it to ``size`` (ESANet's ``RandomCrop``).
    One ``grid_sample`` per key."""
    first = batch[keys[0]]
    count, canvas, device = first.shape[0], first.shape[-2:], first.device
    height, width = (int(v) for v in (size or canvas))
    if extents is None:
        native = torch.tensor([list(canvas)], device=device, dtype=torch.float32).expand(count, 2)
    else:
        native = extents.to(device=device, dtype=torch.float32)
    low, high = min(scale_range), max(scale_range)
    scale = low + (high - low) * torch.rand(count, device=device)
    zoomed = (scale[:, None] * native).round()  # [B, (h, w)]
    out_size = torch.tensor([height, width], device=device, dtype=torch.float32)
    crop = (zoomed > out_size).all(dim=1, keepdim=True)
    offset = torch.where(crop, (torch.rand(count, 2, device=device) * (zoomed - out_size)).floor(), 0.0)
    step = native / torch.where(crop, zoomed, out_size)  # native pixels per output pixel
    # native pixel = step · (output pixel + offset + ½) − ½, in grid_sample's normalised coordinates
    canvas_size = torch.tensor(list(canvas), device=device, dtype=torch.float32)
    theta = torch.zeros(count, 2, 3, device=device)
    theta[:, 0, 0] = step[:, 1] * width / canvas_size[1]
    theta[:, 1, 1] = step[:, 0] * height / canvas_size[0]
    theta[:, 0, 2] = step[:, 1] * (width + 2 * offset[:, 1]) / canvas_size[1] - 1
    theta[:, 1, 2] = step[:, 0] * (height + 2 * offset[:, 0]) / canvas_size[0] - 1
    grid = F.affine_grid(theta, [count, 1, height, width], align_corners=False)
    out = dict(batch)
    for k in keys:
        value = batch[k]
        dense = value.dim() == 3
        source = value.unsqueeze(1).float() if dense else value
        mode = "nearest" if dense or k in NEAREST else "bilinear"
        sampled = F.grid_sample(source, grid.to(source.dtype), mode=mode, padding_mode="border", align_corners=False)
        out[k] = sampled.squeeze(1).to(value.dtype) if dense else sampled
    return out


def _pixel_to_normalised(size: int) -> torch.Tensor:
    """3×3 map from pixel coordinates (cv2: pixel centres at integers) of a side of ``size``
    pixels to grid_sample's normalised coordinates (``align_corners=False``), one axis pair."""
    matrix = torch.eye(3)
    matrix[0, 0] = matrix[1, 1] = 2.0 / size
    matrix[0, 2] = matrix[1, 2] = 1.0 / size - 1.0
    return matrix


def face_rotate_crop(batch: Batch, keys: Sequence[str], resize: int, max_angle: int,
                     stats: Stats | None = None, crop: int | None = None) -> Batch:
    """The MMANet face code's training geometry on square images of side S (the training cache:
    R, the face recipes; an input-size cache gives the same geometry from fewer pixels):
    ``Resize_multi(R)`` → ``RondomRotion_multi(max_angle)`` → ``RondomCrop_multi(C)`` (``crop``,
    default S), per sample and for every modality alike, composed into one bilinear resampling. The rotation is by an
    integer angle ~ U{−a..a} about the centre of the R×R image (cv2.getRotationMatrix2D(c, −angle)),
    onto a canvas of int(0.8·R·(|sin| + |cos|)) pixels with the image centred (the official
    0.8 factor: at 0° a 115-pixel centre region of 144), black outside; the crop is at an integer
    offset ~ U[0, canvas − C). Black is 0 before normalisation (``stats``: per-channel mean / std)."""
    first = batch[keys[0]]
    size, side, device = first.shape[0], first.shape[-1], first.device
    crop = crop or side
    angle = torch.randint(-max_angle, max_angle + 1, (size,), device=device).float()
    radians = torch.deg2rad(-angle)  # the official rotates by −angle
    cos, sin = torch.cos(radians), torch.sin(radians)
    canvas = (0.8 * resize * (cos.abs() + sin.abs())).floor()
    oy = (torch.rand(size, device=device) * (canvas - crop)).floor()
    ox = (torch.rand(size, device=device) * (canvas - crop)).floor()
    centre = resize / 2
    # M (R-image → canvas, pixel coordinates): cv2's rotation about the centre, shifted to the canvas centre
    forward = torch.zeros(size, 3, 3, device=device)
    forward[:, 0, 0], forward[:, 0, 1], forward[:, 1, 0], forward[:, 1, 1] = cos, sin, -sin, cos
    forward[:, 0, 2] = (1 - cos) * centre - sin * centre + canvas / 2 - centre
    forward[:, 1, 2] = sin * centre + (1 - cos) * centre + canvas / 2 - centre
    forward[:, 2, 2] = 1
    shift = torch.eye(3, device=device).repeat(size, 1, 1)  # output pixel → canvas pixel (the crop)
    shift[:, 0, 2], shift[:, 1, 2] = ox, oy
    to_cache = torch.eye(3, device=device)  # R-image pixel → cached S-image pixel (cv2.resize's centres)
    to_cache[0, 0] = to_cache[1, 1] = side / resize
    to_cache[0, 2] = to_cache[1, 2] = 0.5 * side / resize - 0.5
    to_source, from_output = _pixel_to_normalised(side).to(device), _pixel_to_normalised(crop).to(device)
    theta = to_source @ to_cache @ torch.linalg.inv(forward) @ shift @ torch.linalg.inv(from_output)
    grid = F.affine_grid(theta[:, :2], [size, 1, crop, crop], align_corners=False)
    out = dict(batch)
    for k in keys:
        value = batch[k]
        black = torch.zeros(1, value.shape[1], 1, 1, device=device, dtype=value.dtype)
        if stats is not None and k in stats:
            mean, std = (torch.as_tensor(v, dtype=value.dtype, device=device).reshape(1, -1, 1, 1) for v in stats[k])
            black = -mean / std
        out[k] = F.grid_sample(value - black, grid.to(value.dtype), mode="bilinear", padding_mode="zeros",
                               align_corners=False) + black
    return out


def _rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """matplotlib's ``rgb_to_hsv`` on ``[B, 3, H, W]`` values in [0, 1]."""
    maximum = rgb.max(dim=1).values
    minimum = rgb.min(dim=1).values
    delta = maximum - minimum
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    r, g, b = rgb.unbind(1)
    # matplotlib assigns the red, green, blue cases in turn: on a tie the later one wins
    hue = torch.where(b == maximum, 4 + (r - g) / safe, torch.where(g == maximum, 2 + (b - r) / safe, (g - b) / safe))
    hue = torch.where(delta > 0, (hue / 6) % 1.0, torch.zeros_like(hue))
    saturation = torch.where(maximum > 0, delta / torch.where(maximum > 0, maximum, torch.ones_like(maximum)),
                             torch.zeros_like(maximum))
    return torch.stack([hue, saturation, maximum], dim=1)


def _hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """matplotlib's ``hsv_to_rgb`` on ``[B, 3, H, W]``."""
    hue, saturation, value = hsv.unbind(1)
    sector = (hue * 6).floor()
    fraction = hue * 6 - sector
    sector = sector.long() % 6
    p, q, t = value * (1 - saturation), value * (1 - saturation * fraction), value * (1 - saturation * (1 - fraction))
    table = torch.stack([torch.stack(c, dim=0) for c in (
        (value, t, p), (q, value, p), (p, value, t), (p, q, value), (t, p, value), (value, p, q))], dim=0)  # [6, 3, B, H, W]
    rgb = table.gather(0, sector.unsqueeze(0).unsqueeze(0).expand(1, 3, *sector.shape)).squeeze(0)
    return rgb.movedim(0, 1)


def hsv_jitter(rgb: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, amount: float) -> torch.Tensor:
    """ESANet's ``RandomHSV``: on the 0-255 image (``rgb · std + mean``), hue, saturation and value
    multiplied by per-sample factors ~ U[1 − amount, 1 + amount] and clipped to [0, 1], back to
    whole 0-255 values, normalised again."""
    size = rgb.shape[0]
    raw = ((rgb.float() * std + mean) / 255.0).clamp(0, 1)
    factors = 1 + amount * (2 * torch.rand(size, 3, 1, 1, device=rgb.device) - 1)
    jittered = _hsv_to_rgb((_rgb_to_hsv(raw) * factors).clamp(0, 1))
    return (((jittered * 255).floor() - mean) / std).to(rgb.dtype)


def recipe_view(batch: Batch, modalities: Sequence[str], recipe: Recipe, dense_target: bool,
                ignore_index: int | None = None, stats: Stats | None = None,
                input_size: Sequence[int] | None = None) -> Batch:
    """A copy of ``batch`` with the recipe's augmentation (a no-op if none is enabled), each
    sample augmented with probability ``recipe.augment_probability``; ``stats`` (the per-channel
    normalisation, :class:`mmbench.data.arrays.ArrayBatches.stats`) are needed for the HSV jitter
    and ``input_size`` (the network's (H, W)) where the training batch is cached at another size
    (``recipe.resolution=native``, whose batches carry each sample's ``extent``; the face recipes)."""
    out = dict(batch)
    extents = out.pop(EXTENT, None)
    keys = _image_keys(batch, modalities, dense_target)
    if not keys:
        return out
    size, device = batch["target"].shape[0], batch["target"].device
    if recipe.augment_probability < 1:
        augmented = _random_flags(size, device, recipe.augment_probability)
        view = recipe_view(out, modalities, recipe.but(augment_probability=1.0), dense_target, ignore_index, stats,
                           input_size)
        for k in keys:
            out[k] = _where(augmented, view[k], batch[k])
        return out
    if recipe.scale_range:
        out = scale_crop(out, keys, recipe.scale_range, input_size, extents)
    if recipe.face_augmentation:
        resize, max_angle = recipe.face_augmentation
        out = face_rotate_crop(out, [k for k in keys if k != "target"], scaled_side(resize, recipe.input_scale),
                               max_angle, stats, crop=input_size[-1] if input_size else None)
    if recipe.hsv_jitter and "rgb" in keys:
        if stats is None or "rgb" not in stats:
            raise ValueError("recipe.hsv_jitter needs the rgb modality's normalisation statistics")
        mean, std = (torch.as_tensor(v, dtype=torch.float32, device=device).reshape(1, -1, 1, 1) for v in stats["rgb"])
        out["rgb"] = hsv_jitter(out["rgb"], mean, std, recipe.hsv_jitter)
    if recipe.hflip:
        flags = _random_flags(size, device)
        for k in keys:
            out[k] = _where(flags, out[k].flip(-1), out[k])
    if recipe.vflip:
        flags = _random_flags(size, device)
        for k in keys:
            out[k] = _where(flags, out[k].flip(-2), out[k])
    if recipe.rot90:
        square = out[keys[0]].shape[-1] == out[keys[0]].shape[-2]
        turns = torch.randint(0, 4 if square else 1, (size,), device=device) * (1 if square else 2)
        for k in keys:
            rotated = [torch.rot90(out[k], t, dims=(-2, -1)) for t in range(4)]
            result = out[k]
            for t in range(1, 4):
                result = _where(turns == t, rotated[t], result)
            out[k] = result
    if recipe.crop_padding:
        dy = torch.randint(0, 2 * recipe.crop_padding + 1, (size,), device=device)
        dx = torch.randint(0, 2 * recipe.crop_padding + 1, (size,), device=device)
        for k in keys:
            fill = float(ignore_index if ignore_index is not None else 0) if k == "target" else 0.0
            out[k] = _crop(out[k], recipe.crop_padding, dy, dx, fill)
    return out


def _affine(op: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """``[B, 2, 3]`` affine matrices (normalised coordinates) of the geometric operations."""
    size = op.shape[0]
    theta = torch.zeros(size, 2, 3, device=op.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    sign = torch.where(torch.rand(size, device=op.device) < 0.5, -1.0, 1.0)
    m = magnitude * sign
    angle = m * math.radians(30.0)
    rotate = op == STRONG_OPS.index("rotate")
    theta[rotate, 0, 0] = torch.cos(angle[rotate])
    theta[rotate, 0, 1] = -torch.sin(angle[rotate])
    theta[rotate, 1, 0] = torch.sin(angle[rotate])
    theta[rotate, 1, 1] = torch.cos(angle[rotate])
    theta[op == STRONG_OPS.index("shear_x"), 0, 1] = 0.3 * m[op == STRONG_OPS.index("shear_x")]
    theta[op == STRONG_OPS.index("shear_y"), 1, 0] = 0.3 * m[op == STRONG_OPS.index("shear_y")]
    theta[op == STRONG_OPS.index("translate_x"), 0, 2] = 0.9 * m[op == STRONG_OPS.index("translate_x")]
    theta[op == STRONG_OPS.index("translate_y"), 1, 2] = 0.9 * m[op == STRONG_OPS.index("translate_y")]
    return theta


def _warp(value: torch.Tensor, theta: torch.Tensor, fill: float) -> torch.Tensor:
    dense = value.dim() == 3
    source = value.unsqueeze(1).float() if dense else value
    grid = F.affine_grid(theta.to(source.dtype), list(source.shape), align_corners=False)
    inside = F.grid_sample(torch.ones_like(source[:, :1]), grid, mode="nearest", align_corners=False)
    warped = F.grid_sample(source, grid, mode="nearest" if dense else "bilinear", align_corners=False)
    warped = warped * inside + fill * (1 - inside)
    return warped.squeeze(1).to(value.dtype) if dense else warped


def strong_view(batch: Batch, modalities: Sequence[str], recipe: Recipe, dense_target: bool,
                ignore_index: int | None = None, stats: Stats | None = None,
                input_size: Sequence[int] | None = None, num_ops: int = 2) -> Batch:
    """The recipe view, then ``num_ops`` RandAugment operations per sample and Cutout."""
    out = recipe_view(batch, modalities, recipe, dense_target, ignore_index, stats, input_size)
    keys = _image_keys(out, modalities, dense_target)
    if not keys:
        return out
    size, device = out["target"].shape[0], out["target"].device
    for _ in range(num_ops):
        op = torch.randint(0, len(STRONG_OPS), (size,), device=device)
        magnitude = torch.rand(size, device=device)
        theta = _affine(op, magnitude)
        geometric = (op >= 1) & (op <= 5)
        gain = 1 + (magnitude * 0.9) * torch.where(torch.rand(size, device=device) < 0.5, -1.0, 1.0)
        for k in keys:
            value = out[k]
            if k == "target":
                fill = float(ignore_index if ignore_index is not None else 0)
                out[k] = _where(geometric, _warp(value, theta, fill), value)
                continue
            value = _where(geometric, _warp(value, theta, 0.0), value)
            shape = (-1, *([1] * (value.dim() - 1)))
            mean = value.mean(dim=(-2, -1), keepdim=True)
            value = _where(op == STRONG_OPS.index("brightness"), value + (gain - 1).reshape(shape), value)
            value = _where(op == STRONG_OPS.index("contrast"), mean + (value - mean) * gain.reshape(shape), value)
            noise = torch.randn_like(value) * (0.5 * magnitude).reshape(shape)
            out[k] = _where(op == STRONG_OPS.index("noise"), value + noise, value)
    height, width = out[keys[0]].shape[-2:]
    side = (torch.rand(size, device=device) * 0.5 * width).long()
    cy = torch.randint(0, height, (size,), device=device)
    cx = torch.randint(0, width, (size,), device=device)
    rows = torch.arange(height, device=device)[None, :, None]
    cols = torch.arange(width, device=device)[None, None, :]
    half = (side // 2)[:, None, None]
    hole = ((rows - cy[:, None, None]).abs() <= half) & ((cols - cx[:, None, None]).abs() <= half) & (side[:, None, None] > 0)
    for k in keys:
        if k != "target":
            out[k] = out[k].masked_fill(hole[:, None], 0.0)
    return out


VIEWS = {"recipe": recipe_view, "strong": strong_view}
"""The views a method can ask the engine for (see :class:`mmbench.engine.MethodModule`)."""
