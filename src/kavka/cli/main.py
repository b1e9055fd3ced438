"""``kavka``: the command line.  Each sub-command lives in its own module.

A command line naming one sub-command imports only that module (``kavka serve`` starts
without loading the export, dump-log or cluster tooling); ``kavka --help`` loads them all.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from kavka import __version__
from kavka.cli.common import CliError  # kavka.client_session.ToolError: printed as one line, exit status 1

COMMANDS = {"serve": "serve", "topics": "topics", "configs": "configs", "produce": "produce",
            "consume": "consume", "groups": "groups", "export": "export", "cluster": "cluster",
            "check": "check", "dump-log": "dump_log", "features": "features", "log-dirs": "log_dirs",
            "transactions": "transactions"}


def command_module(name: str):
    return importlib.import_module(f"kavka.cli.{COMMANDS[name]}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with ``only`` one sub-command's (the others are not imported)."""
    parser = argparse.ArgumentParser(prog="kavka", description="A Kafka-compatible event streaming broker.")
    parser.add_argument("--version", action="version", version=f"kavka {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in [only] if only else COMMANDS:
        command_module(name).add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return command_module(args.command).run(args) or 0
    except CliError as exc:
        print(f"kavka {args.command}: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)
    except KeyboardInterrupt:
        return 130
