"""``mmbench list`` and ``mmbench plugins``: what is installed. Never imports torch."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mmbench.cli.output import StdoutConsole
from mmbench.errors import MMBenchError
from mmbench.plugins import Registry

_NAME_COLUMNS = {"name", "plugin", "kind", "kinds", "dataset", "metric", "version", "revision", "distribution", "status"}


def _load(args: argparse.Namespace) -> Registry:
    return Registry.load(plugins=args.plugin or (), disabled=args.disable or ())


def _warn_problems(registry: Registry, console: Console) -> None:
    for info in registry.broken:
        console.print(f"[yellow]warning:[/] plugin '{escape(info.name)}' ({escape(info.distribution)}) is broken: "
                      f"{escape(info.error or '')}", highlight=False)
    for message in registry.duplicates():
        console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)


def _entry(kind: str, reg: Any) -> dict[str, Any]:
    spec = reg.spec
    entry: dict[str, Any] = {"name": spec.name, "plugin": reg.plugin.name, "description": spec.description}
    if kind == "methods":
        entry["kinds"] = sorted(spec.kinds)
    elif kind == "tasks":
        entry.update(kind=spec.kind, dataset=spec.dataset, metric=spec.primary, version=spec.version)
    else:
        where = getattr(spec.source, "repo", None) or getattr(spec.source, "subdir", None)
        entry.update(modalities={m: c for m, c in spec.modalities.items()},
                     source=spec.source.kind + (f": {where}" if where else ""), revision=spec.revision,
                     license=spec.license)
    return entry


def _short_revision(revision: str) -> str:
    """A table shows each commit sha (``+``-joined for several repositories) by its first 12
    characters, as git does; ``--json`` and ``mmbench list datasets NAME`` give them whole."""
    return "+".join(part[:12] if re.fullmatch(r"[0-9a-f]{40}", part) else part for part in revision.split("+"))


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}({v})" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)


def _table(title: str, entries: list[dict[str, Any]]) -> Table:
    """Names never wrap mid-word (they are what users type); descriptions wrap."""
    table = Table(title=title, title_justify="left")
    columns = list(entries[0]) if entries else ["name", "description"]
    for column in columns:
        if column in _NAME_COLUMNS:
            table.add_column(column, no_wrap=True)
        else:
            table.add_column(column, overflow="fold", ratio=1)
    for entry in entries:
        shown = {**entry, "revision": _short_revision(str(entry["revision"]))} if "revision" in entry else entry
        table.add_row(*(escape(_cell(shown.get(c, ""))) for c in columns))
    return table


def _console() -> Console:
    return StdoutConsole()


def list_command(args: argparse.Namespace) -> int:
    registry = _load(args)
    if getattr(args, "name", None):
        return _describe(registry, args)
    kinds = [args.kind] if args.kind else ["methods", "tasks", "datasets"]
    rows = {kind: [_entry(kind, reg) for reg in registry.all(kind[:-1])] for kind in kinds}
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    console = _console()
    for kind, entries in rows.items():
        console.print(_table(kind.capitalize(), entries))
    _warn_problems(registry, Console(stderr=True))
    return 0


def _describe(registry: Registry, args: argparse.Namespace) -> int:
    """``mmbench list methods NAME`` / ``tasks NAME`` / ``datasets NAME``: one entry in full."""
    from mmbench.describe import describe_dataset, describe_method, describe_task

    if args.kind is None:
        raise MMBenchError(f"say what '{args.name}' is: mmbench list methods|tasks|datasets {args.name}")
    kind = args.kind[:-1]
    describe = {"method": lambda: describe_method(registry.method(args.name), registry.plugin_of("method", args.name)),
                "task": lambda: describe_task(registry.task(args.name), registry),
                "dataset": lambda: describe_dataset(registry.dataset(args.name))}[kind]
    facts, options = describe()
    spec = {"method": registry.method, "task": registry.task}.get(kind)
    deviations = [dataclasses.asdict(d) for d in (spec(args.name).deviations if spec else ())]
    if args.json:
        print(json.dumps({**facts, "options": options, **({"deviations": deviations} if spec else {})}, indent=2,
                         default=str))
        return 0
    console = _console()
    facts_table = Table(title=f"{kind} {args.name}", title_justify="left", show_header=False)
    facts_table.add_column("field", no_wrap=True)
    facts_table.add_column("value", overflow="fold", ratio=1)
    for key, value in facts.items():
        facts_table.add_row(key, escape(_cell(value)))
    console.print(facts_table)
    if options and kind == "task":  # one row per recipe field, one column per profile
        rows = [{"field (--set recipe.FIELD=...)": name, **{r["profile"]: r[name] for r in options}}
                for name in options[0] if name != "profile"]
        console.print(_table("recipes", rows))
    elif options:
        console.print(_table("options (--set KEY=VALUE)", options))
    if deviations:
        console.print(_table("known differences from the official protocol (full profile)", [
            {"aspect": d["aspect"], **({"tasks": ", ".join(d["tasks"]) or "all"} if kind == "method" else {}),
             "official code": d["official"], "mmbench": d["mmbench"], "source": d["source"]} for d in deviations]))
    return 0


def plugins_command(args: argparse.Namespace) -> int:
    registry = _load(args)
    infos = registry.plugins
    if args.json:
        entries = [{**info.__dict__, "methods": list(info.methods), "tasks": list(info.tasks),
                    "datasets": list(info.datasets)} for info in infos]
        entries += [{"name": name, "status": "disabled"} for name in registry.disabled]
        print(json.dumps(entries, indent=2))
        return 0
    table = Table(title="Plugins", title_justify="left")
    for column in ("plugin", "distribution", "version", "status"):
        table.add_column(column, no_wrap=True)
    table.add_column("registers", overflow="fold", ratio=1)
    for info in infos:
        registers = "; ".join(
            f"{label}: {', '.join(names)}"
            for label, names in (("methods", info.methods), ("tasks", info.tasks), ("datasets", info.datasets))
            if names
        )
        status = "[red]broken[/]" if info.error else "[green]ok[/]"
        detail = f" ({escape(info.error)})" if info.error else ""
        table.add_row(escape(info.name), escape(info.distribution), escape(info.version), status,
                      escape(registers or "-") + detail)
    for name in registry.disabled:
        table.add_row(escape(name), "-", "-", "[yellow]disabled[/]", "-")
    _console().print(table)
    for message in registry.duplicates():
        print(f"warning: {message}", file=sys.stderr)
    return 0
