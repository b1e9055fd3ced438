"""GROUP config resources (resource type 32, KIP-848): settings of one group, as Kafka's GroupConfig.

``kafka-configs --entity-type groups --entity-name G --alter --add-config
consumer.heartbeat.interval.ms=3000`` sets a group's own value; every other group keeps
the broker's.  The names, as Kafka 4.1 lists them (streams.* aside: kavka has no streams
groups):

* ``consumer.session.timeout.ms`` / ``consumer.heartbeat.interval.ms``: a consumer-protocol
  group's session timeout and the heartbeat interval its members are told; default the
  broker's ``group.consumer.session.timeout.ms`` / ``group.consumer.heartbeat.interval.ms``.
  These two take effect in kavka (kavka.group.coordinator ``set_group_config``).
* ``share.*``: share groups (KIP-932), described and validated with Kafka's defaults and
  bounds; kavka has no share groups, so they have no effect.

A change is checked as Kafka's GroupConfig.validate checks the group's merged values
(INVALID_CONFIG): an unknown name "Unknown group config name: x", each value within the
broker's ``group.consumer.min/max.*`` (``group.share.min/max.*``) bounds, and a session
timeout above the heartbeat interval.  Unset values are the broker's defaults here
(Kafka checks them against GroupConfig's built-in defaults, the same unless the broker
changes them).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from kavka.config import BrokerConfig, ConfigError, ConfigKey, ConfigSource, at_least, one_of, render

_DURATION = re.compile(r"P(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?(?:\d+(?:\.\d+)?S)?)?", re.IGNORECASE)


def _offset_reset(name: str, value: str) -> None:
    if value in ("latest", "earliest"):
        return
    duration = value[len("by_duration:"):] if value.startswith("by_duration:") else None
    if duration is None or duration in ("P", "PT") or not _DURATION.fullmatch(duration):
        raise ConfigError(f"Invalid value {value} for configuration {name}: must be latest, earliest "
                          "or by_duration:PnDTnHnMn.nS")


GROUP_KEYS: dict[str, ConfigKey] = {key.name: key for key in (
    ConfigKey("consumer.heartbeat.interval.ms", "int", 5000,
              "Heartbeat interval this group's members are told to keep.", at_least(1), False),
    ConfigKey("consumer.session.timeout.ms", "int", 45000,
              "How long a member of this group may go without a heartbeat before it is removed.", at_least(1), False),
    ConfigKey("share.auto.offset.reset", "string", "latest",
              "Where a share partition starts: latest, earliest, or by_duration:<ISO-8601 duration> back.",
              _offset_reset, False),
    ConfigKey("share.heartbeat.interval.ms", "int", 5000,
              "Heartbeat interval of share-group members.", at_least(1), False),
    ConfigKey("share.isolation.level", "string", "read_uncommitted",
              "read_committed: deliver only committed transactional records; read_uncommitted: all.",
              one_of("read_committed", "read_uncommitted"), False),
    ConfigKey("share.record.lock.duration.ms", "int", 30000,
              "How long a share consumer holds a record it acquired.", at_least(1000), False),
    ConfigKey("share.session.timeout.ms", "int", 45000,
              "How long a share-group member may go without a heartbeat.", at_least(1), False),
)}

# The broker setting each group config defaults to (the others default to GROUP_KEYS').
_BROKER_DEFAULTS = {
    "consumer.heartbeat.interval.ms": "group.consumer.heartbeat.interval.ms",
    "consumer.session.timeout.ms": "group.consumer.session.timeout.ms",
    "share.heartbeat.interval.ms": "group.share.heartbeat.interval.ms",
    "share.record.lock.duration.ms": "group.share.record.lock.duration.ms",
    "share.session.timeout.ms": "group.share.session.timeout.ms",
}

# (group config, broker lower bound, broker upper bound), in the order Kafka checks them.
_BOUNDS = (
    ("consumer.heartbeat.interval.ms", "group.consumer.min.heartbeat.interval.ms",
     "group.consumer.max.heartbeat.interval.ms"),
    ("consumer.session.timeout.ms", "group.consumer.min.session.timeout.ms", "group.consumer.max.session.timeout.ms"),
    ("share.heartbeat.interval.ms", "group.share.min.heartbeat.interval.ms", "group.share.max.heartbeat.interval.ms"),
    ("share.session.timeout.ms", "group.share.min.session.timeout.ms", "group.share.max.session.timeout.ms"),
    ("share.record.lock.duration.ms", "group.share.min.record.lock.duration.ms",
     "group.share.max.record.lock.duration.ms"),
)

# The coordinator's settings (kavka.group.env.GroupConfig fields) a group config changes.
COORDINATOR_FIELDS = {
    "consumer.session.timeout.ms": "consumer_session_timeout_ms",
    "consumer.heartbeat.interval.ms": "consumer_heartbeat_interval_ms",
}


def defaults(config: BrokerConfig) -> dict[str, Any]:
    """Every group config's value for a group that sets none."""
    return {name: config.get(_BROKER_DEFAULTS[name]) if name in _BROKER_DEFAULTS else key.default
            for name, key in GROUP_KEYS.items()}


def parse(texts: Mapping[str, str]) -> dict[str, Any]:
    """Parse a group's own settings (strings); unknown names and bad values raise ConfigError."""
    unknown = sorted(name for name in texts if name not in GROUP_KEYS)
    if unknown:
        raise ConfigError(f"Unknown group config name: {unknown[0]}")
    return {name: GROUP_KEYS[name].parse(text) for name, text in texts.items()}


def check(config: BrokerConfig, texts: Mapping[str, str]) -> dict[str, Any]:
    """A group's whole set of own settings, parsed and checked against the broker's bounds."""
    parsed = parse(texts)
    merged = {**defaults(config), **parsed}
    for name, low, high in _BOUNDS:
        if merged[name] < config.get(low):
            raise ConfigError(f"{name} must be greater than or equal to {low}")
        if merged[name] > config.get(high):
            raise ConfigError(f"{name} must be less than or equal to {high}")
    for kind in ("consumer", "share"):
        if merged[f"{kind}.session.timeout.ms"] <= merged[f"{kind}.heartbeat.interval.ms"]:
            raise ConfigError(f"{kind}.session.timeout.ms must be greater than {kind}.heartbeat.interval.ms")
    return parsed


def coordinator_settings(parsed: Mapping[str, Any]) -> dict[str, int]:
    """The coordinator fields a group's own settings override."""
    return {field: parsed[name] for name, field in COORDINATOR_FIELDS.items() if name in parsed}


def describe(config: BrokerConfig, texts: Mapping[str, str]) -> list[tuple[str, str | None, int, str, str]]:
    """(name, value, source, type, doc) of every group config, sorted: GROUP_CONFIG where the
    group sets it, else DEFAULT_CONFIG with the broker's value, as Kafka answers."""
    own = parse(texts)
    values = {**defaults(config), **own}
    return [(name, render(values[name]), ConfigSource.GROUP if name in own else ConfigSource.DEFAULT,
             GROUP_KEYS[name].type, GROUP_KEYS[name].doc) for name in sorted(GROUP_KEYS)]
