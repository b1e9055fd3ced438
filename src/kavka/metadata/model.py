"""The values the metadata boundary hands to the API layer (plain, immutable data)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Mapping

from kavka.config import TopicConfig
from kavka.error_codes import error_code_for, error_message
from kavka.protocol.errors import ErrorCode

NO_LEADER = -1
NO_REASSIGNMENT_MESSAGE = "No partition reassignment is in progress."   # Kafka's NO_REASSIGNMENT_IN_PROGRESS


@dataclass(frozen=True, slots=True)
class BrokerEndpoint:
    """A live broker as clients reach it: ``host``/``port`` of its inter-broker listener, and
    ``listeners`` (name, host, port) for each of its listeners (advertised.listeners)."""
    broker_id: int
    host: str
    port: int
    rack: str | None = None
    listeners: tuple[tuple[str, str, int], ...] = ()

    def on(self, listener: str) -> tuple[str, int]:
        """(host, port) of this broker on ``listener``, the listener a client came through;
        the registered address when the broker has no such listener."""
        for name, host, port in self.listeners:
            if name == listener:
                return host, port
        return self.host, self.port


@dataclass(frozen=True, slots=True)
class PartitionState:
    """One partition as Metadata describes it; ``leader`` is NO_LEADER while none is known."""
    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    offline: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class TopicDescription:
    """A topic of the cluster, with its configs resolved against this broker's defaults."""
    name: str
    topic_id: uuid.UUID
    partitions: int
    replication_factor: int
    config: TopicConfig
    overrides: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reassignment:
    """A partition reassignment in progress (KIP-455): the replicas while it runs (the
    target, then those being removed), and the replicas being added and removed."""
    replicas: tuple[int, ...]
    adding: tuple[int, ...]
    removing: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class QuorumVoter:
    """A voter of the controller quorum, and the address it answers at (for DescribeQuorum)."""
    voter_id: int
    log_end_offset: int
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class QuorumState:
    """The controller quorum as DescribeQuorum reports it (kavka.api.describe_quorum maps etcd onto it)."""
    leader_id: int
    leader_epoch: int
    high_watermark: int
    voters: tuple[QuorumVoter, ...]


@dataclass(frozen=True, slots=True)
class NewTopic:
    """A topic to create, already checked by the API layer (name, configs, layout).
    ``assignments``: {partition: replica broker ids} when the client chose them."""
    name: str
    partitions: int
    replication_factor: int
    overrides: Mapping[str, str]
    assignments: Mapping[int, tuple[int, ...]] | None = None


@dataclass(frozen=True, slots=True)
class AdminResult:
    """The outcome of a topic change, as Kafka reports it (error code and message)."""
    error: ErrorCode = ErrorCode.none
    message: str | None = None
    topic_id: uuid.UUID | None = None   # of a created topic

    @property
    def ok(self) -> bool:
        return self.error == ErrorCode.none

    @classmethod
    def refusal(cls, exc: BaseException) -> "AdminResult":
        """A check's exception (kavka.log.errors) as Kafka's code and message."""
        return cls(error_code_for(exc), error_message(exc))


OK = AdminResult()


class ElectionType(IntEnum):
    """What an ElectLeaders request asks for (KIP-460)."""
    PREFERRED = 0   # the first replica of the assignment, if it is live and in the ISR
    UNCLEAN = 1     # any live replica, even outside the ISR, but only while no replica leads


_ELECTION_MESSAGES = {
    ErrorCode.election_not_needed: "{tp} already has the leader this election would give it.",
    ErrorCode.preferred_leader_not_available: "The preferred replica of {tp} is not live or not in its ISR.",
    ErrorCode.eligible_leaders_not_available: "No live replica of {tp} can lead it.",
    ErrorCode.unknown_topic_or_partition: "The partition {tp} does not exist.",
}


def election_result(code: ErrorCode, topic: str, index: int) -> AdminResult:
    """The answer of one partition's election, with its message."""
    if code == ErrorCode.none:
        return OK
    return AdminResult(code, _ELECTION_MESSAGES[code].format(tp=f"{topic}-{index}"))
