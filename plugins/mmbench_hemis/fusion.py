"""HeMIS's abstraction layer (Havaei et al., MICCAI 2016): the first and second moments of the
per-modality features over the available modalities, concatenated along channels."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mmbench.models import masked_feature, present_count


class MomentFusion:
    """A :class:`mmbench.models.FusionRule`: mean and variance over the present modalities.

    ``population=True`` (U-HeMIS): the population variance over the present modalities (0 with
    one modality); ``False``: the HeMIS-style ``SURF_MV`` baseline of shicaiwei123/MMANet-CVPR2023
    (``classification/models/surf_baseline.py``) — the squared deviations summed over *all*
    modalities, absent ones counting as zeros, divided by the present count, except that a sample
    with exactly one present modality gets variance 0 (``x_var[p_sum == 1] = 0``), as the
    official forward sets it.
    """

    def __init__(self, population: bool = True):
        self.population = population

    def out_channels(self, channels: Sequence[int]) -> int:
        if len(set(channels)) > 1:
            raise ValueError("moment fusion needs the same number of channels from every modality")
        return 2 * channels[0]

    def __call__(self, features: Sequence[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        masked = [masked_feature(f, mask[:, i]) for i, f in enumerate(features)]
        total = torch.stack(masked, dim=0).sum(dim=0)
        count = present_count(mask, total)
        mean = total / count
        if self.population:
            squares = [masked_feature((f - mean) ** 2, mask[:, i]) for i, f in enumerate(features)]
        else:
            squares = [(m - mean) ** 2 for m in masked]
        variance = torch.stack(squares, dim=0).sum(dim=0) / count
        if not self.population:
            variance = variance * (count > 1).to(variance.dtype)
        return torch.cat([mean, variance], dim=1)
