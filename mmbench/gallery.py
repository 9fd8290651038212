"""Qualitative gallery of a segmentation run: a few fixed test samples saved as PNG — each
modality, the ground truth and the prediction of the first deployment subset — next to the run
record, for the leaderboard's task page.

The samples are the first :data:`GALLERY_SAMPLES` test rows in file order, so every method of a
task shows the same images. Label maps use one fixed palette (ignore = black) so colours mean the
same class on every page.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mmbench.data.arrays import ArrayBatches
from mmbench.data.cache import TARGET
from mmbench.engine.loop import to_device
from mmbench.engine.module import MethodModule
from mmbench.files import atomic_write
from mmbench.records import GalleryImage
from mmbench.specs import TaskSpec

GALLERY_SAMPLES = 3


def label_palette(num_classes: int) -> np.ndarray:
    """``[256, 3]`` uint8 colours: the PASCAL VOC bit-interleaving palette, class 0 included,
    shifted by one so that no class is black; every value ≥ ``num_classes`` (ignore) is black."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for label in range(num_classes):
        code, colour = label + 1, [0, 0, 0]
        for shift in range(7, -1, -1):
            for channel in range(3):
                colour[channel] |= ((code >> channel) & 1) << shift
            code >>= 3
        palette[label] = colour
    return palette


def modality_image(values: np.ndarray) -> Image.Image:
    """A viewable image of one sample of a modality (``[C, H, W]``): 3 channels → RGB, 1 → gray,
    otherwise the first three channels; each channel min-max scaled to 8 bits."""
    array = np.asarray(values, dtype=np.float64)
    channels = array[:3] if array.shape[0] >= 3 else array[:1]
    low = channels.min(axis=(1, 2), keepdims=True)
    span = np.maximum(channels.max(axis=(1, 2), keepdims=True) - low, 1e-12)
    scaled = np.round(255 * (channels - low) / span).astype(np.uint8)
    return Image.fromarray(scaled[0] if scaled.shape[0] == 1 else np.moveaxis(scaled, 0, -1))


def label_image(labels: np.ndarray, palette: np.ndarray) -> Image.Image:
    return Image.fromarray(palette[np.clip(labels, 0, 255).astype(np.uint8)])


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


@torch.no_grad()
def save_gallery(
    module: MethodModule, test: ArrayBatches, task: TaskSpec, subset: Sequence[str], device: torch.device,
    directory: Path, relative_to: Path,
) -> list[GalleryImage]:
    """Write the gallery PNGs of a segmentation run into ``directory``; returns their entries
    (paths relative to ``relative_to``, the record's folder)."""
    if task.kind != "segmentation" or len(test) == 0:
        return []
    positions = list(range(min(GALLERY_SAMPLES, len(test))))
    batch = to_device(test[positions], device)
    was_training = module.training
    module.eval()
    prediction = module.predict_subsets(batch, [tuple(subset)])[tuple(subset)].argmax(dim=1).cpu().numpy()
    module.train(was_training)
    palette = label_palette(task.num_classes)
    rows = batch["index"].cpu().numpy()
    entries: list[GalleryImage] = []
    directory.mkdir(parents=True, exist_ok=True)
    for k, row in enumerate(rows):
        images = {m: modality_image(test.split.arrays[m][row]) for m in test.modalities}
        images["target"] = label_image(test.split.arrays[TARGET][row], palette)
        images["prediction"] = label_image(prediction[k], palette)
        for kind, image in images.items():
            path = directory / f"{int(row)}-{kind}.png"
            data = _png(image)
            atomic_write(path, lambda f, data=data: f.write(data))
            entries.append(GalleryImage(sample=int(row), kind=kind, path=path.relative_to(relative_to).as_posix(),
                                        subset="+".join(subset) if kind == "prediction" else ""))
    return entries
