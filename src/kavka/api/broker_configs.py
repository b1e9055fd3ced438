"""BROKER resources of AlterConfigs and IncrementalAlterConfigs: dynamic broker settings (KIP-226).

The settings DescribeConfigs shows with ``read_only=false`` (docs/CONFIG.md's *dynamic*
column) change while the broker runs, at one of two scopes, as ``kafka-configs
--entity-type brokers`` sets them:

* resource name ``"<this broker's id>"``: this broker only (DYNAMIC_BROKER_CONFIG);
* resource name ``""`` (``--entity-default``): every broker (DYNAMIC_DEFAULT_BROKER_CONFIG),
  under any per-broker value.

Each scope's values are kept by the metadata layer (kavka.metadata.TopicAdmin
``alter_broker_configs``: a lone broker's data directory, etcd in a cluster) and
survive restarts; a new value reaches every topic without its own override at once.
Kafka's checks, each INVALID_REQUEST (Kafka's preprocessing on the receiving broker turns
every validation failure into that code):

* another broker's id: "Unexpected broker id, expected 0, but received 7" (Kafka's
  admin client sends a per-broker change to that broker itself, so no broker forwards one);
* a setting that needs a restart: "Cannot update these configs dynamically: Set(broker.id)";
* an unknown setting or a bad value: the setting's parse error;
* APPEND / SUBTRACT on a setting that is not a list: INVALID_CONFIG "Config value append is
  not allowed for config key: message.max.bytes".

AlterConfigs replaces the scope's whole set; IncrementalAlterConfigs SETs, DELETEs,
APPENDs to or SUBTRACTs from list settings, starting from the scope's own values.
"""

from __future__ import annotations

import logging
from typing import Iterable, Mapping

from kavka.api.errors import InvalidRequestError
from kavka.config import BROKER_KEYS, CLUSTER_DEFAULT, PER_BROKER, ConfigError, render

log = logging.getLogger("kavka.api")


def scope_of(broker, name: str) -> str:
    """PER_BROKER for our id, CLUSTER_DEFAULT for ""; anything else is refused as Kafka does."""
    if name == "":
        return CLUSTER_DEFAULT
    try:
        node_id = int(name)
    except ValueError:
        raise InvalidRequestError(f"Node id must be an integer, but it is: {name}") from None
    if node_id != broker.node_id:
        raise InvalidRequestError(f"Unexpected broker id, expected {broker.node_id}, but received {name}")
    return PER_BROKER


def current(broker, scope: str) -> dict[str, str]:
    """The scope's dynamic values as strings."""
    return {name: render(value) for name, value in broker.config.dynamic[scope].items()}


def incremental(values: Mapping[str, str], ops: Iterable[tuple[str, str, str | None]]) -> dict[str, str]:
    """``values`` after (name, operation name, value) operations."""
    result = dict(values)
    for name, operation, value in ops:
        if operation == "SET":
            result[name] = value
        elif operation == "DELETE":
            result.pop(name, None)
        else:
            result[name] = _list_op(result, name, operation, value)
    return result


def _list_op(values: Mapping[str, str], name: str, operation: str, value: str) -> str:
    key = BROKER_KEYS.get(name)
    if key is None or key.type != "list":
        raise ConfigError(f"Config value {operation.lower()} is not allowed for config key: {name}")
    items = [i.strip() for i in values.get(name, render(key.default) or "").split(",") if i.strip()]
    given = [i.strip() for i in value.split(",") if i.strip()]
    if operation == "APPEND":
        items += [i for i in dict.fromkeys(given) if i not in items]
    else:
        items = [i for i in items if i not in set(given)]
    return ",".join(items)


def alter(broker, scope: str, values: Mapping[str, str], validate_only: bool):
    """Check ``values`` as the scope's new set, then, unless only validating, an awaitable
    of the change's AdminResult."""
    if dict(values) == current(broker, scope):
        return None
    try:
        broker.admin.check_broker_configs(scope, values)
    except ConfigError as exc:
        raise InvalidRequestError(str(exc)) from exc
    if validate_only:
        return None
    return _altered(broker, scope, dict(values))


async def _altered(broker, scope: str, values: dict[str, str]):
    result = await broker.admin.alter_broker_configs(scope, values)
    if result.ok:
        where = "every broker (cluster default)" if scope == CLUSTER_DEFAULT else f"broker {broker.node_id}"
        log.info("dynamic configs of %s: %s", where,
                 ", ".join(f"{k}={v}" for k, v in sorted(values.items())) or "(none)")
    return result
