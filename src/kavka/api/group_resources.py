"""GROUP resources (type 32) of DescribeConfigs and IncrementalAlterConfigs (KIP-848).

The names and rules are kavka.group_configs'.  A group need not exist to have configs
(Kafka keeps them apart from the group's state); the empty name is INVALID_REQUEST
"Group name must not be empty".  IncrementalAlterConfigs SETs and DELETEs, starting
from the group's own values; APPEND/SUBTRACT fail as for any setting that is not a list.
A change is persisted by the metadata layer (kavka.metadata.TopicAdmin
``alter_group_configs``), then handed to the group coordinator, so the group's next
heartbeat answers carry the new interval and its sessions the new timeout.
"""

from __future__ import annotations

import logging
from typing import Iterable

from kavka import group_configs
from kavka.api.errors import InvalidRequestError
from kavka.config import ConfigError

log = logging.getLogger("kavka.api")

GROUP = 32


def check_name(name: str) -> None:
    if not name:
        raise InvalidRequestError("Group name must not be empty")


def described(broker, name: str) -> list[tuple[str, str | None, int, str, str]]:
    """(name, value, source, type, doc) of every group config of ``name``."""
    check_name(name)
    return group_configs.describe(broker.config, broker.admin.group_configs(name))


def alter(broker, name: str, ops: Iterable[tuple[str, str, str | None]], validate_only: bool):
    """Apply (name, operation name, value) operations to the group's configs: checked, then,
    unless only validating, an awaitable of the change's AdminResult."""
    check_name(name)
    values = dict(broker.admin.group_configs(name))
    for config, operation, value in ops:
        if config not in group_configs.GROUP_KEYS:
            raise ConfigError(f"Unknown group config name: {config}")
        if operation == "SET":
            values[config] = value
        elif operation == "DELETE":
            values.pop(config, None)
        else:
            raise ConfigError(f"Can't {operation} to key {config} because its type is not LIST.")
    parsed = group_configs.check(broker.config, values)
    if validate_only or values == dict(broker.admin.group_configs(name)):
        return None
    return _altered(broker, name, values, group_configs.coordinator_settings(parsed))


async def _altered(broker, name: str, values: dict[str, str], settings: dict[str, int]):
    result = await broker.admin.alter_group_configs(name, values)
    if result.ok and broker.groups is not None:
        broker.groups.query(lambda coordinator: coordinator.set_group_config(name, settings))
        log.info("configs of group %s: %s", name, ", ".join(f"{k}={v}" for k, v in sorted(values.items())) or "(none)")
    return result
