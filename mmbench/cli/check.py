"""``mmbench check-plugin``: run the conformance kit over everything a plugin registers."""

from __future__ import annotations

import argparse
import sys
import tempfile
import traceback
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mmbench.cli.output import StdoutConsole
from mmbench.config import parse_assignments
from mmbench.errors import MMBenchError, unknown_name_error
from mmbench.plugins import Registry
from mmbench.specs import PluginInfo


def _select(registry: Registry, names: list[str]) -> list[PluginInfo]:
    """Plugins by plugin name (as ``mmbench plugins`` lists them) or by distribution name (every
    plugin that distribution registers)."""
    chosen: list[PluginInfo] = []
    for name in names:
        matches = [p for p in registry.plugins if p.name == name] or [
            p for p in registry.plugins if p.distribution.lower().replace("_", "-") == name.lower().replace("_", "-")
        ]
        if not matches:
            known = {p.name for p in registry.plugins} | {p.distribution for p in registry.plugins}
            raise unknown_name_error("plugin", name, known, hint="Run 'mmbench plugins' to list plugin and distribution names.")
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def check_plugin_command(args: argparse.Namespace) -> int:
    overrides = parse_assignments(args.overrides)
    registry = Registry.load(plugins=args.plugin or (), disabled=args.disable or ())
    plugins = _select(registry, args.names)
    table = Table(title="Conformance", title_justify="left")
    table.add_column("plugin", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("name", no_wrap=True)
    table.add_column("result", overflow="fold")
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    for info in plugins:
        for line in private_import_warnings(info):
            err.print(f"warning: {line}", markup=False)
    with tempfile.TemporaryDirectory(prefix="mmbench-check-") as out:
        failures = _run_checks(registry, plugins, overrides, out, table, err if args.debug else None)
    StdoutConsole().print(table)
    return 1 if failures else 0


def private_import_warnings(info: PluginInfo) -> list[str]:
    """One line per import of the plugin's code that is outside mmbench's public API."""
    from mmbench.boundary import PUBLIC_MODULES, private_imports
    from mmbench.plugin_source import plugin_files
    from mmbench.plugins import is_file_target

    if info.error:
        return []
    local_file = info.distribution == "(local)" and is_file_target(info.module)
    module = sys.modules.get(f"mmbench_local_plugin_{Path(info.module).stem}" if local_file
                             else info.module.split(":")[0])
    lines = []
    for path in plugin_files(module):
        for problem in private_imports(path):
            lines.append(f"plugin '{info.name}': {path.name} {problem}, which is not part of the public API "
                         f"({', '.join(PUBLIC_MODULES)}) and may change in any release.")
    return lines


def _run_checks(registry: Registry, plugins: list[PluginInfo], overrides: dict[str, str], out: str, table: Table,
                debug: Console | None) -> int:
    from mmbench.testing import check_method, check_task

    failures = 0
    for info in plugins:
        if info.error:
            table.add_row(info.name, "plugin", "-", f"[red]broken[/]: {escape(info.error)}")
            failures += 1
            continue
        checks = [("method", m, lambda m=m: check_method(registry.method(m), overrides=overrides, out=out))
                  for m in info.methods]
        checks += [("task", t, lambda t=t: check_task(task := registry.task(t), registry.dataset_of(task)))
                   for t in info.tasks]
        for kind, item, check in checks:
            try:
                check()
                table.add_row(info.name, kind, item, "[green]ok[/]")
            except Exception as exc:  # plugin code under test may raise anything
                failures += 1
                message = str(exc) if isinstance(exc, AssertionError | MMBenchError) else f"{type(exc).__name__}: {exc}"
                table.add_row(info.name, kind, item, "[red]failed[/]: " + escape(message))
                if debug is not None:
                    debug.print(f"--- {kind} {item}: traceback ---", markup=False)
                    debug.print("".join(traceback.format_exception(exc)), markup=False)
    return failures
