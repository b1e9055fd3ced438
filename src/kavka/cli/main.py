"""``kavka``: the command line.  Each sub-command lives in its own module."""

from __future__ import annotations

import argparse
import sys

from kavka import __version__
from kavka.cli import check, cluster, configs, consume, dump_log, export, groups, produce, serve, topics
from kavka.cli.common import CliError  # kavka.client_session.ToolError: printed as one line, exit status 1

COMMANDS = {"serve": serve, "topics": topics, "configs": configs, "produce": produce, "consume": consume,
            "groups": groups, "export": export, "cluster": cluster, "check": check, "dump-log": dump_log}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kavka", description="A Kafka-compatible event streaming broker.")
    parser.add_argument("--version", action="version", version=f"kavka {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        module.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command].run(args) or 0
    except CliError as exc:
        print(f"kavka {args.command}: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)
    except KeyboardInterrupt:
        return 130
