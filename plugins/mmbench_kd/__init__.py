"""mmbench_kd — logit distillation for cross-modal and multi-modal KD (built-in plugin).

The competitors of the DisCoM-KD paper (Ienco & Fraga Dantas, BMVC 2024), each usable in both
distillation scenarios of :mod:`mmbench.distillation` and each with LSKD logit standardisation
as an option (``--set logit_standardization=true``):

* ``kd`` — Hinton et al. 2015, mdistiller's ``KD`` (0.1·CE + 0.9·KD, T = 4);
* ``kdv1`` / ``kdv2`` — the KD baselines of the DisCoM-KD paper (after Xue et al., ICLR 2023):
  L = α·CE + (1 − α)·KD with α = 0 / 0.5;
* ``dkd`` — Zhao et al., CVPR 2022 (megvii-research/mdistiller);
* ``ctkd`` — Li et al., AAAI 2023 (zhengli97/CTKD), with KD or DKD as base loss;
* ``mlkd`` — Jin et al., CVPR 2023 (Jin-Ying/Multi-Level-Logit-Distillation).

The losses are pure functions in :mod:`mmbench_kd.losses`.

    mmbench run --method dkd --task synth-rgbd-cls --set teacher=rgb+depth --set student=depth
"""

from __future__ import annotations

from mmbench import MethodSpec, hookimpl, resolve_setup
from mmbench_kd.config import CTKDConfig, DKDConfig, KDConfig, KDv1Config, KDv2Config, MLKDConfig

__version__ = "0.2.0"

KINDS = frozenset({"classification", "anti-spoofing"})
MDISTILLER = "https://github.com/megvii-research/mdistiller"
LSKD_NOTE = " (±LSKD: Sun et al., CVPR 2024, https://github.com/sunshangquan/logit-standardization-KD)"


def _setup(task, modalities, config):
    return resolve_setup(task, modalities, config.scenario, config.teacher, config.student)


def _method(name: str, description: str, module: str, config: type, paper: str, repo: str,
            resolve_config=None) -> MethodSpec:
    return MethodSpec(
        name=name, description=description, build=f"mmbench_kd.models:{module}", config=config, kinds=KINDS,
        paper=paper, repo=repo + LSKD_NOTE, family="distillation", distillation=_setup, min_modalities=2,
        resolve_config=resolve_config,
    )


@hookimpl
def mmbench_methods() -> list[MethodSpec]:
    hinton = "Hinton, Vinyals & Dean, Distilling the Knowledge in a Neural Network, 2015"
    return [
        _method("kd", "Knowledge distillation: 0.1·CE + 0.9·T²·KL(teacher‖student), T = 4", "KDStudent",
                KDConfig, hinton, MDISTILLER),
        _method("kdv1", "KD with soft labels only (α = 0), the DisCoM-KD paper's KDv1", "KDStudent",
                KDv1Config, hinton + "; Xue et al., ICLR 2023 (KDv1)", MDISTILLER),
        _method("kdv2", "KD with α = 0.5: 0.5·CE + 0.5·KD, the DisCoM-KD paper's KDv2", "KDStudent",
                KDv2Config, hinton + "; Xue et al., ICLR 2023 (KDv2)", MDISTILLER),
        _method("dkd", "Decoupled KD: CE + warm-up·(α·TCKD + β·NCKD)", "DKDStudent", DKDConfig,
                "Zhao et al., Decoupled Knowledge Distillation, CVPR 2022", MDISTILLER),
        _method("ctkd", "Curriculum temperature KD: learnable global T through a reversed gradient", "CTKDStudent",
                CTKDConfig, "Li et al., Curriculum Temperature for Knowledge Distillation, AAAI 2023",
                "https://github.com/zhengli97/CTKD", resolve_config=CTKDConfig.resolved),
        _method("mlkd", "Multi-level logit distillation: instance, batch and class levels on weak + strong views",
                "MLKDStudent", MLKDConfig, "Jin et al., Multi-Level Logit Distillation, CVPR 2023",
                "https://github.com/Jin-Ying/Multi-Level-Logit-Distillation"),
    ]
