"""IncrementalAlterConfigs (key 44): change topic config overrides one at a time.

Each config entry carries an operation, as in Kafka's AlterConfigOp:

* SET (0): override the setting with the value;
* DELETE (1): remove the override, so the broker default applies again (the
  value is ignored and may be null; removing one that is not set does nothing);
* APPEND (2) / SUBTRACT (3): only for list settings (``cleanup.policy``): add
  the comma-separated items not yet present / remove the ones present, starting
  from the topic's current value (its override, else the broker default).
  On any other setting: INVALID_CONFIG "Can't APPEND to key ... because its type
  is not LIST."

An unknown operation or a null value for SET/APPEND/SUBTRACT is INVALID_REQUEST;
an unknown setting INVALID_CONFIG.  BROKER resources change dynamic broker settings
(api/broker_configs.py); BROKER_LOGGER resources set log levels live
(api/broker_loggers.py); GROUP resources change one group's configs (api/group_resources.py).  Everything else (duplicates, resource types,
validation, persistence, validate_only) is shared with AlterConfigs: see
alter_configs.py.  The changes of one resource apply together or not at all.
"""

from __future__ import annotations

from kavka.api.alter_configs import (
    alter_topic, answer_resources, check_names, refuse_non_topic, require_topic, respond,
)
from kavka.api import broker_configs, group_resources
from kavka.api.broker_loggers import alter_levels
from kavka.api.describe_configs import BROKER, BROKER_LOGGER, TOPIC, check_logger_resource
from kavka.api.errors import InvalidRequestError
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.config import TOPIC_KEYS, ConfigError, render
from kavka.log.topic_catalog import TopicInfo

KEY = 44
VERSIONS = (0, 1)

SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
OPERATION_NAMES = {SET: "SET", DELETE: "DELETE", APPEND: "APPEND", SUBTRACT: "SUBTRACT"}


@api(KEY, "IncrementalAlterConfigs", VERSIONS)
def handle(request: Request):
    r = builder_for(request)
    return respond(lambda responses: r.IncrementalAlterConfigsResponse(responses=responses),
                   answer_resources(r, request, _apply))


def _apply(broker, resource, validate_only: bool) -> None:
    configs = resource.configs
    for c in configs:
        if c.config_operation not in OPERATION_NAMES:
            raise InvalidRequestError(f"Unknown config operation {c.config_operation} for {c.name}")
    check_names(configs, null_allowed=lambda c: c.config_operation == DELETE)
    if resource.resource_type == BROKER_LOGGER:
        check_logger_resource(broker, resource.resource_name)
        alter_levels([(c.name, OPERATION_NAMES[c.config_operation], c.value) for c in configs], validate_only)
        return
    if resource.resource_type == BROKER:
        scope = broker_configs.scope_of(broker, resource.resource_name)
        values = broker_configs.incremental(broker_configs.current(broker, scope),
                                            [(c.name, OPERATION_NAMES[c.config_operation], c.value) for c in configs])
        return broker_configs.alter(broker, scope, values, validate_only)
    if resource.resource_type == group_resources.GROUP:
        return group_resources.alter(broker, resource.resource_name,
                                     [(c.name, OPERATION_NAMES[c.config_operation], c.value) for c in configs],
                                     validate_only)
    if resource.resource_type != TOPIC:
        refuse_non_topic(resource.resource_type)
        return
    info = require_topic(broker, resource.resource_name)
    changes = {c.name: _new_value(info, c.name, c.config_operation, c.value) for c in configs}
    return alter_topic(broker, info.name, changes, validate_only)


def _new_value(info: TopicInfo, name: str, operation: int, value: str | None) -> str | None:
    """The override after one operation; None removes it."""
    key = TOPIC_KEYS.get(name)
    if key is None:
        raise ConfigError(f"{name}: unknown topic config")
    if operation == SET:
        return value
    if operation == DELETE:
        return None
    if key.type != "list":
        raise ConfigError(f"Can't {OPERATION_NAMES[operation]} to key {name} because its type is not LIST.")
    current = info.overrides.get(name)
    if current is None:
        current = render(info.config[name])
    items = _split(current)
    if operation == APPEND:
        items += [item for item in dict.fromkeys(_split(value)) if item not in items]
    else:
        removed = set(_split(value))
        items = [item for item in items if item not in removed]
    return ",".join(items)


def _split(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]
