from dataclasses import dataclass
from typing import Literal

import pytest

from mmbench.config import apply_overrides, parse_assignments, parse_seeds, split_overrides
from mmbench.errors import MMBenchError
from mmbench.specs import Recipe, all_subsets, parse_subset, subset_key


@dataclass(frozen=True)
class Options:
    alpha: float = 1.0
    steps: int = 3
    flag: bool = False
    mode: Literal["a", "b"] = "a"
    modality: str | None = None
    temps: tuple[float, ...] = (1.0, 2.0)


def test_seed_forms():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("5,1,1") == [1, 5]
    assert parse_seeds("7") == [7]


@pytest.mark.parametrize("text", ["4-1", "a", "1-", "", "-3"])
def test_invalid_seed_ranges(text):
    with pytest.raises(MMBenchError, match="invalid seed range"):
        parse_seeds(text)


def test_overrides_are_typed():
    cfg = apply_overrides(Options, None, {"alpha": "0.5", "steps": "7", "flag": "yes", "mode": "b",
                                          "modality": "none", "temps": "1,4"})
    assert cfg == Options(alpha=0.5, steps=7, flag=True, mode="b", modality=None, temps=(1.0, 4.0))


@pytest.mark.parametrize(("key", "value", "message"), [
    ("steps", "x", "expected int"),
    ("flag", "maybe", "expected true or false"),
    ("mode", "c", "choose one of a, b"),
])
def test_ill_typed_values(key, value, message):
    with pytest.raises(MMBenchError, match=message):
        apply_overrides(Options, None, {key: value})


def test_unknown_key_suggests_and_lists_valid_keys():
    with pytest.raises(MMBenchError) as info:
        apply_overrides(Options, None, {"alpah": "1"})
    assert "Did you mean 'alpha'" in str(info.value)
    assert "Valid keys: alpha, steps" in str(info.value)


def test_split_and_parse_assignments():
    parsed = parse_assignments(["p=0.3", "recipe.lr=0.1", "dataset.revision=abc"])
    assert split_overrides(parsed) == ({"p": "0.3"}, {"lr": "0.1"}, {"revision": "abc"})
    with pytest.raises(MMBenchError, match="expected key=value"):
        parse_assignments(["novalue"])
    assert split_overrides({"dataset.split": "x"}) == ({}, {}, {"split": "x"})  # checked against the dataset's options


def test_dataset_options_are_checked_against_the_dataset(registry):
    from mmbench.plan import plan_run

    with pytest.raises(MMBenchError, match=r"^unknown option dataset.split for dataset 'synth-rgbd-cls'; "
                                           r"valid: dataset.revision.$"):
        plan_run(registry, "fusion", "synth-rgbd-cls", 0, {"dataset.split": "x"})
    assert plan_run(registry, "fusion", "synth-rgbd-cls", 0).dataset_options == {}


def test_recipe_validation_names_the_field():
    base = Recipe()
    with pytest.raises(MMBenchError, match="recipe.epochs"):
        apply_overrides(Recipe, base, {"epochs": "0"}, prefix="recipe.")
    assert apply_overrides(Recipe, base, {"grad_clip": "none"}, prefix="recipe.").grad_clip is None


def test_subsets():
    assert all_subsets(("rgb", "depth", "ir")) == (
        ("rgb", "depth", "ir"), ("rgb", "depth"), ("rgb", "ir"), ("depth", "ir"), ("rgb",), ("depth",), ("ir",)
    )
    assert parse_subset("depth+rgb", ("rgb", "depth")) == ("rgb", "depth")
    assert subset_key(("rgb", "depth")) == "rgb+depth"
    with pytest.raises(MMBenchError, match="unknown thermal"):
        parse_subset("thermal", ("rgb", "depth"))
