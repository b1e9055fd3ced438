"""What the client sub-commands (topics, configs, produce, consume, groups, export) share.

They talk to a broker (kavka or Apache Kafka) only over the Kafka protocol, with a
:class:`kavka.client_session.Session` (negotiated versions, leader connections).
This module adds what only a command line needs: the ``--bootstrap-server`` and
``--command-config`` options (Kafka's client properties: TLS, SASL; see
:mod:`kavka.client_security`), ``NAME=VALUE`` pairs, tables and a progress line.

Failures raise :class:`CliError` (one line, exit status 1), which is
:class:`kavka.client_session.ToolError`, so the session's own failures and
:mod:`kavka.export`'s are caught the same way.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Iterable, Sequence

# error_name and parse_time are re-exported for callers that imported them from here.
from kavka.client_session import Session, error_name, parse_time  # noqa: F401
from kavka.client_session import ToolError as CliError

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
BOOTSTRAP_ENV = "KAVKA_BOOTSTRAP"


def bootstrap_parent() -> argparse.ArgumentParser:
    """The ``--bootstrap-server`` and ``--command-config`` options, for ``parents=[...]`` of
    every client sub-command."""
    parent = argparse.ArgumentParser(add_help=False)
    default = os.environ.get(BOOTSTRAP_ENV) or DEFAULT_BOOTSTRAP
    parent.add_argument("-b", "--bootstrap-server", default=default, metavar="HOST:PORT[,HOST:PORT...]",
                        help=f"the brokers to try, in order, until one answers (default {default}; "
                             f"env {BOOTSTRAP_ENV})")
    parent.add_argument("--command-config", metavar="FILE",
                        help="Kafka client properties for the connections: security.protocol, sasl.mechanism, "
                             "sasl.username/sasl.password or sasl.jaas.config (OAUTHBEARER: unsecured login or "
                             "sasl.oauthbearer.token.endpoint.url=file:...), ssl.* (PEM files)")
    return parent


def command_actions(commands, name: str, help: str, description: str):
    """A sub-command whose actions each take ``--bootstrap-server``: (its parent parser for
    ``parents=[...]``, the sub-parsers to add the actions to)."""
    command = commands.add_parser(name, help=help, description=description)
    return bootstrap_parent(), command.add_subparsers(dest="action", metavar="ACTION", required=True)


def parse_pairs(items: Iterable[str], option: str) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise CliError(f"{option} wants NAME=VALUE, got {item!r}")
        pairs.append((name.strip(), value))
    return pairs


def print_table(rows: Sequence[Sequence[Any]], headers: Sequence[str], out=None) -> None:
    out = out or sys.stdout
    text = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in text) for i in range(len(headers))]
    for row in text:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")


class Progress:
    """A self-rewriting progress line on stderr, only when stderr is a terminal
    and the work has lasted a moment."""

    def __init__(self, stream=None, enabled: bool | None = None, delay: float = 1.0, every: float = 0.5) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.next_at = time.monotonic() + delay
        self.every = every
        self.shown = False

    def update(self, text: str) -> None:
        now = time.monotonic()
        if self.enabled and now >= self.next_at:
            self.stream.write(f"\r\x1b[K{text}")
            self.stream.flush()
            self.shown, self.next_at = True, now + self.every

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False


def client_security(args):
    """The ClientSecurity of ``--command-config`` (None without it); CliError naming a bad key."""
    path = getattr(args, "command_config", None)
    if path is None:
        return None
    from kavka.client_security import ClientConfigError, ClientSecurity
    try:
        return ClientSecurity.load(path)
    except ClientConfigError as exc:
        raise CliError(str(exc)) from None


def session(args) -> Session:
    return Session(args.bootstrap_server, security=client_security(args))
