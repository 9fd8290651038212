"""``mmbench reproduce RECORD|RUNS_DIR``: re-run what records describe and say whether their numbers come back."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction, common) -> None:
    parser = sub.add_parser(
        "reproduce", help="re-run run records and compare every metric with them",
        description="Re-run the exact plan each record describes (method, task, seed, resolved config, recipe, "
        "dataset revision and options, profile, CPU threads) and compare every metric of every subset. One line per "
        "record: identical / differs (largest |Δ| and where) / can't reproduce here (why). Exit 0 when none "
        "differs and all could be reproduced, 1 when one differs, 3 when none differs but some could not be "
        "reproduced here.")
    parser.add_argument("inputs", nargs="+", metavar="RECORD|RUNS_DIR", help="record files or results folders")
    parser.add_argument("--sample", type=int, default=None, metavar="N",
                        help="only N records: the cheapest of each method family, then of each plugin, then the rest")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="keep the re-run records in DIR (default: a temporary folder, removed afterwards)")
    parser.add_argument("--tolerance", type=float, default=None, metavar="T",
                        help="absolute tolerance of the comparison; also runs records made on another device kind "
                             "or torch version, where bit-identity cannot hold")
    parser.add_argument("--device", default="auto", help="auto (the record's device kind), cpu, cuda or cuda:N")
    parser.add_argument("--data-dir", default=None, help="root of bring-your-own datasets (default: $MMBENCH_DATA)")
    common(parser, suppress=True)


def reproduce_command(args: argparse.Namespace) -> int:
    from mmbench.reproduction import exit_code, print_outcomes, reproduce

    def show(outcome) -> None:
        print(outcome.line(), flush=True)

    outcomes = reproduce(args.inputs, sample=args.sample, out=args.out, tolerance=args.tolerance, device=args.device,
                         data_dir=args.data_dir, plugins=args.plugin or (), disable=args.disable or (),
                         log=lambda message: print(message, file=sys.stderr, flush=True), on_outcome=show)
    print_outcomes(outcomes)
    return exit_code(outcomes)
