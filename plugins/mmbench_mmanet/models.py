"""The MMANet student: SE-fusion network with feature-level modality dropout, margin-aware
distillation from the full-modality teacher and the modality-aware auxiliary branch.

Built from the core: for classification :class:`mmbench.models.FusionNet` with SE fusion (the
CASIA-SURF SF network: fusion after ``layer2``, shared ``layer3``-``layer4``), teacher = the
``se-fusion`` baseline; for segmentation :class:`mmbench.models.ESANetwork` (the official code is
an ESANet fork), teacher = the ``esanet`` baseline. Teachers are declared in
:func:`mmbench_mmanet.requires`, trained on full modalities before the student, and read only
through the trained-model contract (``features``: fused features per scale and logits).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from mmbench import TaskSpec, all_subsets
from mmbench.engine import MethodModule, RunContext
from mmbench.models import (
    ESANetwork,
    FusionNet,
    ResNetTrunk,
    deep_supervision_loss,
    meter_for,
    subset_mask,
    task_loss,
    uniform_subset_mask,
)
from mmbench_mmanet.losses import (
    mad_loss,
    mad_loss_dense,
    mar_loss,
    mar_loss_dense,
    weak_combination_distance,
)

# The official schedules: (begin epoch, mining epochs, λ_MAD, λ_MAR) per task kind, 0-based epochs
# of mmbench. Classification (lib/model_develop.py): mining after epochs 2-4, MAD / MAR from epoch 6
# of a loop whose epoch 0 trains nothing — the task recipe trains the 99 others, so mmbench's epoch
# k is the official k + 1 and the official begin 5 is 4 here. Segmentation
# (segmentation/train_missing_mmanet.py): begin 10, mining after epochs 6-9, every epoch trained.
OFFICIAL = {"classification": (4, 3, 30.0, 0.5), "segmentation": (10, 4, 4.0, 0.2)}
OFFICIAL_BY_TASK = {"seg-cityscapes": (10, 4, 10.0, 0.1)}
"""Task-specific weights: segmentation/train_cityscape_mmant.sh passes --kd_scale 10 --auxi_scale 0.1."""


def official_values(task: TaskSpec) -> tuple[int, int, float, float]:
    """(begin epoch, mining epochs, λ_MAD, λ_MAR) of the official code for ``task``."""
    return OFFICIAL_BY_TASK.get(task.name, OFFICIAL["segmentation" if task.kind == "segmentation" else "classification"])


def schedule(task: TaskSpec, config: Any, epochs: int) -> tuple[int, int]:
    """(begin epoch, first mining epoch), 0-based. Official begin: 4 (classification, of 99
    trained epochs) / 10 (segmentation, of 300); on recipes shorter than twice that, half the epochs."""
    official_begin, official_mining = official_values(task)[:2]
    begin = config.begin_epoch if config.begin_epoch is not None else min(official_begin, epochs // 2)
    mining = config.mining_epochs if config.mining_epochs is not None else official_mining
    return begin, max(begin - mining, 1)


class MMANet(MethodModule):
    """MMANet (Wei, Luo & Luo, CVPR 2023), following shicaiwei123/MMANet-CVPR2023.

    * per-sample modality dropout on features, uniform over the non-empty subsets;
    * until the begin epoch: cross-entropy only. During the mining epochs before it, the student
      is evaluated on the **validation** split with each candidate combination (subsets of size
      ≥ M − 1: the official 2-modality + full masks for three modalities, every mask for two) and
      the distance to the full set is accumulated — classification: KL of softmaxed
      predicted-label histograms (official quirk, :func:`weak_combination_distance`);
      segmentation: squared mIoU difference. The farthest is the weak combination;
    * after the begin epoch: CE + λ_MAD·MAD + λ_MAR·MAR with the official weights (classification
      30 / 0.5 on ``layer4`` features; segmentation 4 / 0.2, MAD summed over the three deepest
      fused feature levels). MAR trains the auxiliary branch on the samples whose mask is the weak
      combination (classification: also each of its single modalities).

    Official quirks reproduced by default (``official=false`` gives the paper's intent for each):
    classification MAR's broadcast normaliser n_k·Σ_i CE_i / B (:func:`mar_loss`); segmentation
    MAD's entropy weights over the teacher's first decoder map with its BatchNorm on batch
    statistics (the official teacher stays in training mode); segmentation MAR on the selected
    samples only, 1e-16 without any, on the main decoder's output when no sample has only the
    second modality (:func:`mar_loss_dense`). With ``recipe.decoder=esanet`` (the full profiles)
    the network is ESANet's with its deep supervision: the CE and MAR are summed over the four
    outputs and MAD reads the official ``fuse_cache`` (context output and projected skips); the CE
    and MAR take the run's class weights (``recipe.class_weighting``: median frequency on NYUv2 /
    SUN RGB-D, as the fork's ``CrossEntropyLoss2d``).

    Adaptations, by design: the auxiliary branch takes the same fused features as the main one —
    as the official code does, whose three per-combination auxiliary outputs are therefore one; the
    official classification script's epoch 0 trains nothing — the face recipes train its 99 other
    epochs and the begin epoch counts from there (:data:`OFFICIAL`). The
    full segmentation profile builds ESANet-R50 with ImageNet weights for student and teacher, as
    the fork forces; the smoke profile the CPU-sized light network.
    """

    def __init__(self, task: TaskSpec, config: Any, ctx: RunContext):
        super().__init__()
        self.task, self.config, self.ctx = task, config, ctx
        self.modalities = tuple(ctx.modalities)
        self.dense = task.kind == "segmentation"
        arch, width = config.backbone or ctx.recipe.backbone, ctx.recipe.width
        if self.dense:  # the official segmentation model is an ESANet fork; its teacher the full ESANet
            self.net = ESANetwork(self.modalities, ctx.shapes, task.num_classes, arch, width, ctx.recipe.decoder,
                                  ctx.recipe.context)
            self.aux = self.net.make_decoder()
            self.register_buffer("class_weights", ctx.class_weights, persistent=False)
        else:  # the SF network: SE per modality after layer2, shared layer3-4; teacher = SF on full modalities
            stage = config.fusion_stage or 2
            self.net = FusionNet(self.modalities, ctx.shapes, task.kind, task.num_classes, arch=arch, width=width,
                                 fusion="se", fusion_stage=stage)
            channels = self.net.feature_channels
            self.aux_trunk = ResNetTrunk(channels[stage - 1], arch, width, stage) if stage < 4 else None
            self.aux = nn.Linear(channels[-1], task.num_classes)
            self.stage = stage
        self.teacher = ctx.models["teacher"]
        self.begin, self.mining_start = schedule(task, config, ctx.recipe.epochs)
        default_kd, default_mar = official_values(task)[2:]
        self.kd_weight = config.kd_weight if config.kd_weight is not None else default_kd
        self.mar_weight = config.mar_weight if config.mar_weight is not None else default_mar
        m = len(self.modalities)
        # the official order: smaller combinations first, the full set last (ties go to the first)
        self.candidates = sorted((s for s in all_subsets(self.modalities) if len(s) >= m - 1), key=len)
        self.register_buffer("distances", torch.zeros(len(self.candidates)))
        # fixed shapes, so checkpoints of any epoch load into a fresh module
        self.register_buffer("weak", torch.zeros(1 + m, m))
        self.register_buffer("weak_count", torch.zeros((), dtype=torch.long))
        self.epoch = 0

    # -- forward pieces --------------------------------------------------------------------------------
    def _fused(self, batch: Any, mask: torch.Tensor) -> list[torch.Tensor]:
        return self.net.features(batch, mask)

    def _aux_logits(self, fused: list[torch.Tensor]) -> torch.Tensor:
        x = fused[self.stage - 1]
        last = self.aux_trunk(x)[-1] if self.aux_trunk is not None else x
        return self.aux(last.mean(dim=(2, 3)) if last.dim() == 4 else last)

    # -- training ---------------------------------------------------------------------------------------
    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        target = batch["target"]
        mask = uniform_subset_mask(target.shape[0], len(self.modalities), target.device)
        fused = self._fused(batch, mask)
        if self.dense:  # ESANet's deep supervision: the loss summed over the logits and side outputs
            out = self.net.outputs(fused, sides=True)
            outputs = [out.logits, *out.sides]
            terms = {"ce": deep_supervision_loss(self.task, outputs, target, self.class_weights)}
        else:
            terms = {"ce": task_loss(self.task, self.net.head(fused), target)}
        if self.epoch > self.begin and int(self.weak_count) > 0:
            official = self.config.official
            if self.dense:
                terms["mad"] = self.kd_weight * self._dense_mad(batch, fused)
                terms["mar"] = self.mar_weight * mar_loss_dense(
                    self._dense_aux_outputs(fused, mask, outputs), target, mask, self.weak[0],
                    class_weights=self.class_weights, ignore_index=self._ignore_index(), official=official)
            else:
                teacher = self.teacher.features(batch, self.modalities)
                terms["mad"] = self.kd_weight * mad_loss(fused[-1], teacher.scales[-1], teacher.logits)
                terms["mar"] = self.mar_weight * mar_loss(
                    self._aux_logits(fused), target, mask, self.weak[: int(self.weak_count)], self._ignore_index(),
                    official=official)
        return terms

    def _ignore_index(self) -> int:
        return self.task.ignore_index if self.task.ignore_index is not None else -100

    def _dense_mad(self, batch: Any, fused: list[torch.Tensor]) -> torch.Tensor:
        """MAD over the three deepest fused levels. Official: the teacher is never put in eval mode,
        so its forward returns the decoder's training tuple and the entropy weights are computed
        over ``pred_scales_t[6]`` — the first decoder module's feature map, not class logits —
        with the teacher's BatchNorm on batch statistics. ``official=False``: class logits of the
        teacher in eval mode."""
        official = self.config.official
        teacher = self.teacher.features(batch, self.modalities, batch_statistics=official)
        entropy_of = teacher.decoder[0] if official else teacher.logits
        return sum(mad_loss_dense(s, t, entropy_of) for s, t in zip(fused[-3:], teacher.scales[-3:], strict=True))

    def _dense_aux_outputs(self, fused: list[torch.Tensor], mask: torch.Tensor,
                           outputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """The auxiliary decoder's outputs (logits, then its side outputs with the ESANet
        decoder). Official: it runs only when the batch holds a sample with the second modality
        but not the first (``torch.sum((1 - p[:, 0]) * p[:, 1]) != 0``, the depth-only combination
        hard-coded); otherwise MAR is computed on the main decoder's ``outputs``."""
        if self.config.official and not bool(((1 - mask[:, 0]) * mask[:, 1]).any()):
            return outputs
        out = self.aux.outputs(fused, self.net.input_size, sides=True)
        return [out.logits, *out.sides]

    def predict(self, batch: Any, modalities: Sequence[str]) -> torch.Tensor:
        mask = subset_mask(self.modalities, modalities, batch["target"].shape[0], batch["target"].device)
        return self.net.head(self._fused(batch, mask))

    def predict_subsets(self, batch: Any, subsets: Sequence[tuple[str, ...]]) -> dict[tuple[str, ...], torch.Tensor]:
        if isinstance(self.net, FusionNet):  # late streams are independent: encode each modality once
            return self.net.predict_subsets(batch, subsets)
        return super().predict_subsets(batch, subsets)

    def report(self) -> dict[str, Any]:
        weak = [[m for m, bit in zip(self.modalities, row.tolist(), strict=True) if bit]
                for row in self.weak[: int(self.weak_count)]]
        return {"weak_combinations": ["+".join(w) for w in weak], "begin_epoch": self.begin + 1,
                "mining_distances": {"+".join(c): float(d) for c, d in zip(self.candidates, self.distances, strict=True)}}

    # -- weak-combination mining ------------------------------------------------------------------------
    def on_epoch_start(self, epoch: int, num_epochs: int) -> None:
        self.epoch = epoch
        if epoch == self.begin and int(self.weak_count) == 0:
            self._select_weak()

    def on_epoch_end(self, epoch: int, num_epochs: int) -> None:
        if self.mining_start <= epoch < self.begin:
            self.distances += self._mining_distances()

    @torch.no_grad()
    def _mining_distances(self) -> torch.Tensor:
        was_training = self.training
        self.eval()
        full = tuple(self.modalities)
        subsets = list(dict.fromkeys([full, *self.candidates]))
        predictions: dict[tuple[str, ...], list[torch.Tensor]] = {s: [] for s in subsets}
        meters = {s: meter_for(self.task) for s in subsets}
        for batch in self.ctx.validation_batches():
            for subset in subsets:
                logits = self.predict(batch, subset).float()
                predictions[subset].append(logits.argmax(dim=1))
                meters[subset].update(logits, batch["target"])
        self.train(was_training)
        distances = []
        for subset in self.candidates:
            if self.dense:
                gap = meters[full].compute()["miou"] - meters[subset].compute()["miou"]
                distances.append(gap**2)
            else:
                distances.append(float(weak_combination_distance(
                    torch.cat(predictions[full]), torch.cat(predictions[subset]), self.task.num_classes)))
        return torch.tensor(distances, device=self.distances.device)

    def _select_weak(self) -> None:
        weak = self.candidates[int(torch.argmax(self.distances))]
        combos = [weak]
        if not self.dense and len(weak) > 1:
            combos += [(m,) for m in weak]
        for row, combo in enumerate(combos):
            self.weak[row] = torch.tensor([1.0 if m in combo else 0.0 for m in self.modalities])
        self.weak_count.fill_(len(combos))
