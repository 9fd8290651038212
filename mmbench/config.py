"""Typed configuration: ``--set key=value`` parsing and validation against dataclass fields.

Keys address three namespaces:

* ``<option>`` — a field of the method's config dataclass;
* ``recipe.<field>`` — a field of the task's :class:`mmbench.Recipe` for the chosen profile;
* ``dataset.revision`` — override the pinned dataset revision (recorded as overridden);
* ``dataset.<option>`` — one of the dataset's own options (:attr:`mmbench.DatasetSpec.options`).

Values are parsed from text by the field's type annotation (int, float, bool, str, Literal,
Optional, tuple/list of those); anything else is a one-line error naming the valid keys.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from mmbench.errors import MMBenchError, echo, unknown_name_error

MAX_SEEDS_PER_RANGE = 1_000_000

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_assignments(items: Sequence[str]) -> dict[str, str]:
    """``["a=1", "recipe.lr=0.1"] -> {"a": "1", "recipe.lr": "0.1"}``."""
    result: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise MMBenchError(f"invalid --set {echo(item)}: expected key=value, e.g. --set recipe.epochs=5.")
        result[key.strip()] = value.strip()
    return result


def _convert(text: str, annotation: Any, key: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in {"none", "null", ""} and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(text, arg, key)
            except MMBenchError as exc:
                errors.append(str(exc))
        raise MMBenchError(errors[0] if errors else f"invalid value {echo(text)} for {key}.")
    if origin is typing.Literal:
        choices = {str(a): a for a in args}
        if text not in choices:
            raise MMBenchError(f"invalid value {echo(text)} for {key}: choose one of {', '.join(choices)}.")
        return choices[text]
    if origin in (tuple, list) or annotation in (tuple, list):
        item_type = args[0] if args else str
        parts = [p.strip() for p in text.split(",") if p.strip()]
        values = [_convert(p, item_type, key) for p in parts]
        return tuple(values) if (origin or annotation) is tuple else values
    if annotation is bool:
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise MMBenchError(f"invalid value {echo(text)} for {key}: expected true or false.")
    if annotation in (int, float):
        try:
            value = annotation(text)
        except ValueError:
            raise MMBenchError(
                f"invalid value {echo(text)} for {key}: expected {annotation.__name__}."
            ) from None
        if annotation is float and not math.isfinite(value):
            raise MMBenchError(f"invalid value {echo(text)} for {key}: expected a finite number.")
        return value
    if annotation is str or annotation is Any:
        return text
    raise MMBenchError(f"option {key} of type {annotation} cannot be set from the command line.")


def apply_overrides(config_cls: type, base: Any, overrides: Mapping[str, str], prefix: str = "") -> Any:
    """Return ``base`` (an instance of dataclass ``config_cls``, or None for its defaults) with the
    textual ``overrides`` parsed by field type. Unknown keys are an error listing valid ones."""
    hints = typing.get_type_hints(config_cls)
    names = [f.name for f in dataclasses.fields(config_cls)]
    values = {}
    for key, text in overrides.items():
        if key not in names:
            raise unknown_name_error(
                "option", prefix + key, [prefix + n for n in names],
                hint=f"Valid keys: {', '.join(prefix + n for n in names) or '(none)'}.",
            )
        values[key] = _convert(text, hints[key], prefix + key)
    instance = base if base is not None else config_cls()
    try:
        return dataclasses.replace(instance, **values)
    except (TypeError, ValueError) as exc:
        raise MMBenchError(f"invalid configuration: {exc}") from None


def split_overrides(overrides: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Split ``--set`` keys into (method, recipe, dataset) namespaces."""
    method, recipe, dataset = {}, {}, {}
    for key, value in overrides.items():
        if key.startswith("recipe."):
            recipe[key.removeprefix("recipe.")] = value
        elif key.startswith("dataset."):
            dataset[key.removeprefix("dataset.")] = value
        else:
            method[key] = value
    return method, recipe, dataset


def to_jsonable(config: Any) -> dict[str, Any]:
    """A dataclass config as plain JSON values (tuples become lists)."""
    def convert(value: Any) -> Any:
        if isinstance(value, tuple | list):
            return [convert(v) for v in value]
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        return value

    return {f.name: convert(getattr(config, f.name)) for f in dataclasses.fields(config)}


MAX_SEED = 2**32 - 1
"""Seeds seed NumPy, whose generator takes 32-bit seeds: a larger one would alias seed mod 2³²."""


def parse_seeds(text: str) -> list[int]:
    """``"0-4" -> [0..4]``, ``"1,3,5"``, ``"7"``. Errors name the accepted forms."""
    seeds: list[int] = []
    invalid = MMBenchError(f"invalid seed range {echo(text)}: use a number (3), a range (0-4) or a list (0,2,5).")
    for part in text.split(","):
        part = part.strip()
        if len(part) > 40:  # far beyond any valid seed; never parse a huge number
            raise invalid
        try:
            if "-" in part[1:]:
                start, end = (int(x) for x in part.split("-", 1))
                if end < start:
                    raise ValueError
                if end - start >= MAX_SEEDS_PER_RANGE:
                    raise MMBenchError(f"seed range {echo(part)} has {end - start + 1} seeds; at most "
                                       f"{MAX_SEEDS_PER_RANGE} in one range.")
                seeds.extend(range(start, end + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise invalid from None
    if any(s < 0 or s > MAX_SEED for s in seeds):
        raise MMBenchError(f"invalid seed range {echo(text)}: seeds must be between 0 and {MAX_SEED} (2³² − 1).")
    return sorted(dict.fromkeys(seeds))
