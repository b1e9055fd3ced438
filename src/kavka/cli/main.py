"""``kavka``: the command line.  Each sub-command lives in its own module."""

from __future__ import annotations

import argparse
import sys

from kavka import __version__
from kavka.cli import check, cluster, configs, consume, export, groups, produce, serve, topics


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit status 1."""


COMMANDS = {"serve": serve, "topics": topics, "configs": configs, "produce": produce, "consume": consume,
            "groups": groups, "export": export, "cluster": cluster, "check": check}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kavka", description="A Kafka-compatible event streaming broker.")
    parser.add_argument("--version", action="version", version=f"kavka {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        module.add_parser(commands)
    return parser


def _keep_kio_from_loading_hypothesis() -> None:
    """kio registers Hypothesis strategies at import time when Hypothesis is
    installed; that costs up to a second (it builds a unicode table) and leaves a
    ``.hypothesis`` folder in the working directory.  The command line never needs
    it, so the import is made to fail before kio is first imported."""
    if "kio" not in sys.modules:
        sys.modules.setdefault("hypothesis", None)


def main(argv: list[str] | None = None) -> int:
    _keep_kio_from_loading_hypothesis()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command].run(args) or 0
    except CliError as exc:
        print(f"kavka {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
