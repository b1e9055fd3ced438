"""DescribeConfigs (key 32): the settings of topics, this broker and its loggers.

Resource types, as in Kafka:

* TOPIC (2): every topic setting, resolved.  A setting's *source* is where its
  value came from: the topic's own override (DYNAMIC_TOPIC_CONFIG), a broker
  setting from the file or ``--override`` (STATIC_BROKER_CONFIG) or a built-in
  default (DEFAULT_CONFIG).  Synonyms list that chain, highest priority first:
  the topic override, then the broker synonyms set explicitly, then those with
  defaults, each group in the synonyms' priority order (``log.retention.ms``,
  ``.minutes``, ``.hours``).  The source of a setting is the source of its
  first synonym.
* BROKER (4): name ``"<our broker id>"`` gives every broker setting with its
  source: DYNAMIC_BROKER_CONFIG (set live for this broker), DYNAMIC_DEFAULT_BROKER_CONFIG
  (set live for the whole cluster), STATIC_BROKER_CONFIG (the file, ``--override``) or
  DEFAULT_CONFIG, and synonyms in that order (kavka.config.BrokerConfig.layers);
  read_only is false for the settings that change live (api/broker_configs.py).
  ``""`` means the cluster-wide dynamic defaults: only those set, each with only its
  cluster-default synonyms, as Kafka answers.  Another id is INVALID_REQUEST
  "Unexpected broker id, expected 0 or empty string, but received 7".
* GROUP (32): every group config (kavka.group_configs) with GROUP_CONFIG where the group
  sets it, else DEFAULT_CONFIG with the broker's default; read_only false (api/group_resources.py).
* BROKER_LOGGER (8): our Python loggers and their effective levels, under
  log4j's level names (api/broker_loggers.py); the name must be our broker id.
* anything else: INVALID_REQUEST.

Every failure is per resource, with an error message.

Kafka differs in one quirk we do not copy: when a topic setting's primary broker
synonym (``log.retention.ms``) is unset, Kafka drops the lower-priority ones
(``log.retention.hours``) from the synonym list and reports DEFAULT_CONFIG even
if the file set them; we list them and report STATIC_BROKER_CONFIG.  And Kafka marks
``listeners``, ``advertised.listeners`` and ``listener.security.protocol.map`` read_only=false
(per-broker dynamic); kavka cannot rebind a running listener, so they stay read-only here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from kavka.api import group_resources
from kavka.api.authorization import Op, check_config_resource
from kavka.api.broker_loggers import logger_levels
from kavka.api.errors import InvalidRequestError, error_code_for, error_message
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.config import (
    BROKER_KEYS,
    CLUSTER_DEFAULT,
    CONFIG_TYPE_CODES,
    TOPIC_KEYS,
    TOPIC_SYNONYMS,
    BrokerConfig,
    ConfigSource,
    render,
)
from kavka.log.errors import LogError, UnknownTopicOrPartition
from kavka.log.topic_catalog import validate_topic_name
from kavka.protocol.errors import ErrorCode

KEY = 32
VERSIONS = (1, 4)

TOPIC, BROKER, BROKER_LOGGER = 2, 4, 8
DYNAMIC_BROKER_LOGGER = 6


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    """One described setting, independent of the response version."""
    name: str
    value: str | None
    source: int
    read_only: bool
    sensitive: bool
    synonyms: tuple[tuple[str, str | None, int], ...]
    type_code: int
    doc: str | None


# -- topic settings (also used by CreateTopics v5+) ----------------------------------------

def topic_entries(config: BrokerConfig, values: Mapping[str, Any], overrides: Iterable[str]) -> list[ConfigEntry]:
    """Every topic setting, sorted by name, given the resolved ``values`` and the
    names the topic overrides."""
    overridden = frozenset(overrides)
    return [_topic_entry(config, name, values[name], name in overridden) for name in sorted(TOPIC_KEYS)]


def _topic_entry(config: BrokerConfig, name: str, value: Any, overridden: bool) -> ConfigEntry:
    key = TOPIC_KEYS[name]
    text = render(value)
    group = tuple(broker_name for broker_name, _factor in TOPIC_SYNONYMS.get(name, ()))
    chain = _broker_chain(config, group)
    if overridden:
        chain.insert(0, (name, text, ConfigSource.DYNAMIC_TOPIC))
    source = chain[0][2] if chain else ConfigSource.DEFAULT
    doc = key.doc or next((BROKER_KEYS[b].doc for b in group if BROKER_KEYS[b].doc), None)
    return ConfigEntry(name, text, source, False, False, tuple(chain), CONFIG_TYPE_CODES[key.type], doc)


def _broker_chain(config: BrokerConfig, group: tuple[str, ...]) -> list[tuple[str, str | None, int]]:
    """Broker settings of one synonym group in Kafka's order: every synonym set for this
    broker, then in the cluster default, then in the file, then the built-in defaults
    (within each, the synonyms' priority order)."""
    chain = [(n, _shown(n, value), source) for n in group for value, source in config.layers(n)]
    return sorted(chain, key=lambda entry: entry[2])   # source codes ascend with falling priority


def _shown(name: str, value: Any) -> str | None:
    return None if BROKER_KEYS[name].sensitive or BROKER_KEYS[name].type == "password" else render(value)


# -- broker settings ---------------------------------------------------------------------

def _synonym_groups() -> dict[str, tuple[str, ...]]:
    groups: dict[str, tuple[str, ...]] = {}
    for synonyms in TOPIC_SYNONYMS.values():
        group = tuple(name for name, _factor in synonyms)
        for name in group:
            groups[name] = group
    return groups


_BROKER_GROUPS = _synonym_groups()


def broker_entries(config: BrokerConfig) -> list[ConfigEntry]:
    """Every broker setting as this broker runs with it (resource name "<our id>")."""
    return [_broker_entry(config, name, True) for name in sorted(BROKER_KEYS)]


def cluster_default_entries(config: BrokerConfig) -> list[ConfigEntry]:
    """The cluster-wide dynamic defaults that are set (resource name ""), as Kafka lists them:
    only those, each with only its cluster-default synonyms."""
    return [_broker_entry(config, name, False) for name in sorted(config.dynamic[CLUSTER_DEFAULT])]


def _broker_entry(config: BrokerConfig, name: str, per_broker: bool) -> ConfigEntry:
    key = BROKER_KEYS[name]
    chain = _broker_chain(config, _BROKER_GROUPS.get(name, (name,)))
    # A setting's own chain starts at itself: higher-priority synonyms describe others.
    while chain and chain[0][0] != name:
        chain.pop(0)
    if not per_broker:
        chain = [entry for entry in chain if entry[2] == ConfigSource.DYNAMIC_DEFAULT_BROKER]
    source = chain[0][2] if chain else ConfigSource.DEFAULT
    sensitive = key.sensitive or key.type == "password"
    shown = config.get(name) if per_broker else config.dynamic[CLUSTER_DEFAULT][name]
    value = None if sensitive else render(shown)
    return ConfigEntry(name, value, source, key.read_only, sensitive, tuple(chain),
                       CONFIG_TYPE_CODES[key.type], key.doc or None)


def _logger_entries() -> list[ConfigEntry]:
    return [ConfigEntry(name, level, DYNAMIC_BROKER_LOGGER, False, False, (), CONFIG_TYPE_CODES["string"], None)
            for name, level in logger_levels()]


# -- the handler -------------------------------------------------------------------------

@api(KEY, "DescribeConfigs", VERSIONS)
def handle(request: Request):
    r = builder_for(request)
    body = request.body
    synonyms = body.include_synonyms
    docs = getattr(body, "include_documentation", False)
    results = tuple(_describe(r, request, resource, synonyms, docs) for resource in body.resources)
    return r.DescribeConfigsResponse(results=results)


def _describe(r, request: Request, resource, synonyms: bool, docs: bool):
    try:
        check_config_resource(request, Op.DESCRIBE_CONFIGS, resource.resource_type, resource.resource_name)
        entries = _entries(request.broker, resource.resource_type, resource.resource_name)
        code, message = ErrorCode.none, None
    except (LogError, ValueError) as exc:
        entries, code, message = [], error_code_for(exc), error_message(exc)
    wanted = resource.configuration_keys
    if wanted:
        entries = [e for e in entries if e.name in wanted]
    return r.DescribeConfigsResult(
        error_code=code, error_message=message, resource_type=resource.resource_type,
        resource_name=resource.resource_name,
        configs=tuple(_config(r, e, synonyms, docs) for e in entries))


def _entries(broker, resource_type: int, name: str) -> list[ConfigEntry]:
    if resource_type == TOPIC:
        return _topic(broker, name)
    if resource_type == BROKER:
        if name == "":
            return cluster_default_entries(broker.config)
        _check_broker_id(broker, name, "or empty string, ")
        return broker_entries(broker.config)
    if resource_type == BROKER_LOGGER:
        check_logger_resource(broker, name)
        return _logger_entries()
    if resource_type == group_resources.GROUP:
        return [ConfigEntry(n, value, source, False, False, ((n, value, source),), CONFIG_TYPE_CODES[type_], doc)
                for n, value, source, type_, doc in group_resources.described(broker, name)]
    raise InvalidRequestError(f"Unsupported resource type: {resource_type}")


def _topic(broker, name: str) -> list[ConfigEntry]:
    validate_topic_name(name)
    info = broker.metadata.topic(name)
    if info is None:
        raise UnknownTopicOrPartition(f"The topic '{name}' does not exist.")
    return topic_entries(broker.config, info.config.values, info.config.overrides)


def check_logger_resource(broker, name: str) -> None:
    """A BROKER_LOGGER resource names this broker's id, never the empty string."""
    if name == "":
        raise InvalidRequestError("Broker id must not be empty")
    _check_broker_id(broker, name, "")


def _check_broker_id(broker, name: str, alternative: str) -> None:
    try:
        broker_id = int(name)
    except ValueError:
        raise InvalidRequestError(f"Broker id must be an integer, but it is: {name}") from None
    if broker_id != broker.node_id:
        raise InvalidRequestError(
            f"Unexpected broker id, expected {broker.node_id} {alternative}but received {name}")


def _config(r, entry: ConfigEntry, synonyms: bool, docs: bool):
    return r.DescribeConfigsResourceResult(
        name=entry.name, value=entry.value, read_only=entry.read_only, config_source=entry.source,
        is_sensitive=entry.sensitive, config_type=entry.type_code,
        documentation=entry.doc if docs else None,
        synonyms=tuple(r.DescribeConfigsSynonym(name=n, value=v, source=s) for n, v, s in entry.synonyms)
        if synonyms else ())
