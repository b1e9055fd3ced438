"""What a coordinator operation returns: records to append, then answers to send.

The state machine never answers a parked request itself.  It names it by the
token it handed out when parking (:class:`Parked`) and lists ``(token, reply)``
pairs; the asyncio runner resolves the matching futures.  Replies are only
sent after the operation's records are appended and replayed, so a client never
hears of a change that a crash could still undo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kavka.protocol.errors import ErrorCode


@dataclass(frozen=True, slots=True)
class JoinedMember:
    member_id: str
    instance_id: str | None
    metadata: bytes


@dataclass(frozen=True, slots=True)
class JoinReply:
    error: ErrorCode
    member_id: str = ""
    generation: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader: str = ""
    skip_assignment: bool = False
    members: tuple[JoinedMember, ...] = ()


@dataclass(frozen=True, slots=True)
class SyncReply:
    error: ErrorCode
    assignment: bytes = b""
    protocol_type: str | None = None
    protocol_name: str | None = None


@dataclass(frozen=True, slots=True)
class HeartbeatReply:
    """ConsumerGroupHeartbeat's answer (KIP-848)."""
    error: ErrorCode
    message: str | None = None
    member_id: str | None = None
    member_epoch: int = 0
    heartbeat_interval_ms: int = 0
    assignment: dict | None = None   # topic -> partitions; None: unchanged, not sent


@dataclass(frozen=True, slots=True)
class Parked:
    """The request waits; ``token`` names it in a later Outcome's ``replies``."""
    token: int


@dataclass(slots=True)
class Outcome:
    reply: Any = None
    records: list = field(default_factory=list)   # (Key, Value) pairs, appended in order
    replies: list = field(default_factory=list)   # (token, reply) for parked requests
    written: list = field(default_factory=list)   # (journal partition, end offset) of appends

    def merge(self, other: "Outcome") -> "Outcome":
        self.records += other.records
        self.replies += other.replies
        self.written += other.written
        return self


def error_reply(reply: Any, error: ErrorCode) -> Any:
    """The same kind of reply carrying only ``error`` (for parked requests that fail, and
    for answers whose records could not be replicated)."""
    if isinstance(reply, dict):   # OffsetCommit, DeleteGroups: an error per key
        return {key: error for key in reply}
    if isinstance(reply, tuple) and len(reply) == 2 and isinstance(reply[0], ErrorCode):
        return (error, type(reply[1])())   # LeaveGroup, OffsetDelete: (error, details)
    if isinstance(reply, JoinReply):
        return JoinReply(error, reply.member_id)
    if isinstance(reply, SyncReply):
        return SyncReply(error)
    if isinstance(reply, HeartbeatReply):
        return HeartbeatReply(error)
    return error
