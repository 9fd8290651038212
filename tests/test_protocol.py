"""The official training protocols: class weights, schedules, selection rule, stems, He
initialisation and each full recipe value against the official file it comes from."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from conftest import FAST_OVERRIDES, make_casia_release, make_runner, one_line_error, run_cli
from mmbench import Recipe
from mmbench.data.class_weights import label_frequencies, median_frequency, training_class_weights
from mmbench.engine.optim import build_optimizer, build_scheduler
from mmbench.errors import MMBenchError
from mmbench.plan import plan_run

# -- median-frequency class weights ---------------------------------------------------------------


def esanet_weights(labels: list[np.ndarray], num_classes: int) -> np.ndarray:
    """ESANet's ``compute_class_weights`` as written there: labels with 0 = void, 1..K classes."""
    n_pixels_per_class = np.zeros(num_classes + 1)
    n_image_pixels_with_class = np.zeros(num_classes + 1)
    for label in labels:
        h, w = label.shape
        current = np.bincount(label.flatten(), minlength=num_classes + 1)
        n_pixels_per_class += current
        n_image_pixels_with_class += (current > 0) * h * w
    frequency = n_pixels_per_class[1:] / n_image_pixels_with_class[1:]
    return np.median(frequency) / frequency


def test_median_frequency_weights_equal_esanets_computation(tmp_path):
    rng = np.random.default_rng(0)
    classes = 5
    labels = rng.integers(0, classes, (9, 12, 16))
    labels[:, :3] = 255  # void
    labels[2] = np.where(labels[2] == 4, 3, labels[2])  # class 4 absent from one image
    labels[5, :, :] = 1  # an image of one class
    indices = np.array([0, 2, 3, 5, 7, 8])
    # ESANet's labels are 0 = void, 1..K: shift ours (255 = void) into that encoding
    esanet = [np.where(labels[i] == 255, 0, labels[i] + 1) for i in indices]
    expected = esanet_weights(esanet, classes)
    weights = training_class_weights(labels, indices, classes, "median-frequency", tmp_path)
    np.testing.assert_allclose(weights, expected, rtol=1e-12)
    stored = json.loads(next(tmp_path.glob("class-weights-median-frequency-*.json")).read_text())
    assert stored["samples"] == 6 and stored["weights"] == weights.tolist()
    # read back from the cache file, not recomputed
    np.testing.assert_array_equal(training_class_weights(np.zeros_like(labels), indices, classes,
                                                         "median-frequency", tmp_path), weights)
    pixels, image_pixels = label_frequencies(labels, indices, classes)
    assert pixels.sum() == sum(int((labels[i] != 255).sum()) for i in indices)
    assert image_pixels[1] == 6 * 12 * 16  # class 1 occurs in every selected image


def test_a_class_missing_from_the_training_samples_is_one_line():
    with pytest.raises(MMBenchError, match=r"1 class\(es\) never occur .*\(e.g. sofa\).*recipe.class_weighting=none"):
        median_frequency(np.array([4, 0, 2]), np.array([8, 0, 4]), ("wall", "sofa", "bed"))


def test_a_run_records_and_trains_with_the_weights(registry, tmp_path):
    overrides = {**FAST_OVERRIDES, "recipe.class_weighting": "median-frequency"}
    runner = make_runner(registry, tmp_path)
    plan = plan_run(registry, "esanet", "synth-rgbd-seg", 0, overrides)
    record, _ = runner.run(plan)
    from mmbench.data.arrays import load_task_data

    data = load_task_data(plan.task, plan.dataset, plan.recipe)
    labels = data.train.arrays["target"]
    expected = esanet_weights([np.where(labels[i] == 255, 0, labels[i] + 1) for i in data.train.indices],
                              plan.task.num_classes)
    np.testing.assert_allclose(record.task.class_weights, expected, rtol=1e-6)
    ctx = runner.context(plan, data)
    module = runner._build(plan, ctx)
    assert torch.equal(module.class_weights, torch.as_tensor(expected, dtype=torch.float32))
    assert "class_weights" not in module.state_dict()  # not part of the checkpointed weights


def test_class_weighting_on_a_classification_task_is_one_line(tmp_path):
    result = run_cli("run", "--method", "fusion", "--task", "synth-rgbdi-pad", "--dry-run", "--set",
                     "recipe.class_weighting=median-frequency", cwd=tmp_path)
    assert "weights the pixels of segmentation tasks" in one_line_error(result)


# -- schedules --------------------------------------------------------------------------------------


def lr_per_epoch(recipe: Recipe, steps_per_epoch: int = 7) -> list[float]:
    """The learning rate each epoch trains with, stepping the schedule as the trainer does."""
    optimizer = build_optimizer(nn.Linear(2, 2), recipe, None)
    scheduler = build_scheduler(optimizer, recipe, steps_per_epoch)
    rates = []
    for _ in range(recipe.epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        for _ in range(1 if recipe.scheduler_interval == "epoch" else steps_per_epoch):
            optimizer.step()
            scheduler.step()
    return rates


def test_face_schedule_is_the_official_warmup_then_multistep(registry):
    """GradualWarmupScheduler(total_epoch=5) → MultiStepLR([16, 33, 50]) handed ``epoch − 5``:
    the official epoch e (its epoch 0 trains nothing) trains at base·(e − 1)/5 up to e = 6, then at
    base·0.1^#{m ≤ e − 6} — mmbench's epoch k = e − 1."""
    recipe = registry.task("cls-casia-surf").recipe("full")
    rates = np.array(lr_per_epoch(recipe)) / recipe.lr
    assert len(rates) == 99
    np.testing.assert_allclose(rates[:6], [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])  # official epochs 1-6: base·(e − 1)/5
    for k in range(5, 99):
        official_epoch = k + 1
        decays = sum(m <= official_epoch - 6 for m in (16, 33, 50))
        assert rates[k] == pytest.approx(0.1**decays), k


def test_epoch_interval_one_cycle_equals_esanets_per_epoch_stepping():
    """ESANet / the MMANet fork: OneCycleLR(total_steps=epochs) stepped at each epoch, momentum
    (Adam: β1) cycled — torch's defaults."""
    recipe = Recipe(epochs=12, optimizer="adam", lr=1e-4, weight_decay=1e-4, scheduler="onecycle",
                    scheduler_interval="epoch")
    reference_optimizer = torch.optim.Adam(nn.Linear(2, 2).parameters(), lr=1e-4, weight_decay=1e-4)
    reference = torch.optim.lr_scheduler.OneCycleLR(reference_optimizer, max_lr=1e-4, total_steps=12, div_factor=25,
                                                    pct_start=0.1, anneal_strategy="cos", final_div_factor=1e4)
    optimizer = build_optimizer(nn.Linear(2, 2), recipe, None)
    scheduler = build_scheduler(optimizer, recipe, steps_per_epoch=50)
    for _ in range(12):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(reference_optimizer.param_groups[0]["lr"])
        assert optimizer.param_groups[0]["betas"][0] == pytest.approx(reference_optimizer.param_groups[0]["betas"][0])
        for opt, sched in ((optimizer, scheduler), (reference_optimizer, reference)):
            opt.step()
            sched.step()


def test_bad_milestones_and_selection_epochs_are_one_line(tmp_path):
    for setting, message in (("recipe.milestones=33,16", "recipe.milestones"),
                             ("recipe.select_from_epoch=11", "recipe.select_from_epoch")):
        result = run_cli("run", "--method", "fusion", "--task", "synth-rgbdi-pad", "--dry-run", "--set",
                         "recipe.epochs=10", "--set", setting, cwd=tmp_path)
        assert message in one_line_error(result)
    with pytest.raises(MMBenchError, match="recipe.milestones"):
        Recipe(scheduler="multistep")
    result = run_cli("run", "--method", "fusion", "--task", "cls-casia-surf", "--profile", "full", "--dry-run",
                     "--set", "recipe.epochs=10", cwd=tmp_path)  # the face recipe selects from epoch 31
    error = one_line_error(result)
    assert "recipe.select_from_epoch=31 must be in [1, epochs] (recipe.epochs is 10" in error
    assert "recipe.warmup_epochs" not in error and "lr" not in error  # only the broken rule is named


# -- selection --------------------------------------------------------------------------------------


def test_the_face_rule_selects_the_best_full_modality_accuracy(registry, tmp_path):
    overrides = {**FAST_OVERRIDES, "recipe.epochs": "3", "recipe.selection_metric": "accuracy",
                 "recipe.selection_subsets": "full"}
    record, _ = make_runner(registry, tmp_path).run(plan_run(registry, "fusion", "synth-rgbdi-pad", 0, overrides))
    accuracy = [c["val"]["rgb+depth+ir"]["accuracy"] for c in record.curves]
    assert record.selection.best_epoch == accuracy.index(max(accuracy)) + 1
    assert record.selection.criterion == "mean validation accuracy over the full-modality subset"


def test_a_selection_metric_the_task_does_not_have_is_one_line(tmp_path):
    result = run_cli("run", "--method", "fusion", "--task", "synth-rgbdi-pad", "--dry-run", "--set",
                     "recipe.selection_metric=miou", cwd=tmp_path)
    assert "is not a metric of task 'synth-rgbdi-pad'" in one_line_error(result)


def test_only_epochs_from_select_from_epoch_can_be_best(registry, tmp_path):
    overrides = {**FAST_OVERRIDES, "recipe.epochs": "3", "recipe.select_from_epoch": "3"}
    record, _ = make_runner(registry, tmp_path).run(plan_run(registry, "fusion", "synth-rgbdi-pad", 0, overrides))
    assert record.selection.best_epoch == 3 and record.selection.criterion.endswith(", from epoch 3")
    assert len(record.curves) == 3


# -- networks ---------------------------------------------------------------------------------------


def test_the_3x3_stem_is_the_casia_surf_baselines(registry):
    from mmbench.engine.summary import build_untrained

    plan = plan_run(registry, "se-fusion", "cls-casia-surf", 0, {}, "full")
    module = build_untrained(plan)
    encoder = module.net.encoders["depth"]
    assert encoder.conv1.kernel_size == (3, 3) and encoder.conv1.stride == (2, 2)
    assert encoder.conv1.in_channels == 3 and isinstance(encoder.maxpool, nn.MaxPool2d)
    features = encoder(torch.randn(1, 3, 112, 112))
    assert encoder.strides[0] == 4  # 3×3 s2 + max-pool: stride 4 before layer1, as ResNet-18's stem
    assert features[-1].shape[-1] == 112 // encoder.strides[-1]


def test_pretrained_weights_need_the_imagenet_stem():
    with pytest.raises(MMBenchError, match="recipe.stem=3x3"):
        Recipe(pretrained="imagenet", stem="3x3")


def test_he_init_skips_encoders_class_outputs_gates_depthwise_and_frozen_layers():
    from mmbench.models import ESANetwork
    from mmbench.models.init import he_initialisation

    torch.manual_seed(0)
    net = ESANetwork(("rgb", "depth"), {"rgb": (3, 96, 128), "depth": (1, 96, 128)}, 13, "resnet18", 16, "esanet")
    frozen = nn.Conv2d(8, 8, 3)
    frozen.requires_grad_(False)
    net.frozen = frozen
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert he_initialisation(net, 13) > 0
    changed = {k for k, v in net.state_dict().items() if not torch.equal(v, before[k])}
    assert not any(k.startswith("encoders.") for k in changed)
    assert not any(k.startswith("frozen.") for k in changed)
    gates = [name for name, m in net.named_modules() if isinstance(m, nn.Sequential)
             and len(m) and isinstance(m[-1], nn.Sigmoid)]
    assert gates and not any(k.startswith(f"{g}.{len(net.get_submodule(g)) - 2}.") for g in gates for k in changed)
    outputs = [name for name, m in net.named_modules() if isinstance(m, nn.Conv2d) and (
        m.out_channels == 13 or m.groups == m.in_channels)]
    assert outputs and not any(k.startswith(f"{o}.") for o in outputs for k in changed)
    decoder_convs = [k for k in changed if k.startswith("decoder.") and k.endswith("weight")]
    assert decoder_convs  # the decoder's convolutions were re-initialised
    conv = next(m for n, m in net.named_modules() if n.startswith("decoder.") and isinstance(m, nn.Conv2d)
                and m.out_channels != 13 and m.groups == 1 and m.weight.numel() > 1000)
    fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
    assert conv.weight.std().item() == pytest.approx((2.0 / fan_out) ** 0.5, rel=0.15)


# -- the official recipes ---------------------------------------------------------------------------


def test_official_recipe_values(registry):
    """Each full recipe against the official file it comes from (see the comments in the plugins)."""
    nyu = registry.task("seg-nyuv2").recipe("full")  # MMANet fork: src/args.py defaults, train_missing_mmanet.py
    assert (nyu.optimizer, nyu.lr, nyu.momentum, nyu.nesterov, nyu.weight_decay, nyu.batch_size, nyu.epochs) == (
        "sgd", 1e-2, 0.9, True, 1e-4, 8, 300)
    assert (nyu.scheduler, nyu.scheduler_interval, nyu.class_weighting, nyu.context) == (
        "onecycle", "epoch", "median-frequency", "ppm")
    assert (nyu.scale_range, nyu.hsv_jitter, nyu.hflip) == ((1.0, 1.4), 0.1, True)  # src/preprocessing.py
    assert nyu.resolution == "input"  # NYUv2 is decoded at 640x480: both resolutions coincide
    assert registry.task("seg-sunrgbd").recipe("full") == nyu.but(resolution="native")  # sizes differ: label_orig
    city = registry.task("seg-cityscapes").recipe("full")  # train_cityscape_mmant.sh / train_cityscape_full.sh
    assert (city.optimizer, city.lr, city.weight_decay, city.batch_size, city.epochs, city.scheduler) == (
        "adam", 1e-4, 1e-4, 8, 300, "onecycle")
    assert (city.scheduler_interval, city.class_weighting, city.he_init, city.context) == (
        "epoch", "none", True, "appm-1-2-4-8")
    assert (city.resolution, city.scale_range, city.hsv_jitter) == ("native", (0.5, 2.0), 0.1)  # of 2048x1024
    for task in ("cls-casia-surf", "cls-cefa"):  # classification/configuration + lib/model_develop.py
        faces = registry.task(task).recipe("full")
        assert (faces.optimizer, faces.nesterov, faces.lr, faces.momentum, faces.weight_decay, faces.batch_size) == (
            "sgd", True, 1e-3, 0.9, 5e-4, 64)
        assert (faces.epochs, faces.scheduler, faces.milestones, faces.gamma, faces.warmup_epochs) == (
            99, "multistep", (16, 33, 50), 0.1, 5)
        assert (faces.scheduler_interval, faces.select_from_epoch, faces.stem, faces.width) == ("epoch", 31, "3x3", 64)
        assert (faces.face_augmentation, faces.hflip) == ((144, 30), True)  # src/surf_baseline_multi_dataloader.py
        assert (faces.selection_metric, faces.selection_subsets) == ("accuracy", "full")  # lib/model_develop.py
        assert (faces.input_scaling, faces.warmup_from_zero) == ((127.5, 128.0), True)  # surf_txt.py Normaliztion_multi
        assert registry.dataset_of(registry.task(task)).modalities == {"rgb": 3, "depth": 3, "ir": 3}
    osmd = plan_run(registry, "osmd", "cls-casia-surf", 0, {"privileged": "depth"}, "full")
    assert (osmd.recipe.epochs, osmd.recipe.select_from_epoch, osmd.recipe.lr) == (50, 1, 1e-3)  # OS-MD §4.1
    assert osmd.trained_modalities == ("rgb", "depth") and osmd.subsets == (("rgb",),)
    teacher = next(d for d in osmd.dependencies if d.role == "privileged")
    assert teacher.plan.trained_modalities == ("depth",)


def test_face_inputs_are_scaled_as_the_official_code_does(registry, tmp_path, monkeypatch):
    """``recipe.input_scaling=127.5,128``: (x − 127.5) / 128 for every channel of every modality
    (surf_txt.py ``Normaliztion_multi``), in place of the training split's statistics."""
    from mmbench.data.arrays import ArrayBatches, load_task_data

    monkeypatch.setenv("MMBENCH_HOME", str(tmp_path / "home"))
    root = make_casia_release(tmp_path / "data")
    task = registry.task("cls-casia-surf")
    recipe = task.recipe("smoke").but(input_scaling=(127.5, 128.0))
    data = load_task_data(task, registry.dataset_of(task), recipe, data_dir=root.parent)
    batch = ArrayBatches(data.test, data.stats, data.modalities)[np.arange(4)]
    for modality in ("rgb", "depth", "ir"):
        raw = data.test.arrays[modality][np.sort(data.test.indices[:4])].astype(np.float32)
        np.testing.assert_allclose(batch[modality].numpy(), (raw - 127.5) / 128, rtol=1e-6)
    with pytest.raises(MMBenchError, match="input_scaling"):
        Recipe(input_scaling=(127.5, 0.0))
    with pytest.raises(MMBenchError) as bad:  # a non-finite value names its own field only
        Recipe(lr=float("nan"))
    assert str(bad.value) == "invalid recipe value: recipe.lr=nan must be finite and > 0."


def test_osmd_privileged_must_be_another_modality(tmp_path):
    result = run_cli("run", "--method", "osmd", "--task", "synth-rgbdi-pad", "--dry-run", "--set", "privileged=rgb",
                     cwd=tmp_path)
    assert "rgb is not a modality of the task other than the ordinary rgb" in one_line_error(result)


@pytest.mark.slow
def test_a_full_profile_casia_surf_mmanet_run_takes_a_step_at_full_resolution(tmp_path):
    """cls-casia-surf ``--profile full`` on the release fixture at 112×112: the SF teacher and
    MMANet each take an optimisation step on the face network (3×3 stem, 3-channel depth / IR)."""
    from mmbench.artifacts import ArtifactCache
    from mmbench.engine.runner import Runner
    from mmbench.plugins import Registry

    make_casia_release(tmp_path / "data")
    registry = Registry.load()
    overrides = {"recipe.epochs": "1", "recipe.select_from_epoch": "1", "recipe.warmup_epochs": "0", "recipe.batch_size": "8",
                 "recipe.eval_batch_size": "8"}
    plan = plan_run(registry, "mmanet", "cls-casia-surf", 0, overrides, "full")
    runner = Runner(registry, out=tmp_path / "runs", device="cpu", artifacts=ArtifactCache(tmp_path / "artifacts"),
                    data_dir=str(tmp_path / "data"))
    record, _ = runner.run(plan)
    assert record.status == "completed" and record.profile == "full" and len(record.curves) == 1
    assert record.recipe["stem"] == "3x3" and tuple(record.recipe["milestones"]) == (16, 33, 50)
    assert len(record.metrics["best"]) == 7


# -- the papers' selection on the test split (recipe.selection=paper) ------------------------------------


def test_paper_selection_trains_on_the_whole_split_and_selects_on_test_from_its_epoch(registry, tmp_path):
    overrides = {"recipe.epochs": "4", "recipe.selection": "paper", "recipe.select_from_epoch": "2"}
    runner = make_runner(registry, tmp_path)
    record, _ = runner.run(plan_run(registry, "fusion", "cls-mfeat", 0, overrides))
    default, _ = runner.run(plan_run(registry, "fusion", "cls-mfeat", 0, {"recipe.epochs": "1"}))
    assert record.dataset.sizes["train"] == default.dataset.sizes["train"] + default.dataset.sizes["val"]  # no carve
    assert record.dataset.sizes["val"] == record.dataset.sizes["test"]
    assert record.selection.split == "test" and "selected on the test split, as the paper" in record.selection.criterion
    assert default.selection.split == "validation"
    means = [sum(m["accuracy"] for m in c["val"].values()) / len(c["val"]) for c in record.curves]
    best = 2 + max(range(len(means) - 1), key=lambda i: (means[i + 1], -i))  # first best from epoch 2
    assert record.selection.best_epoch == best
    for subset, metrics in record.metrics["best"].items():  # the test metrics are the selected curve's
        assert metrics["accuracy"] == pytest.approx(record.curves[best - 1]["val"][subset]["accuracy"], abs=1e-9)


def test_paper_selection_rows_are_flagged_and_never_ranked(registry, tmp_path):
    from mmbench.leaderboard.site import build_site

    runner = make_runner(registry, tmp_path)
    for seed in (0, 1):
        runner.run(plan_run(registry, "fusion", "cls-mfeat", seed, {"recipe.epochs": "1", "recipe.selection": "paper"}))
        runner.run(plan_run(registry, "fusion", "cls-mfeat", seed, {"recipe.epochs": "1"}))
    build_site([tmp_path / "runs"], tmp_path / "site")
    html = (tmp_path / "site" / "tasks" / "cls-mfeat.html").read_text()
    rows = [r for r in html.split("<tr") if "methods/fusion.html" in r]
    flagged = [r for r in rows if "selected on test, as the paper</span>" in r]
    assert len(rows) == 2 and len(flagged) == 1
    assert 'class="num best"' not in flagged[0] and 'class="num second"' not in flagged[0]  # never ranked
    assert any('class="num best"' in r for r in rows if r not in flagged)
    import pandas as pd

    table = pd.read_csv(tmp_path / "site" / "tasks" / "cls-mfeat" / "leaderboard.csv")
    assert set(table[table["source"] == "reproduced"]["selected_on"]) == {"test", "validation"}


def test_paper_selection_is_refused_where_the_dataset_has_a_validation_split(tmp_path):
    result = run_cli("run", "--method", "fusion", "--task", "synth-rgbd-cls", "--dry-run", "--set",
                     "recipe.selection=paper", cwd=tmp_path)
    assert "has its own 'val' split" in one_line_error(result)


# -- the fidelity ledger ------------------------------------------------------------------------------


def test_every_deviation_concerns_installed_tasks_and_every_seed_task_has_its_ledger(registry):
    tasks = set(registry.names("task"))
    for method in (registry.method(name) for name in registry.names("method")):
        for deviation in method.deviations:
            assert deviation.aspect and deviation.official and deviation.mmbench and deviation.source
            assert set(deviation.tasks) <= tasks, (method.name, deviation.tasks)
    for name in ("seg-nyuv2", "seg-sunrgbd", "seg-cityscapes"):
        assert {d.aspect for d in registry.task(name).deviations} >= {"augmentation", "selection"}, name
    for name in ("cls-casia-surf", "cls-cefa"):
        assert {d.aspect for d in registry.task(name).deviations} == {"augmentation"}, name


def test_the_ledger_is_shown_next_to_the_reported_rows(tmp_path):
    from pathlib import Path

    from mmbench.leaderboard.site import build_site

    reported = Path(__file__).resolve().parents[1] / "leaderboards" / "reported"
    build_site([], tmp_path / "site", reported_dir=reported)
    page = (tmp_path / "site" / "tasks" / "seg-nyuv2.html").read_text()
    ledger = page.split('id="fidelity"', 1)[1]
    assert "random rescale 1.0-1.4" in ledger and "recipe.selection=paper" in ledger  # the task's
    assert "<td>rfnet</td>" in ledger and "<td>osmd</td>" in ledger  # the methods of its reported rows
    assert page.index('id="fidelity"') > page.index('<span class="badge reported">reported</span>')


def test_list_shows_the_ledger(tmp_path):
    result = run_cli("list", "methods", "rfnet", cwd=tmp_path)
    assert result.returncode == 0 and "known differences from the official protocol" in result.stdout
    result = run_cli("list", "tasks", "cls-casia-surf", "--json", cwd=tmp_path)
    assert {d["aspect"] for d in json.loads(result.stdout)["deviations"]} == {"augmentation"}
