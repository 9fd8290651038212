"""The ``mmbench`` command line: one module per sub-command.

``mmbench --help`` and ``mmbench list`` never import torch (each sub-command imports what it needs
when it runs). Errors are one line on stderr with a non-zero exit code; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn

from mmbench import __version__, interrupts
from mmbench.api import DEFAULT_METHOD, DEFAULT_TASK
from mmbench.errors import MMBenchError, one_line


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one ``error:`` line (exit 2) like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {one_line(message, 500)} (see '{self.prog} --help').\n")


def _common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="show full tracebacks on errors")
    parser.add_argument("--plugin", action="append", metavar="MODULE|FILE.py", default=default,
                        help="load a plugin module or file (repeatable; also $MMBENCH_PLUGINS)")
    parser.add_argument("--disable", action="append", metavar="PLUGIN", default=default,
                        help="do not load this plugin (repeatable; also $MMBENCH_DISABLE=a,b)")


def add_logger_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--logger", dest="loggers", action="append", default=[], metavar="NAME",
                        help="log every run to tensorboard or mlflow too (repeatable; also $MMBENCH_LOGGERS=a,b)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="mmbench",
        description="Benchmark multimodal learning with missing modalities and cross-modal distillation.",
        epilog="Run 'mmbench run' with no options for the embedded synthetic default.",
    )
    parser.add_argument("--version", action="version", version=f"mmbench {__version__}")
    _common(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="train and evaluate a method on a task",
                         description="Train and evaluate a method on a task, one run per seed; "
                         "write a run record per seed to OUT/<task>/<method>/<run_id>.json.")
    run.add_argument("--method", default=DEFAULT_METHOD, help=f"method name (default: {DEFAULT_METHOD})")
    run.add_argument("--task", default=DEFAULT_TASK, help=f"task name (default: {DEFAULT_TASK})")
    run.add_argument("--seeds", default="0", help="seeds: 3, 0-4 or 0,2,5 (default: 0)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="method option, recipe.<field> or dataset.revision (repeatable)")
    run.add_argument("--profile", default="smoke", help="training profile: smoke (CPU minutes) or full (the paper's)")
    run.add_argument("--out", default="runs", help="results directory (default: runs)")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    run.add_argument("--compile", action="store_true", help="torch.compile the training step (recipe.compile=true)")
    run.add_argument("--data-dir", default=None, help="root of bring-your-own datasets (default: $MMBENCH_DATA)")
    run.add_argument("--resume", action="store_true", help="continue an interrupted run from its checkpoint")
    run.add_argument("--force", action="store_true", help="re-run even if an identical run is recorded")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--rebuild-cache", action="store_true",
                     help="rebuild the task's preprocessed data cache (and generated data) before training")
    run.add_argument("--yes", action="store_true", help="confirm a run of more than 100 seeds")
    run.add_argument("--dry-run", action="store_true",
                     help="print the plan — each run and the runs it depends on, and whether each is cached — and exit")
    run.add_argument("--save-weights", action="store_true",
                     help="keep the selected weights in the artifact cache, where runs that depend on this one find them")
    run.add_argument("--threads", type=int, default=None, metavar="N",
                     help="torch CPU threads (default: the cores this process may use, from its CPU affinity)")
    add_logger_option(run)
    _common(run, suppress=True)

    listing = sub.add_parser("list", help="list methods, tasks and datasets")
    listing.add_argument("kind", nargs="?", choices=["methods", "tasks", "datasets"], help="only this kind")
    listing.add_argument("name", nargs="?", help="one method / task / dataset in full (its options, recipes, source)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    _common(listing, suppress=True)

    plugins = sub.add_parser("plugins", help="list loaded plugins, their versions and what they register")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    _common(plugins, suppress=True)

    check = sub.add_parser("check-plugin", help="run the conformance kit on everything a plugin registers",
                           description="Run the conformance kit on every method and task of the given plugins "
                           "(plugin names as 'mmbench plugins' lists them, or distribution names). Records go to a "
                           "temporary folder; the tiny conformance datasets are cached under $MMBENCH_HOME.")
    check.add_argument("names", nargs="+", metavar="PLUGIN", help="plugin or distribution names")
    check.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="method option or recipe.<field> for the checked methods (repeatable)")
    _common(check, suppress=True)

    from mmbench.cli.leaderboard import add_parser as add_leaderboard

    add_leaderboard(sub, _common)
    from mmbench.cli.sweep import add_parser as add_sweep

    add_sweep(sub, _common)
    from mmbench.cli.reproduce import add_parser as add_reproduce

    add_reproduce(sub, _common)
    return parser


def _format_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ARG001
    return f"warning: {message}\n"


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args.command = "run"
        args = parser.parse_args([*(argv if argv is not None else sys.argv[1:]), "run"])
    warnings.formatwarning = _format_warning
    interrupts.install()
    try:
        if args.command == "run":
            from mmbench.cli.run import run_command

            return run_command(args)
        if args.command == "check-plugin":
            from mmbench.cli.check import check_plugin_command

            return check_plugin_command(args)
        if args.command == "sweep":
            from mmbench.cli.sweep import sweep_command

            return sweep_command(args)
        if args.command == "reproduce":
            from mmbench.cli.reproduce import reproduce_command

            return reproduce_command(args)
        if args.command == "leaderboard":
            from mmbench.cli.leaderboard import leaderboard_command

            return leaderboard_command(args)
        from mmbench.cli.listing import list_command, plugins_command

        return list_command(args) if args.command == "list" else plugins_command(args)
    except BrokenPipeError:  # `mmbench list | head`: the reader left, nothing more to say
        _silence_stdout()
        return 0
    except MMBenchError as exc:
        if args.debug:
            raise
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"error: {interrupts.describe()}.", file=sys.stderr)
        return interrupts.exit_code()
    except Exception as exc:
        if args.debug:
            raise
        print(f"error: unexpected {type(exc).__name__}: {one_line(str(exc), 500)} (run with --debug for the traceback)",
              file=sys.stderr)
        return 1
