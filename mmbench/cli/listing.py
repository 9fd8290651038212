"""``mmbench list`` and ``mmbench plugins``: what is installed. Never imports torch."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.table import Table

from mmbench.plugins import Registry


def _load(args: argparse.Namespace) -> Registry:
    return Registry.load(plugins=args.plugin or ())


def _warn_problems(registry: Registry, console: Console) -> None:
    for info in registry.broken:
        console.print(f"[yellow]warning:[/] plugin '{info.name}' ({info.distribution}) is broken: {info.error}",
                      highlight=False, markup=True)
    for message in registry.duplicates():
        console.print(f"[yellow]warning:[/] {message}", highlight=False)


def list_command(args: argparse.Namespace) -> int:
    registry = _load(args)
    kinds = [args.kind] if args.kind else ["methods", "tasks", "datasets"]
    rows: dict[str, list[dict[str, str]]] = {}
    for kind in kinds:
        entries = []
        for reg in registry.all(kind[:-1]):
            spec = reg.spec
            entry = {"name": spec.name, "plugin": reg.plugin.name, "description": spec.description}
            if kind == "methods":
                entry["kinds"] = ", ".join(sorted(spec.kinds))
            elif kind == "tasks":
                entry.update(kind=spec.kind, dataset=spec.dataset, metric=spec.primary, version=spec.version)
            else:
                where = getattr(spec.source, "repo", None) or getattr(spec.source, "subdir", None)
                source = spec.source.kind + (f": {where}" if where else "")
                entry.update(modalities=", ".join(f"{m}({c})" for m, c in spec.modalities.items()),
                             source=source, revision=spec.revision, license=spec.license)
            entries.append(entry)
        rows[kind] = entries
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    console = Console()
    for kind, entries in rows.items():
        table = Table(title=kind.capitalize(), title_justify="left", show_lines=False)
        columns = list(entries[0]) if entries else ["name", "description"]
        for column in columns:
            table.add_column(column, overflow="fold")
        for entry in entries:
            table.add_row(*(str(entry.get(c, "")) for c in columns))
        console.print(table)
    _warn_problems(registry, Console(stderr=True))
    return 0


def plugins_command(args: argparse.Namespace) -> int:
    registry = _load(args)
    infos = registry.plugins
    if args.json:
        print(json.dumps([info.__dict__ for info in infos], indent=2, default=list))
        return 0
    table = Table(title="Plugins", title_justify="left")
    for column in ("plugin", "distribution", "version", "status", "registers"):
        table.add_column(column, overflow="fold")
    for info in infos:
        registers = "; ".join(
            f"{label}: {', '.join(names)}"
            for label, names in (("methods", info.methods), ("tasks", info.tasks), ("datasets", info.datasets))
            if names
        )
        status = f"[red]broken[/]: {info.error}" if info.error else "[green]ok[/]"
        table.add_row(info.name, info.distribution, info.version, status, registers or "-")
    Console().print(table)
    for message in registry.duplicates():
        print(f"warning: {message}", file=sys.stderr)
    return 0
