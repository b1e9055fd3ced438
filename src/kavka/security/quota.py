"""Kafka's client quotas as data: entities, keys, validation, filters and the resolution order.

An entity is a set of (type, name) components, types ``user``, ``client-id`` and ``ip``; a
name of None is that type's *default* entity (``<default>`` in Kafka's tools).  ``ip`` stands
alone; ``user`` and ``client-id`` may be combined.  Each entity sets some of the quota keys
below (``connection_creation_rate`` for ``ip`` only, the others for users and clients).

:class:`ClientQuotas` is what the metadata boundary stores (a local file, or etcd keys in a
cluster) and every broker enforces.  :meth:`ClientQuotas.resolve` picks the quota a (user,
client id) connection is held to, in Kafka's documented order (the first entity setting the
key wins)::

    user + client-id, user + default client-id, user,
    default user + client-id, default user + default client-id, default user,
    client-id, default client-id

and names the metric that counts it, as Kafka's DefaultQuotaCallback tags it: (user, client)
when a user-and-client entity matched, (user, "") for a user entity, ("", client) for a
client entity, so connections sharing a quota share its rate.  Pure: no I/O, no clock.
"""

from __future__ import annotations

import ipaddress
import json
import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping

USER, CLIENT_ID, IP = "user", "client-id", "ip"
ENTITY_TYPES = (USER, CLIENT_ID, IP)

PRODUCER_BYTE_RATE = "producer_byte_rate"
CONSUMER_BYTE_RATE = "consumer_byte_rate"
REQUEST_PERCENTAGE = "request_percentage"
CONTROLLER_MUTATION_RATE = "controller_mutation_rate"
CONNECTION_CREATION_RATE = "connection_creation_rate"

# Key -> whether Kafka's QuotaConfig types it LONG (a whole number) rather than DOUBLE.
CLIENT_KEYS = {PRODUCER_BYTE_RATE: True, CONSUMER_BYTE_RATE: True, REQUEST_PERCENTAGE: False,
               CONTROLLER_MUTATION_RATE: False}
IP_KEYS = {CONNECTION_CREATION_RATE: True}

MATCH_EXACT, MATCH_DEFAULT, MATCH_SPECIFIED = 0, 1, 2

Entity = tuple[tuple[str, "str | None"], ...]   # components sorted by ENTITY_TYPES order


class InvalidQuota(ValueError):
    """A request Kafka answers INVALID_REQUEST."""


def entity_of(components: Iterable[tuple[str, str | None]]) -> Entity:
    """The canonical entity of (type, name) components; InvalidQuota for a bad combination."""
    seen: dict[str, str | None] = {}
    for kind, name in components:
        if kind not in ENTITY_TYPES:
            raise InvalidQuota(f"Unhandled client quota entity type: {kind}")
        if kind in seen:
            raise InvalidQuota(f"Duplicate {kind} entity type in request")
        if name is not None and name == "":
            raise InvalidQuota(f"Empty {kind} entity name; use null for the default entity")
        seen[kind] = name
    if not seen:
        raise InvalidQuota("Invalid empty client quota entity")
    if IP in seen and len(seen) > 1:
        raise InvalidQuota("Invalid quota entity combination, IP entity should not be combined with User or ClientId")
    if seen.get(IP) is not None:
        _check_ip(seen[IP])
    return tuple((k, seen[k]) for k in ENTITY_TYPES if k in seen)


def _check_ip(name: str) -> None:
    """An ip entity names an address literal (Kafka also resolves host names; kavka does no DNS)."""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        raise InvalidQuota(f"{name} is not a valid IP or resolvable host.") from None


def allowed_keys(entity: Entity) -> Mapping[str, bool]:
    return IP_KEYS if entity[0][0] == IP else CLIENT_KEYS


def check_value(entity: Entity, key: str, value: float | None) -> None:
    """InvalidQuota unless ``key`` may be set on ``entity`` to ``value`` (None: removed)."""
    keys = allowed_keys(entity)
    if key not in keys:
        raise InvalidQuota(f"Invalid configuration key {key} for entity {describe(entity)}")
    if value is None:
        return
    if math.isnan(value) or math.isinf(value) or value <= 0:
        raise InvalidQuota(f"Invalid value {value} for configuration key {key}: must be positive")
    if keys[key] and value != int(value):
        raise InvalidQuota(f"Configuration {key} must be a Long value")


def describe(entity: Entity) -> str:
    return ", ".join(f"{k}={'<default>' if n is None else n}" for k, n in entity)


@dataclass(frozen=True)
class FilterComponent:
    entity_type: str
    match_type: int
    match: str | None = None

    def accepts(self, name: str | None) -> bool:
        if self.match_type == MATCH_EXACT:
            return name is not None and name == self.match
        if self.match_type == MATCH_DEFAULT:
            return name is None
        return name is not None


def check_filter(components: Iterable[FilterComponent]) -> None:
    """DescribeClientQuotas' checks of its filter (INVALID_REQUEST), as Kafka makes them."""
    seen = set()
    for c in components:
        if c.entity_type not in ENTITY_TYPES:
            raise InvalidQuota(f"Custom entity type {c.entity_type!r} not supported")
        if c.entity_type in seen:
            raise InvalidQuota(f"Entity type {c.entity_type} cannot appear more than once in the filter.")
        if c.match_type not in (MATCH_EXACT, MATCH_DEFAULT, MATCH_SPECIFIED):
            raise InvalidQuota(f"Unknown match type {c.match_type}")
        if c.match_type == MATCH_EXACT and c.match is None:
            raise InvalidQuota(f"Exact match of {c.entity_type} needs a name")
        if c.match_type != MATCH_EXACT and c.match is not None:
            raise InvalidQuota(f"Match type {c.match_type} of {c.entity_type} takes no name")
        seen.add(c.entity_type)
    if IP in seen and len(seen) > 1:
        raise InvalidQuota("Invalid entity filter component combination, IP filter component should "
                           "not be used with user or clientId filter component.")


@dataclass(frozen=True)
class ClientQuotas:
    """Every entity's quota values (entity -> {key: value}), none empty."""
    entries: Mapping[Entity, Mapping[str, float]] = field(default_factory=dict)

    def altered(self, entity: Entity, changes: Mapping[str, float | None]) -> "ClientQuotas":
        """These values set (None removes one), checked by the caller with :func:`check_value`."""
        values = dict(self.entries.get(entity, {}))
        for key, value in changes.items():
            if value is None:
                values.pop(key, None)
            else:
                values[key] = float(value)
        entries = dict(self.entries)
        if values:
            entries[entity] = values
        else:
            entries.pop(entity, None)
        return ClientQuotas(entries)

    def matching(self, components: Iterable[FilterComponent], strict: bool) -> list[tuple[Entity, Mapping[str, float]]]:
        """The entities a DescribeClientQuotas filter matches; strict: no other component types."""
        wanted = {c.entity_type: c for c in components}
        found = []
        for entity, values in sorted(self.entries.items(), key=lambda e: describe(e[0])):
            names = dict(entity)
            if any(t not in names or not c.accepts(names[t]) for t, c in wanted.items()):
                continue
            if strict and set(names) != set(wanted):
                continue
            found.append((entity, values))
        return found

    def resolve(self, key: str, user: str, client_id: str) -> tuple[float, tuple[str, str]] | None:
        """The quota of ``key`` for this user and client and the metric tags counting it, or None."""
        for entity, tags in _candidates(user, client_id):
            value = self.entries.get(entity, {}).get(key)
            if value is not None:
                return value, tags
        return None

    def ip_quota(self, ip: str) -> float | None:
        """connection_creation_rate of ``ip``: its own entity, else the default ip entity."""
        for name in (ip, None):
            value = self.entries.get(((IP, name),), {}).get(CONNECTION_CREATION_RATE)
            if value is not None:
                return value
        return None

    def encode(self) -> str:
        return json.dumps([{"entity": [[k, n] for k, n in e], "values": dict(v)}
                           for e, v in sorted(self.entries.items(), key=lambda e: describe(e[0]))], indent=1)

    @classmethod
    def decode(cls, text: str) -> "ClientQuotas":
        return cls({entity_of((k, n) for k, n in item["entity"]): dict(item["values"])
                    for item in json.loads(text)})


def entity_key(entity: Entity) -> str:
    """An entity's identity as text (the name of its etcd key)."""
    return json.dumps([[k, n] for k, n in entity])


def entity_from_key(text: str) -> Entity:
    return entity_of((k, n) for k, n in json.loads(text))


def _candidates(user: str, client: str):
    """(entity, metric tags) in Kafka's precedence order."""
    return (
        (((USER, user), (CLIENT_ID, client)), (user, client)),
        (((USER, user), (CLIENT_ID, None)), (user, client)),
        (((USER, user),), (user, "")),
        (((USER, None), (CLIENT_ID, client)), (user, client)),
        (((USER, None), (CLIENT_ID, None)), (user, client)),
        (((USER, None),), (user, "")),
        (((CLIENT_ID, client),), ("", client)),
        (((CLIENT_ID, None),), ("", client)),
    )
