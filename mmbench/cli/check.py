"""``mmbench check-plugin``: run the conformance kit over everything a plugin registers."""

from __future__ import annotations

import argparse
import tempfile

from rich.console import Console
from rich.table import Table

from mmbench.errors import MMBenchError, unknown_name_error
from mmbench.plugins import Registry


def check_plugin_command(args: argparse.Namespace) -> int:
    from mmbench.testing import check_method, check_task

    registry = Registry.load(plugins=args.plugin or ())
    infos = {info.name: info for info in registry.plugins}
    table = Table(title="Conformance", title_justify="left")
    for column in ("plugin", "kind", "name", "result"):
        table.add_column(column, overflow="fold")
    failures = 0
    with tempfile.TemporaryDirectory(prefix="mmbench-check-") as out:
        for name in args.names:
            if name not in infos:
                raise unknown_name_error("plugin", name, infos)
            info = infos[name]
            if info.error:
                table.add_row(name, "plugin", "-", f"[red]broken[/]: {info.error}")
                failures += 1
                continue
            checks = [("method", m, lambda m=m: check_method(registry.method(m), out=out)) for m in info.methods]
            checks += [("task", t, lambda t=t: check_task(task := registry.task(t), registry.dataset_of(task)))
                       for t in info.tasks]
            for kind, item, check in checks:
                try:
                    check()
                    table.add_row(name, kind, item, "[green]ok[/]")
                except (AssertionError, MMBenchError) as exc:
                    failures += 1
                    table.add_row(name, kind, item, f"[red]failed[/]: {exc}")
                except Exception as exc:  # plugin code under test may raise anything
                    failures += 1
                    table.add_row(name, kind, item, f"[red]failed[/]: {type(exc).__name__}: {exc}")
    Console().print(table)
    return 1 if failures else 0
