"""Procedural RGB-D(-IR) scenes with complementary modalities.

Every scene is drawn from a seeded ``numpy.random.Generator``; the same (version, split, index)
always gives the same sample. Modalities are spatially aligned (as registered RGB-D is) and each
carries a different part of the label:

* classification: the class is (texture, shape). RGB shows the object's texture, depth its 3D
  shape; each modality also carries a weak, unreliable cue of the other factor (the object colour
  follows the shape, the object radius follows the texture, each only ``CUE`` of the time);
* segmentation: the same factorisation per object, plus an ignore ring at object borders;
* presentation attack detection: live faces vs three attack types, each visible in exactly one
  modality (print → flat depth, replay screen → no heat in IR, mask → texture artefacts in RGB).

So one modality alone can only solve part of a task and the full set solves all of it.
"""

from __future__ import annotations

import numpy as np

CUE = 0.3  # probability that a modality carries the weak cue of the other factor
TEXTURES = ("horizontal", "vertical", "checker", "diagonal")
SHAPES = ("dome", "cone", "plateau")
PALETTES = np.array([[0.85, 0.30, 0.25], [0.25, 0.75, 0.35], [0.30, 0.40, 0.90]])
RADII = ((6.0, 7.0), (7.5, 8.5), (9.0, 10.0), (10.5, 11.5))


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32), indexing="ij")


def texture(kind: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A binary stripe / checker pattern in [0, 1] with a random period and phase."""
    yy, xx = _grid(size)
    period = rng.uniform(3.0, 5.0)
    phase = rng.uniform(0, period)
    if kind == 0:
        wave = np.sin(2 * np.pi * (yy + phase) / period)
    elif kind == 1:
        wave = np.sin(2 * np.pi * (xx + phase) / period)
    elif kind == 2:
        wave = np.sin(2 * np.pi * (yy + phase) / period) * np.sin(2 * np.pi * (xx + phase) / period)
    else:
        wave = np.sin(2 * np.pi * (xx + yy + phase) / (period * 1.4))
    return (wave > 0).astype(np.float32)


def background_rgb(size: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = _grid(size)
    base = rng.uniform(0.2, 0.8, size=3).astype(np.float32)
    slope = rng.normal(0, 0.01, size=(3, 2)).astype(np.float32)
    return np.clip(base[:, None, None] + slope[:, :1, None] * yy + slope[:, 1:, None] * xx, 0, 1)


def background_depth(size: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = _grid(size)
    return (rng.uniform(2.8, 3.4) + rng.normal(0, 0.01) * yy + rng.normal(0, 0.01) * xx).astype(np.float32)


def shape_profile(kind: int, dist: np.ndarray, radius: float, height: float) -> np.ndarray:
    """How far the object rises from the background at normalised distance ``dist / radius``."""
    r = np.clip(dist / radius, 0, 1)
    if kind == 0:
        return height * np.sqrt(1 - r**2)
    if kind == 1:
        return height * (1 - r)
    return np.full_like(r, height)


def _object_colour(shape: int, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < CUE:
        return np.clip(PALETTES[shape] + rng.normal(0, 0.05, 3), 0, 1).astype(np.float32)
    return rng.uniform(0.1, 0.9, size=3).astype(np.float32)


def _object_radius(tex: int, rng: np.random.Generator) -> float:
    if rng.random() < CUE:
        return float(rng.uniform(*RADII[tex]))
    return float(rng.uniform(RADII[0][0], RADII[-1][1]))


def _finish(rgb: np.ndarray, depth: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    rgb = np.clip(rgb + rng.normal(0, 0.06, rgb.shape), 0, 1)
    depth = depth + rng.normal(0, 0.015, depth.shape)
    holes = rng.random(depth.shape) < 0.005  # missing depth pixels, as on Kinect sensors
    depth = np.where(holes, 0.0, depth)
    return (rgb * 255).round().astype(np.uint8), (depth * 1000).round().clip(0, 65535).astype(np.uint16)


def classification_scene(rng: np.random.Generator, size: int = 32) -> tuple[np.ndarray, np.ndarray, int]:
    """(rgb uint8 [3,H,W], depth uint16 millimetres [H,W], label = texture * len(SHAPES) + shape)."""
    tex, shape = int(rng.integers(len(TEXTURES))), int(rng.integers(len(SHAPES)))
    rgb, depth = background_rgb(size, rng), background_depth(size, rng)
    _draw_object(rgb, depth, tex, shape, rng, size)
    rgb8, depth16 = _finish(rgb, depth, rng)
    return rgb8, depth16, tex * len(SHAPES) + shape


def _draw_object(rgb: np.ndarray, depth: np.ndarray, tex: int, shape: int, rng: np.random.Generator, size: int,
                 radius: float | None = None, center: tuple[float, float] | None = None) -> np.ndarray:
    radius = radius if radius is not None else _object_radius(tex, rng)
    cy, cx = center if center is not None else rng.uniform(radius * 0.8, size - radius * 0.8, size=2)
    yy, xx = _grid(size)
    dist = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
    inside = dist <= radius
    colour = _object_colour(shape, rng)
    pattern = texture(tex, size, rng)
    shaded = colour[:, None, None] * (0.55 + 0.45 * pattern[None])
    rgb[:, inside] = shaded[:, inside]
    rise = shape_profile(shape, dist, radius, rng.uniform(0.4, 0.7))
    depth[inside] = depth[inside] - rise[inside]
    return dist / radius


SEG_TEXTURES = 2
SEG_CLASSES = 1 + SEG_TEXTURES * len(SHAPES)  # 0 = background
IGNORE = 255


def segmentation_scene(rng: np.random.Generator, size: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rgb, depth, mask uint8 [H,W]): 2-3 objects; class 1 + texture * 3 + shape; 255 on borders."""
    rgb, depth = background_rgb(size, rng), background_depth(size, rng)
    mask = np.zeros((size, size), dtype=np.uint8)
    for _ in range(int(rng.integers(2, 4))):
        tex, shape = int(rng.integers(SEG_TEXTURES)), int(rng.integers(len(SHAPES)))
        radius = _object_radius(tex * 2, rng) * 0.75
        rel = _draw_object(rgb, depth, tex * 2, shape, rng, size, radius=radius)
        mask[rel <= 0.85] = 1 + tex * len(SHAPES) + shape
        mask[(rel > 0.85) & (rel <= 1.15)] = IGNORE
    rgb8, depth16 = _finish(rgb, depth, rng)
    return rgb8, depth16, mask


ATTACKS = ("print", "replay", "mask")


def face_scene(rng: np.random.Generator, size: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, str]:
    """(rgb, depth, ir uint8 [H,W], label 1 = live / 0 = spoof, "live" or the attack). Attacks:
    print (flat depth), replay (no heat in IR), mask (texture artefacts in RGB) — each visible in
    one modality only."""
    live = rng.random() < 0.5
    attack = None if live else ATTACKS[int(rng.integers(len(ATTACKS)))]
    yy, xx = _grid(size)
    cy, cx = size / 2 + rng.normal(0, 1.5, size=2)
    ry, rx = rng.uniform(10, 13), rng.uniform(7.5, 10)
    ell = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
    face = ell <= 1
    eyes = np.zeros_like(face)
    for sx in (-1, 1):
        eyes |= np.sqrt(((yy - cy + ry * 0.3) / 1.6) ** 2 + ((xx - cx - sx * rx * 0.4) / 2.0) ** 2) <= 1
    mouth = (np.abs(yy - cy - ry * 0.45) < 1.0) & (np.abs(xx - cx) < rx * 0.35)

    rgb = background_rgb(size, rng)
    skin = np.array([0.85, 0.65, 0.55]) * rng.uniform(0.6, 1.1) + rng.normal(0, 0.04, 3)
    rgb[:, face] = np.clip(skin, 0, 1)[:, None]
    rgb[:, eyes & face] *= 0.3
    rgb[:, mouth & face] *= 0.5
    if attack == "mask":  # moiré / paper-mask texture only RGB shows
        stripes = texture(int(rng.integers(4)), size, rng)
        rgb[:, face] *= (0.55 + 0.45 * stripes[face])[None]

    depth = background_depth(size, rng) + 0.5
    if attack == "print":
        depth[face] -= 0.4 + rng.normal(0, 0.005)
    else:
        depth[face] -= 0.4 + 0.35 * np.sqrt(np.clip(1 - ell[face] ** 2, 0, 1))

    ir = np.full((size, size), rng.uniform(0.1, 0.25), dtype=np.float32)
    if attack == "replay":  # a screen emits no body heat
        ir[face] = rng.uniform(0.15, 0.3)
    else:
        ir[face] = rng.uniform(0.65, 0.9) * (1 - 0.2 * ell[face])
        ir[eyes & face] += 0.08
    ir = np.clip(ir + rng.normal(0, 0.05, ir.shape), 0, 1)

    rgb8, depth16 = _finish(rgb, depth, rng)
    return rgb8, depth16, (ir * 255).round().astype(np.uint8), int(live), attack or "live"


# -------------------------------------------------------------------------------------------------
# Cross-modal classification: a rich multispectral and a poor SAR-like modality (EuroSAT-MS-SAR's
# shape), for the distillation scenarios.

STRUCTURES = ("fields", "urban", "forest", "water", "river")
FAMILIES = ("dry", "wet")
MS_BANDS, SAR_BANDS = 4, 2
# One spectral signature per class (structure-major order), fixed: classes of one structure differ
# only in spectrum, and a few signatures are close so the MS teacher's errors are informative.
SIGNATURES = np.random.default_rng(20241128).uniform(0.15, 0.85, size=(len(STRUCTURES) * len(FAMILIES), MS_BANDS))
SAR_LEVEL = np.array([0.45, 0.75, 0.6, 0.12, 0.35])  # mean VV backscatter per structure
SAR_CROSS = np.array([0.35, 0.45, 0.8, 0.2, 0.3])  # VH / VV: volume scattering is high in forests
WET_CUE = 0.05  # moisture brightens SAR slightly: the only, weak, trace of the spectral family


def _structure_pattern(kind: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A [0, 1] map of the land-cover structure, random orientation and phase."""
    yy, xx = _grid(size)
    angle = rng.uniform(0, np.pi)
    u = np.cos(angle) * xx + np.sin(angle) * yy
    v = -np.sin(angle) * xx + np.cos(angle) * yy
    if kind == 0:  # fields: parallel strips of varying width
        return (np.sin(2 * np.pi * u / rng.uniform(5, 9) + rng.uniform(0, 6)) > 0).astype(np.float32)
    if kind == 1:  # urban: a grid of blocks
        period = rng.uniform(5, 8)
        return (((u % period) < period * 0.6) & ((v % period) < period * 0.6)).astype(np.float32)
    if kind == 2:  # forest: smooth blobs (low-pass noise)
        coarse = rng.random((size // 8 + 2, size // 8 + 2))
        blobs = np.kron(coarse, np.ones((8, 8)))[:size, :size]
        return (blobs > 0.5).astype(np.float32) * 0.6 + 0.4 * rng.random((size, size)).astype(np.float32)
    if kind == 3:  # water: nearly uniform
        return np.full((size, size), 0.5, dtype=np.float32) + 0.05 * rng.standard_normal((size, size)).astype(np.float32)
    offset = rng.uniform(-size / 4, size / 4)  # river: a meandering band across a uniform field
    centre = size / 2 + offset + 3 * np.sin(2 * np.pi * v / rng.uniform(12, 24))
    return (np.abs(u - centre) < rng.uniform(2.5, 4.5)).astype(np.float32)


def mssar_scene(rng: np.random.Generator, size: int = 32) -> tuple[np.ndarray, np.ndarray, int]:
    """(ms uint8 [4, H, W], sar uint8 [2, H, W], label = structure * 2 + family).

    MS shows the structure and the class's spectral signature (with per-image jitter and
    illumination), so it identifies the class; SAR shows the structure through heavy
    multiplicative speckle and carries only a weak cue of the spectral family."""
    structure, family = int(rng.integers(len(STRUCTURES))), int(rng.integers(len(FAMILIES)))
    label = structure * len(FAMILIES) + family
    pattern = _structure_pattern(structure, size, rng)
    signature = np.clip(SIGNATURES[label] + rng.normal(0, 0.07, MS_BANDS), 0, 1)
    gain = rng.uniform(0.8, 1.2)
    ms = gain * signature[:, None, None] * (0.7 + 0.3 * pattern[None])
    ms = np.clip(ms + rng.normal(0, 0.04, ms.shape), 0, 1)
    level = SAR_LEVEL[structure] + WET_CUE * family + rng.normal(0, 0.06)
    vv = level * (0.5 + pattern)
    vh = vv * SAR_CROSS[structure]
    speckle = rng.gamma(3.0, 1 / 3.0, size=(SAR_BANDS, size, size))  # 3-look intensity speckle
    sar = np.clip(np.stack([vv, vh]) * speckle / 1.6, 0, 1)
    return (ms * 255).round().astype(np.uint8), (sar * 255).round().astype(np.uint8), label
