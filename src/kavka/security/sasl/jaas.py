"""Kafka's ``sasl.jaas.config`` text: ``LoginModuleClass required key="value" ...;``.

Only the options matter to a broker (for PLAIN, the users as ``user_NAME="password"``); the
flag (required, requisite, sufficient, optional) is checked but has no further effect.
"""

from __future__ import annotations

import re

from kavka.config import ConfigError

_MODULE = re.compile(r"\s*([\w.$]+)\s+(required|requisite|sufficient|optional)\s*")
_OPTION = re.compile(r'\s*([\w.$-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s";]+))\s*')


def parse_jaas(text: str) -> dict[str, str]:
    """The options of the (first) login module of a JAAS config; ConfigError if malformed."""
    m = _MODULE.match(text)
    if m is None:
        raise ConfigError(f"sasl.jaas.config: expected 'LoginModule required key=\"value\" ...;', got {text[:60]!r}")
    pos, options = m.end(), {}
    while pos < len(text) and text[pos] != ";":
        opt = _OPTION.match(text, pos)
        if opt is None:
            raise ConfigError(f"sasl.jaas.config: cannot parse the option at {text[pos:pos + 40]!r}")
        value = opt.group(2) if opt.group(2) is not None else opt.group(3)
        options[opt.group(1)] = re.sub(r"\\(.)", r"\1", value)
        pos = opt.end()
    if pos >= len(text):
        raise ConfigError("sasl.jaas.config: the login module must end with ';'")
    return options
