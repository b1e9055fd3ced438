"""BROKER_LOGGER resources: kavka's Python loggers under log4j's level names, described and set live.

DescribeConfigs lists ``root`` and every ``kavka`` logger with its effective level;
IncrementalAlterConfigs changes levels at once, without a restart, as Kafka's
``kafka-configs --entity-type broker-loggers`` does:

* SET a level (log4j's names: OFF, FATAL, ERROR, WARN, INFO, DEBUG, TRACE, ALL; Python has
  no TRACE or ALL, which become levels 5 and 1 below DEBUG); another value is INVALID_CONFIG;
* DELETE gives a logger back to its parent's level; the root logger's cannot be removed
  (INVALID_CONFIG);
* APPEND / SUBTRACT: INVALID_REQUEST;
* a logger that is neither ``root`` nor a ``kavka`` one: INVALID_CONFIG "does not exist".

A level set here lasts until the broker stops (Kafka keeps none across restarts either).
"""

from __future__ import annotations

import logging

from kavka.api.errors import InvalidRequestError
from kavka.config import ConfigError

ROOT = "root"
_TRACE, _ALL, _OFF = 5, 1, logging.CRITICAL + 10
LOG4J_LEVELS = {"OFF": _OFF, "FATAL": logging.CRITICAL, "ERROR": logging.ERROR, "WARN": logging.WARNING,
                "INFO": logging.INFO, "DEBUG": logging.DEBUG, "TRACE": _TRACE, "ALL": _ALL}
_NAMES = {level: name for name, level in LOG4J_LEVELS.items()}

log = logging.getLogger("kavka.api")


def logger_levels() -> list[tuple[str, str]]:
    """(logger, log4j level name) of root and every kavka logger, root first."""
    names = [ROOT] + sorted(n for n in logging.Logger.manager.loggerDict if _ours(n))
    return [(name, level_name(_logger(name).getEffectiveLevel())) for name in names]


def level_name(level: int) -> str:
    """The log4j name of a Python level; one between two names takes the lower one's."""
    return _NAMES.get(level) or _NAMES[max((lv for lv in _NAMES if lv <= level), default=_ALL)]


def alter_levels(changes: list[tuple[str, str, str | None]], validate_only: bool) -> None:
    """Apply (logger, operation name, value) changes: all of them, or none when one is refused."""
    planned = []
    for name, operation, value in changes:
        if operation not in ("SET", "DELETE"):
            raise InvalidRequestError(f"{operation} operation is not allowed for the BROKER_LOGGER resource")
        if name != ROOT and not _ours(name):
            raise ConfigError(f"Logger {name} does not exist!")
        if operation == "DELETE":
            if name == ROOT:
                raise ConfigError("Removing the log level of the root logger is not allowed")
            planned.append((name, logging.NOTSET))
            continue
        level = LOG4J_LEVELS.get((value or "").strip().upper())
        if level is None:
            raise ConfigError(f"Cannot set the log level of {name} to {value} as it is not a supported log "
                              f"level. Valid log4j levels are {', '.join(LOG4J_LEVELS)}")
        planned.append((name, level))
    if validate_only:
        return
    for name, level in planned:
        _logger(name).setLevel(level)
        log.info("log level of %s set to %s", name, "(parent's)" if level == logging.NOTSET else level_name(level))


def _ours(name: str) -> bool:
    return name == "kavka" or name.startswith("kavka.")


def _logger(name: str) -> logging.Logger:
    return logging.getLogger() if name == ROOT else logging.getLogger(name)
