"""Plugin discovery and the registry of datasets, tasks and methods.

Start-up follows pytest/tox: add the hook specs, then the plugins named with ``--plugin`` or
``MMBENCH_PLUGINS``, then every entry point of the ``mmbench`` group (the built-in plugins
included). A plugin that fails to import, defines an unknown ``mmbench_*`` hook, or returns the
wrong type from a hook is recorded as *broken* with its error; the others keep working. Two
plugins that register the same name make that name unusable with an error naming both.

:class:`Registry` is the typed facade the rest of mmbench uses instead of ``pm.hook.*``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pluggy

from mmbench import hookspecs
from mmbench.errors import MMBenchError, unknown_name_error
from mmbench.plugin_source import distribution_hash, is_editable, source_hash
from mmbench.specs import DatasetSpec, MethodSpec, PluginInfo, Subset, TaskSpec

ENTRY_POINT_GROUP = "mmbench"
PLUGINS_ENV = "MMBENCH_PLUGINS"
DISABLE_ENV = "MMBENCH_DISABLE"

_REGISTRATION_HOOKS: dict[str, tuple[str, type]] = {
    "mmbench_datasets": ("datasets", DatasetSpec),
    "mmbench_tasks": ("tasks", TaskSpec),
    "mmbench_methods": ("methods", MethodSpec),
}
_KNOWN_HOOKS = {
    name for name in dir(hookspecs) if name.startswith("mmbench_") and callable(getattr(hookspecs, name))
}


@dataclass(frozen=True)
class Registered:
    """A spec together with the plugin that registered it."""

    spec: Any
    plugin: PluginInfo


def _describe_exception(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip().splitlines()[0]


def is_file_target(target: str) -> bool:
    """Whether a ``--plugin`` target names a file (``x.py`` or a path) rather than a module."""
    return target.endswith(".py") or os.sep in target


def local_plugin_name(target: str) -> str:
    """The plugin name of a ``--plugin`` target: a file's stem, or the module path."""
    return Path(target).stem if is_file_target(target) else target


def _import_local_plugin(target: str) -> Any:
    """Import a plugin named by ``--plugin``: a module path or a ``.py`` file."""
    if is_file_target(target):
        path = Path(target).expanduser().resolve()
        module_name = f"mmbench_local_plugin_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        return module
    return importlib.import_module(target)


def _env_list(name: str) -> list[str]:
    value = os.environ.get(name, "")
    return [part.strip() for part in value.replace(os.pathsep, ",").split(",") if part.strip()]


def local_plugin_targets(cli_plugins: Sequence[str]) -> list[str]:
    """``--plugin`` targets then ``$MMBENCH_PLUGINS`` ones (each once). A file that does not exist,
    or a module that cannot be found, is an error: the user asked for it by name."""
    targets = list(dict.fromkeys([*cli_plugins, *_env_list(PLUGINS_ENV)]))
    for target in targets:
        if is_file_target(target):
            if not Path(target).expanduser().is_file():
                raise MMBenchError(
                    f"plugin file {target} does not exist; check the path given to --plugin or {PLUGINS_ENV}."
                )
        elif target.split(".")[0] in sys.stdlib_module_names:
            raise MMBenchError(
                f"plugin module '{target}' is part of Python's standard library, not an mmbench plugin; "
                f"check --plugin or {PLUGINS_ENV}."
            )
        elif _module_missing(target):
            raise MMBenchError(
                f"plugin module '{target}' cannot be found; check the name given to --plugin or {PLUGINS_ENV} "
                "(a file needs its .py suffix)."
            )
    return targets


def _module_missing(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is None
    except (ImportError, ValueError):  # a parent package that is missing or broken
        return True


def disabled_plugins(cli_disabled: Sequence[str]) -> list[str]:
    """Plugin names not to load: ``--disable`` and ``$MMBENCH_DISABLE``."""
    return list(dict.fromkeys([*cli_disabled, *_env_list(DISABLE_ENV)]))


class Registry:
    """Every dataset, task and method that the loaded plugins register, plus the lifecycle hooks."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.disabled: list[str] = []
        self._entries: dict[str, dict[str, list[Registered]]] = {
            "datasets": {},
            "tasks": {},
            "methods": {},
        }

    # -- loading ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, plugins: Sequence[str] = (), entry_points: bool = True, disabled: Sequence[str] = ()) -> Registry:
        """Discover and register plugins: local ones first, then the entry-point group. Plugins
        named in ``disabled`` (or ``$MMBENCH_DISABLE``) are not imported at all."""
        registry = cls()
        off = set(disabled_plugins(disabled))
        installed = []
        if entry_points:
            seen: set[tuple[str, str]] = set()
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                if (ep.name, ep.value) not in seen:
                    seen.add((ep.name, ep.value))
                    installed.append(ep)
        installed_names = {ep.name: ep for ep in installed}
        dist_hashes: dict[str, str | None] = {}  # one hash per editable distribution, however many plugins it has

        def dist_hash(dist: importlib.metadata.Distribution) -> str | None:
            if dist.name not in dist_hashes:
                dist_hashes[dist.name] = distribution_hash(dist)
            return dist_hashes[dist.name]

        for target in local_plugin_targets(plugins):
            name = local_plugin_name(target)
            if name in off:
                registry.disabled.append(name)
                continue
            clash = installed_names.get(name)
            if clash is not None:
                dist = f"{clash.dist.name} {clash.dist.version}" if clash.dist else "an installed distribution"
                registry.plugins.append(PluginInfo(
                    name=name, distribution="(local)", version="local", module=target,
                    error=f"its name '{name}' is already the installed plugin from {dist}; rename {target} "
                          "(a file plugin is named after its file)",
                ))
                continue
            registry._add(name, "(local)", None, lambda t=target: _import_local_plugin(t), target, hash_source=source_hash)
        for ep in installed:
            if ep.name in off:
                registry.disabled.append(ep.name)
                continue
            dist = ep.dist
            registry._add(
                ep.name,
                dist.name if dist else "(unknown)",
                dist.version if dist else None,
                ep.load,
                ep.value,
                hash_source=(lambda _plugin, d=dist: dist_hash(d)) if is_editable(dist) else None,
            )
        return registry

    def register_object(self, name: str, plugin: Any, version: str = "local") -> None:
        """Register an already-imported plugin object (used by tests and ``mmbench.testing``)."""
        self._add(name, "(in-process)", version, lambda: plugin, repr(plugin))

    def _add(self, name: str, dist: str, version: str | None, importer: Any, module: str,
             hash_source: Callable[[Any], str | None] | None = None) -> None:
        """Import and register one plugin. Its version is the module's ``__version__`` (or its
        top-level package's) when it declares one (the built-in plugins, which share one
        distribution, each have theirs), else the distribution's; ``hash_source(plugin)`` gives
        its source hash (file, module and editable plugins)."""
        info = PluginInfo(name=name, distribution=dist, version=version or "local", module=module)
        try:
            plugin = importer()
        except Exception as exc:  # a plugin's import error must not break the others
            self.plugins.append(replace(info, error=f"import failed: {_describe_exception(exc)}"))
            return
        if hash_source is not None:
            info = replace(info, source_hash=hash_source(plugin))
        own_version = getattr(plugin, "__version__", None)
        if own_version is None and isinstance(getattr(plugin, "__name__", None), str):  # a module of a package
            own_version = getattr(sys.modules.get(plugin.__name__.split(".")[0]), "__version__", None)
        if isinstance(own_version, str) and own_version:
            info = replace(info, version=own_version)
        elif version is None:
            info = replace(info, version="local")
        unknown = sorted(
            attr
            for attr in dir(plugin)
            if attr.startswith("mmbench_") and attr not in _KNOWN_HOOKS and callable(getattr(plugin, attr))
        )
        if unknown:
            self.plugins.append(
                replace(info, error=f"unknown hook {', '.join(unknown)} (known: {', '.join(sorted(_KNOWN_HOOKS))})")
            )
            return
        if not any(callable(getattr(plugin, hook, None)) for hook in _KNOWN_HOOKS):
            self.plugins.append(replace(info, error=f"defines none of the mmbench hooks ({', '.join(sorted(_KNOWN_HOOKS))}); "
                                                    "is it the module you meant?"))
            return
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:
            self.plugins.append(replace(info, error=f"registration failed: {_describe_exception(exc)}"))
            return
        collected: dict[str, list[Any]] = {}
        for hook_name, (kind, spec_type) in _REGISTRATION_HOOKS.items():
            impl = getattr(plugin, hook_name, None)
            if impl is None:
                continue
            try:
                result = impl()
                if isinstance(result, spec_type):
                    self._broken(name, info, f"{hook_name}() returned one {spec_type.__name__}; return a list of them: "
                                             f"[{spec_type.__name__}(...)]")
                    return
                if isinstance(result, Mapping | str | bytes):
                    self._broken(name, info, f"{hook_name}() returned a {type(result).__name__}; return a list of "
                                             f"{spec_type.__name__}: [{spec_type.__name__}(...), ...]")
                    return
                items = list(result or [])
            except MMBenchError as exc:
                self._broken(name, info, f"{hook_name}() failed: {exc}")
                return
            except Exception as exc:
                self._broken(name, info, f"{hook_name}() failed: {_describe_exception(exc)}")
                return
            wrong = [item for item in items if not isinstance(item, spec_type)]
            if wrong or (result is not None and not isinstance(result, Iterable)):
                got = type(wrong[0]).__name__ if wrong else type(result).__name__
                self._broken(
                    name, info, f"{hook_name}() must return a list of {spec_type.__name__}, got {got}"
                )
                return
            collected[kind] = items
        _inline_datasets(collected)
        code = info.version + (f"+{info.source_hash}" if info.source_hash else "")
        collected["datasets"] = [replace(d, code_identity=code) for d in collected.get("datasets", [])]
        info = replace(
            info,
            datasets=tuple(s.name for s in collected.get("datasets", [])),
            tasks=tuple(s.name for s in collected.get("tasks", [])),
            methods=tuple(s.name for s in collected.get("methods", [])),
        )
        for kind, items in collected.items():
            for spec in items:
                self._entries[kind].setdefault(spec.name, []).append(Registered(spec, info))
        self.plugins.append(info)

    def _broken(self, name: str, info: PluginInfo, error: str) -> None:
        self.pm.unregister(name=name)
        self.plugins.append(replace(info, error=error))

    # -- lookup ----------------------------------------------------------------------------------
    @property
    def broken(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.error]

    def duplicates(self) -> list[str]:
        """One message per name registered by more than one plugin."""
        messages = []
        for kind, entries in self._entries.items():
            for name, regs in sorted(entries.items()):
                if len(regs) > 1:
                    messages.append(_duplicate_message(kind[:-1], name, regs))
        return messages

    def _get(self, kind: str, name: str) -> Registered:
        regs = self._entries[kind].get(name)
        if not regs:
            hint = ""
            if self.broken:
                hint = " Broken plugins: " + "; ".join(f"{p.name} ({p.error})" for p in self.broken) + "."
            known = sorted(self._entries[kind])
            err = unknown_name_error(kind[:-1], name, known)
            raise MMBenchError(f"{err} Run 'mmbench list' to see them all.{hint}")
        if len(regs) > 1:
            raise MMBenchError(_duplicate_message(kind[:-1], name, regs))
        return regs[0]

    def method(self, name: str) -> MethodSpec:
        return self._get("methods", name).spec

    def task(self, name: str) -> TaskSpec:
        return self._get("tasks", name).spec

    def dataset(self, name: str) -> DatasetSpec:
        return self._get("datasets", name).spec

    def dataset_of(self, task: TaskSpec) -> DatasetSpec:
        try:
            return self.dataset(task.dataset)
        except MMBenchError as exc:
            raise MMBenchError(f"task '{task.name}' uses a dataset that is not available: {exc}") from None

    def reference(self, role: str, modalities: Subset) -> tuple[str, dict[str, str]]:
        """The installed method (and its options) that serves as the distillation protocol's
        ``role`` reference model on ``modalities`` (see ``MethodSpec.reference``); the first one
        in name order when several plugins offer one."""
        for registered in self.all("method"):
            spec = registered.spec
            overrides = spec.reference(role, tuple(modalities)) if spec.reference is not None else None
            if overrides is not None:
                return spec.name, {str(k): str(v) for k, v in overrides.items()}
        raise MMBenchError(
            f"no installed method serves as the {role} reference model on {'+'.join(modalities)}: install or enable "
            "the baselines plugin (mmbench_baselines), or register a MethodSpec with reference=..."
        )

    def plugin_of(self, kind: str, name: str) -> PluginInfo:
        return self._get(kind + "s", name).plugin

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries[kind + "s"])

    def all(self, kind: str) -> list[Registered]:
        return [regs[0] for _, regs in sorted(self._entries[kind + "s"].items())]

    def plugin_versions(self) -> dict[str, str]:
        return {p.name: p.version for p in self.plugins if not p.error}

    def plugin_sources(self) -> dict[str, str]:
        """Source hashes of the file / module / editable plugins (see :mod:`mmbench.plugin_source`)."""
        return {p.name: p.source_hash for p in self.plugins if not p.error and p.source_hash}

    # -- lifecycle hooks (observers: their failures are reported, never fatal) -------------------
    def notify(self, hook_name: str, **kwargs: Any) -> None:
        caller = getattr(self.pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            try:
                impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
            except Exception as exc:
                warnings.warn(
                    f"plugin '{impl.plugin_name}' failed in {hook_name}: {_describe_exception(exc)}",
                    RuntimeWarning,
                    stacklevel=2,
                )


def _inline_datasets(collected: dict[str, list[Any]]) -> None:
    """A task may carry its dataset spec inline (``TaskSpec(dataset=DatasetSpec(...))``): the
    dataset is registered by the same plugin and the task refers to it by name."""
    tasks = collected.get("tasks", [])
    inline = [t.dataset for t in tasks if isinstance(t.dataset, DatasetSpec)]
    if not inline:
        return
    datasets = collected.setdefault("datasets", [])
    for dataset in inline:
        if not any(d is dataset for d in datasets):
            datasets.append(dataset)
    collected["tasks"] = [replace(t, dataset=t.dataset.name) if isinstance(t.dataset, DatasetSpec) else t for t in tasks]


def _duplicate_message(kind: str, name: str, regs: list[Registered]) -> str:
    owners = " and ".join(
        f"plugin '{r.plugin.name}' ({r.plugin.distribution} {r.plugin.version})" for r in regs
    )
    return f"{kind} '{name}' is registered by both {owners}; uninstall or disable one of them."
