"""Every built-in method and task passes the conformance kit plugin authors use."""

import pytest

from conftest import external_data
from mmbench.plugins import Registry
from mmbench.testing import check_method, check_task

REGISTRY = Registry.load()


@pytest.mark.parametrize("name", REGISTRY.names("method"))
def test_builtin_method_conforms(name, tmp_path):
    records = check_method(REGISTRY.method(name), out=tmp_path)
    assert {r["task"]["kind"] for r in records} == set(REGISTRY.method(name).kinds)


# Tasks whose data is generated here run through the kit as they are; hub and bring-your-own tasks
# run through it on fixtures in their exact layout (conftest.external_data), through their real
# loading code: a new external-data task without a fixture writer fails here.
LOCAL_TASKS = [t for t in REGISTRY.names("task")
               if REGISTRY.dataset_of(REGISTRY.task(t)).source.kind in ("generator", "arrays")]
EXTERNAL_TASKS = sorted(set(REGISTRY.names("task")) - set(LOCAL_TASKS))


@pytest.mark.parametrize("name", EXTERNAL_TASKS)
def test_builtin_external_data_task_loads_through_its_real_path(name, tmp_path, monkeypatch):
    task = REGISTRY.task(name)
    data_dir = external_data(name, tmp_path / "data", monkeypatch)
    summary = check_task(task, REGISTRY.dataset_of(task), limit=4, data_dir=data_dir)
    assert summary["subsets"] and all(summary["sizes"][s] >= 1 for s in ("train", "val", "test"))


@pytest.mark.parametrize("name", LOCAL_TASKS)
def test_builtin_task_conforms(name):
    task = REGISTRY.task(name)
    summary = check_task(task, REGISTRY.dataset_of(task))
    assert summary["sizes"]["test"] == 16


def test_kit_explains_a_wrong_training_step(tmp_path):
    from mmbench import MethodSpec

    def build(task, config, ctx):
        from mmbench_baselines import FusionConfig
        from mmbench_baselines.models import build_fusion

        module = build_fusion(task, FusionConfig(), ctx)
        module.training_step = lambda batch, step: module.net(batch, batch["rgb"].new_ones(len(batch["target"]), 2)).sum()
        return module

    spec = MethodSpec(name="wrong", description="", build=build, kinds=frozenset({"classification"}))
    with pytest.raises(AssertionError, match="training_step must return a non-empty dict of named loss tensors"):
        check_method(spec, out=tmp_path)


def test_kit_explains_wrong_output_shape(tmp_path):
    from mmbench import MethodSpec

    def build(task, config, ctx):
        from mmbench_baselines import FusionConfig
        from mmbench_baselines.models import build_fusion

        module = build_fusion(task, FusionConfig(), ctx)
        module.predict_subsets = lambda batch, subsets: {s: batch["target"].float() for s in subsets}
        return module

    spec = MethodSpec(name="badshape", description="", build=build, kinds=frozenset({"classification"}))
    with pytest.raises(AssertionError, match=r"must return logits of shape \(8, 3\) \(\[B, C\] or \[B, C, H, W\]\); got torch.Size\(\[8\]\)"):
        check_method(spec, out=tmp_path)
