"""Where cluster metadata lives in etcd: the key layout, as pure functions.

Every key of one cluster sits under ``/kavka/<cluster-id>/`` so that several clusters (or
several tests) can share one etcd::

    /kavka/<cid>/brokers/<id>              BrokerInfo        leased: gone when the broker is
    /kavka/<cid>/controller                ControllerInfo    leased by the controller's broker
    /kavka/<cid>/controller_epoch          decimal integer   never deleted; +1 per election
    /kavka/<cid>/topics/<name>             TopicAssignment   written by the controller
    /kavka/<cid>/partitions/<name>/<p>     PartitionState    written by the controller (and the
                                                             leader, for ISR changes)
    /kavka/<cid>/broker_configs/<id>       BrokerConfigs     dynamic settings of broker <id>
    /kavka/<cid>/broker_configs/default    BrokerConfigs     the cluster-wide dynamic defaults
                                                             (both written by any broker, KIP-226)
    /kavka/<cid>/features                  FinalizedFeatures written by any broker (UpdateFeatures),
                                                             compare-and-swap on its mod revision
    /kavka/<cid>/group_configs/<hex>       GroupConfigs      a group's own configs (KIP-848 GROUP
                                                             resources), written by any broker;
                                                             <hex>: the group id's UTF-8, in hex
    /kavka/<cid>/acls/<hex>                AclBinding        one ACL binding (kavka.security.acl),
                                                             written by any broker; <hex>: the
                                                             binding's JSON, in hex (its identity)
    /kavka/<cid>/client_quotas/<hex>       {key: value}      one entity's client quotas
                                                             (kavka.security.quota), written by any
                                                             broker; <hex>: the entity key, in hex
    /kavka/<cid>/scram_credentials/<hex>/<mechanism>
                                           {salt, keys, ...} one user's salted SCRAM credential
                                                             (kavka.security.credentials; never a
                                                             password), written by any broker;
                                                             <hex>: the user name's UTF-8, in hex

Broker ids are written in decimal; Kafka topic names use only ``[a-zA-Z0-9._-]``, so no name
can contain ``/`` and the parse below is unambiguous; a group id may hold any character, so
its key names it in hex. Nothing here does I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ROOT = "/kavka"
_CLUSTER_ID = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_MECHANISM = re.compile(r"^[A-Z0-9-]{1,40}$")


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with ``prefix`` (etcd range end)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return b"\x00"  # etcd: "every key from prefix on"
    return stripped[:-1] + bytes([stripped[-1] + 1])


@dataclass(frozen=True)
class KeyRef:
    """A parsed key: what it names. ``kind`` is one of KINDS."""

    kind: str
    broker_id: int | None = None
    topic: str | None = None
    partition: int | None = None
    group: str | None = None
    acl: str | None = None       # an ACL binding's JSON (kavka.security.acl.AclBinding.to_json)
    quota: str | None = None     # a quota entity's key (kavka.security.quota.entity_key)
    user: str | None = None      # a SCRAM user's name
    mechanism: str | None = None  # a SCRAM mechanism (SCRAM-SHA-256, SCRAM-SHA-512)


KINDS = ("broker", "controller", "controller_epoch", "topic", "partition", "broker_config", "features",
         "group_config", "acl", "client_quota", "scram_credential")
DEFAULT_CONFIGS = "default"   # the broker_configs key of the cluster-wide defaults (broker_id None)


class KeyLayout:
    """The keys of one cluster. All methods return ``bytes`` (what the etcd client takes)."""

    def __init__(self, cluster_id: str) -> None:
        if not _CLUSTER_ID.match(cluster_id):
            raise ValueError(f"invalid cluster id {cluster_id!r}")
        self.cluster_id = cluster_id
        self.root = f"{ROOT}/{cluster_id}/".encode()

    # -- prefixes (each ends in "/", so "brokers/1" never matches "brokers/10") ----------
    def prefix(self) -> bytes:
        return self.root

    def brokers_prefix(self) -> bytes:
        return self.root + b"brokers/"

    def topics_prefix(self) -> bytes:
        return self.root + b"topics/"

    def partitions_prefix(self, topic: str | None = None) -> bytes:
        if topic is None:
            return self.root + b"partitions/"
        return self.root + b"partitions/" + _topic(topic).encode() + b"/"

    # -- single keys ---------------------------------------------------------------------
    def broker(self, broker_id: int) -> bytes:
        return self.brokers_prefix() + str(_broker_id(broker_id)).encode()

    def controller(self) -> bytes:
        return self.root + b"controller"

    def broker_configs(self, broker_id: int | None) -> bytes:
        """Dynamic settings of one broker, or (None) the cluster-wide defaults."""
        tail = DEFAULT_CONFIGS if broker_id is None else str(_broker_id(broker_id))
        return self.root + b"broker_configs/" + tail.encode()

    def group_configs(self, group: str) -> bytes:
        return self.root + b"group_configs/" + group.encode("utf-8").hex().encode()

    def acls_prefix(self) -> bytes:
        return self.root + b"acls/"

    def acl(self, binding_json: str) -> bytes:
        return self.acls_prefix() + binding_json.encode("utf-8").hex().encode()

    def client_quota(self, entity_key: str) -> bytes:
        return self.root + b"client_quotas/" + entity_key.encode("utf-8").hex().encode()

    def scram_credentials_prefix(self) -> bytes:
        return self.root + b"scram_credentials/"

    def scram_credential(self, user: str, mechanism: str) -> bytes:
        return (self.scram_credentials_prefix() + user.encode("utf-8").hex().encode() + b"/"
                + _mechanism(mechanism).encode())

    def controller_epoch(self) -> bytes:
        return self.root + b"controller_epoch"

    def features(self) -> bytes:
        return self.root + b"features"

    def topic(self, name: str) -> bytes:
        return self.topics_prefix() + _topic(name).encode()

    def partition(self, topic: str, partition: int) -> bytes:
        if partition < 0:
            raise ValueError(f"invalid partition {partition}")
        return self.partitions_prefix(topic) + str(partition).encode()

    # -- parsing -------------------------------------------------------------------------
    def parse(self, key: bytes) -> KeyRef | None:
        """What ``key`` names, or None for keys that are not ours (or not understood)."""
        if not key.startswith(self.root):
            return None
        parts = key[len(self.root):].decode("utf-8", "replace").split("/")
        try:
            return _parse_parts(parts)
        except ValueError:
            return None


def _parse_parts(parts: list[str]) -> KeyRef | None:
    head, rest = parts[0], parts[1:]
    if head in ("controller", "controller_epoch", "features") and not rest:
        return KeyRef(head)
    if head == "brokers" and len(rest) == 1:
        return KeyRef("broker", broker_id=_broker_id(int(rest[0])))
    if head == "broker_configs" and len(rest) == 1:
        return KeyRef("broker_config", broker_id=None if rest[0] == DEFAULT_CONFIGS else _broker_id(int(rest[0])))
    if head == "group_configs" and len(rest) == 1:
        return KeyRef("group_config", group=bytes.fromhex(rest[0]).decode("utf-8"))
    if head == "acls" and len(rest) == 1:
        return KeyRef("acl", acl=bytes.fromhex(rest[0]).decode("utf-8"))
    if head == "client_quotas" and len(rest) == 1:
        return KeyRef("client_quota", quota=bytes.fromhex(rest[0]).decode("utf-8"))
    if head == "scram_credentials" and len(rest) == 2:
        return KeyRef("scram_credential", user=bytes.fromhex(rest[0]).decode("utf-8"), mechanism=_mechanism(rest[1]))
    if head == "topics" and len(rest) == 1:
        return KeyRef("topic", topic=_topic(rest[0]))
    if head == "partitions" and len(rest) == 2:
        return KeyRef("partition", topic=_topic(rest[0]), partition=_non_negative(int(rest[1])))
    return None


def _broker_id(broker_id: int) -> int:
    if not 0 <= broker_id < 2**31:
        raise ValueError(f"invalid broker id {broker_id}")
    return broker_id


def _non_negative(value: int) -> int:
    if value < 0:
        raise ValueError(f"negative value {value}")
    return value


def _mechanism(name: str) -> str:
    if not _MECHANISM.match(name):
        raise ValueError(f"invalid SASL mechanism {name!r}")
    return name


def _topic(name: str) -> str:
    if not _TOPIC.match(name) or name in (".", ".."):
        raise ValueError(f"invalid topic name {name!r}")
    return name
