"""The values stored under the keys of ``keys.py``, and their JSON encoding (no I/O).

Each value is a small JSON object with a format version ``"v": 1``; decoders ignore fields
they do not know, so a newer broker may add fields without breaking an older one. Encoding is
deterministic (sorted keys, no spaces): equal values give equal bytes, which etcd's value
comparisons rely on.

``Versioned`` pairs a decoded value with etcd's bookkeeping of its key: ``mod_revision``
(the store revision of the last write: what compare-and-swap checks) and ``create_revision``
(the revision that created the key: for a leased broker registration it is the *broker
epoch*, unique per registration, as Kafka used the registration node's creation id).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from kavka.metadata.features import FinalizedFeatures

FORMAT_VERSION = 1
NO_LEADER = -1

T = TypeVar("T")


class DecodeError(ValueError):
    """A stored value is not what its key says it should be."""


def _dump(obj: dict[str, Any]) -> bytes:
    return json.dumps({"v": FORMAT_VERSION, **obj}, sort_keys=True, separators=(",", ":")).encode()


def _load(raw: bytes, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DecodeError(f"{what}: not JSON: {raw[:80]!r}") from exc
    if not isinstance(obj, dict):
        raise DecodeError(f"{what}: expected an object, got {raw[:80]!r}")
    return obj


def _ints(values: Any, what: str) -> tuple[int, ...]:
    if not isinstance(values, list) or not all(isinstance(v, int) for v in values):
        raise DecodeError(f"{what}: expected a list of integers, got {values!r}")
    return tuple(values)


@dataclass(frozen=True)
class BrokerInfo:
    """A live broker: what Metadata needs to route clients to it.  ``log_dir_offline``:
    its log directory failed (kavka.log.log_dir), so it may hold no leadership and no
    ISR membership (Kafka's heartbeat ``offlineLogDirs``); the key stays, so clients can
    still reach it for Metadata.  ``shutting_down``: a controlled shutdown (Kafka's
    ControlledShutdown): the same, while it still serves until its leaderships moved."""

    broker_id: int
    host: str
    port: int
    rack: str | None = None
    log_dir_offline: bool = False
    shutting_down: bool = False
    # (name, host, port) of every listener (advertised.listeners); host/port above are the
    # inter-broker listener's, which replication and forwarding use.
    listeners: tuple[tuple[str, str, int], ...] = ()

    @property
    def eligible(self) -> bool:
        """May lead, be in an ISR, get new replicas."""
        return not (self.log_dir_offline or self.shutting_down)

    def encode(self) -> bytes:
        fields = {"broker_id": self.broker_id, "host": self.host, "port": self.port, "rack": self.rack}
        if self.log_dir_offline:  # absent when false: an online broker's value is as before
            fields["log_dir_offline"] = True
        if self.shutting_down:
            fields["shutting_down"] = True
        if self.listeners:   # absent for a broker with one listener, as before
            fields["listeners"] = [{"name": n, "host": h, "port": p} for n, h, p in self.listeners]
        return _dump(fields)

    @classmethod
    def decode(cls, raw: bytes) -> BrokerInfo:
        o = _load(raw, "broker")
        try:
            listeners = tuple((str(x["name"]), str(x["host"]), int(x["port"])) for x in o.get("listeners", ()))
            return cls(int(o["broker_id"]), str(o["host"]), int(o["port"]), o.get("rack"),
                       bool(o.get("log_dir_offline", False)), bool(o.get("shutting_down", False)), listeners)
        except (KeyError, TypeError, ValueError) as exc:
            raise DecodeError(f"broker: {exc!r} in {raw[:80]!r}") from exc


@dataclass(frozen=True)
class ControllerInfo:
    """Who the controller is, and the controller epoch it won."""

    broker_id: int
    epoch: int

    def encode(self) -> bytes:
        return _dump({"broker_id": self.broker_id, "epoch": self.epoch})

    @classmethod
    def decode(cls, raw: bytes) -> ControllerInfo:
        o = _load(raw, "controller")
        try:
            return cls(int(o["broker_id"]), int(o["epoch"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise DecodeError(f"controller: {exc!r} in {raw[:80]!r}") from exc


def decode_features(raw: bytes) -> FinalizedFeatures:
    """The finalized feature levels (kavka.metadata.features encodes them)."""
    try:
        return FinalizedFeatures.decode(raw)
    except ValueError as exc:
        raise DecodeError(str(exc)) from exc


def encode_epoch(epoch: int) -> bytes:
    """The controller epoch is stored as bare decimal: compared byte for byte in txns."""
    return str(epoch).encode()


def decode_epoch(raw: bytes | None) -> int:
    """A missing epoch key means no controller was ever elected: epoch 0."""
    if raw is None:
        return 0
    try:
        return int(raw)
    except ValueError as exc:
        raise DecodeError(f"controller_epoch: {raw[:80]!r}") from exc


@dataclass(frozen=True)
class TopicAssignment:
    """A topic's id, per partition its replica list (the first is the preferred leader), and
    its config overrides (``config``, encoded only when there are some).

    A partition being reassigned (KIP-455) also has ``adding[p]`` and ``removing[p]``
    (each sorted, as Kafka's controller keeps them; encoded only when there are some, under
    ZooKeeper-era Kafka's names ``adding_replicas`` / ``removing_replicas``); its replica
    list is then the target followed by the replicas being removed."""

    name: str
    topic_id: str
    replicas: dict[int, tuple[int, ...]] = field(default_factory=dict)
    config: dict[str, str] = field(default_factory=dict)
    adding: dict[int, tuple[int, ...]] = field(default_factory=dict)
    removing: dict[int, tuple[int, ...]] = field(default_factory=dict)

    def reassigning(self, partition: int) -> bool:
        return bool(self.adding.get(partition) or self.removing.get(partition))

    def target(self, partition: int) -> tuple[int, ...]:
        """The replicas ``partition`` has once its reassignment (if any) completes."""
        removing = self.removing.get(partition, ())
        return tuple(r for r in self.replicas[partition] if r not in removing)

    def encode(self) -> bytes:
        parts = {str(p): list(r) for p, r in sorted(self.replicas.items())}
        extra: dict[str, Any] = {"config": dict(sorted(self.config.items()))} if self.config else {}
        for key, table in (("adding_replicas", self.adding), ("removing_replicas", self.removing)):
            if any(table.values()):
                extra[key] = {str(p): list(r) for p, r in sorted(table.items()) if r}
        return _dump({"name": self.name, "topic_id": self.topic_id, "partitions": parts, **extra})

    @classmethod
    def decode(cls, raw: bytes) -> TopicAssignment:
        o = _load(raw, "topic")
        try:
            parts = {int(p): _ints(r, "topic replicas") for p, r in o["partitions"].items()}
            config = {str(k): str(v) for k, v in (o.get("config") or {}).items()}
            adding, removing = ({int(p): _ints(r, key) for p, r in (o.get(key) or {}).items()}
                                for key in ("adding_replicas", "removing_replicas"))
            return cls(str(o["name"]), str(o["topic_id"]), parts, config, adding, removing)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise DecodeError(f"topic: {exc!r} in {raw[:80]!r}") from exc


@dataclass(frozen=True)
class BrokerConfigs:
    """One scope's dynamic broker settings (KIP-226), as the strings a client set."""

    values: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        return _dump({"configs": dict(sorted(self.values.items()))})

    @classmethod
    def decode(cls, raw: bytes) -> BrokerConfigs:
        o = _load(raw, "broker configs")
        try:
            return cls({str(k): str(v) for k, v in o["configs"].items()})
        except (KeyError, TypeError, AttributeError) as exc:
            raise DecodeError(f"broker configs: {exc!r} in {raw[:80]!r}") from exc


class GroupConfigs(BrokerConfigs):
    """One group's own configs (kavka.group_configs), as the strings a client set."""


@dataclass(frozen=True)
class PartitionState:
    """Leader, leader epoch and ISR of one partition, and the controller epoch that wrote it.

    Invariants kept by the writers: the leader is in the ISR (or is NO_LEADER); the leader
    epoch grows by one at every leader change and never goes down.
    """

    leader: int
    leader_epoch: int
    isr: tuple[int, ...]
    controller_epoch: int

    def encode(self) -> bytes:
        return _dump({"leader": self.leader, "leader_epoch": self.leader_epoch,
                      "isr": list(self.isr), "controller_epoch": self.controller_epoch})

    @classmethod
    def decode(cls, raw: bytes) -> PartitionState:
        o = _load(raw, "partition")
        try:
            return cls(int(o["leader"]), int(o["leader_epoch"]), _ints(o["isr"], "isr"),
                       int(o["controller_epoch"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise DecodeError(f"partition: {exc!r} in {raw[:80]!r}") from exc


@dataclass(frozen=True)
class Versioned(Generic[T]):
    """A decoded value with the etcd revisions of its key."""

    value: T
    mod_revision: int
    create_revision: int


@dataclass(frozen=True)
class ControllerClaim:
    """What a controller proves its writes with: its epoch and its ``controller`` key's
    create revision (unique per election, so it also fences a controller whose lease lapsed
    before any successor was elected)."""

    broker_id: int
    epoch: int
    create_revision: int
