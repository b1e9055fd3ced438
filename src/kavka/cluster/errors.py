"""Domain exceptions of the cluster layer; the api layer will map them to Kafka error codes."""

from __future__ import annotations

from typing import Any


class ClusterError(Exception):
    """Base class of everything the cluster layer raises on purpose."""


class EtcdUnavailable(ClusterError):
    """etcd did not answer in time (down, paused, or cut off from us)."""


class BrokerIdInUse(ClusterError):
    """Another live registration holds this broker id."""

    def __init__(self, broker_id: int, holder: Any = None) -> None:
        self.broker_id = broker_id
        self.holder = holder
        super().__init__(f"broker id {broker_id} is registered by a live broker ({holder})")


class SessionLost(ClusterError):
    """This broker's lease is gone (or may be): it is no longer registered."""


class StaleControllerEpoch(ClusterError):
    """A write guarded by a controller epoch found a newer epoch: the writer is not controller."""

    def __init__(self, expected: int, current: int) -> None:
        self.expected = expected
        self.current = current
        super().__init__(f"controller epoch {expected} is stale (current {current})")


class ControllerFenced(ClusterError):
    """The writer's controller registration is gone (its lease expired or was revoked)."""


class NotLeader(ClusterError):
    """An ISR change came from a broker that is not the partition's leader (any more)."""


class ConcurrentUpdate(ClusterError):
    """The key changed since the writer read it (mod revision mismatch); re-read and retry.

    ``current`` is the key's current ``Versioned`` value, or None if it does not exist.
    """

    def __init__(self, key: bytes, expected_revision: int, current: Any) -> None:
        self.key = key
        self.expected_revision = expected_revision
        self.current = current
        got = None if current is None else current.mod_revision
        super().__init__(f"{key.decode()} was modified: expected mod revision "
                         f"{expected_revision}, found {got}")
