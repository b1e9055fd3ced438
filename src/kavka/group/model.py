"""A classic group and its members: the data the state machine works on.

Durable fields (generation, protocol, leader, members with their selected
metadata and assignment, state timestamp) are exactly what a GroupMetadata
record holds; :meth:`Group.durable_view` returns them so a test can compare a
live group with one rebuilt from ``__consumer_offsets``.  Everything else
(parked requests, deadlines, pending member ids, the full protocol lists) lives
only in memory: after a restart members rejoin anyway, as with Kafka.

Times: ``deadline`` fields are monotonic milliseconds (timeouts);
``state_timestamp`` is wall-clock milliseconds (persisted, used for offset
retention).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from kavka.group.consumer_protocol import subscribed_topics
from kavka.group.outcome import JoinedMember
from kavka.group.state import EMPTY, GroupState, check_transition

# A new member whose JoinGroup is parked cannot heartbeat and its disconnect is
# invisible, so it is dropped after this long (Kafka's NewMemberJoinTimeoutMs).
NEW_MEMBER_JOIN_TIMEOUT_MS = 300_000


@dataclass(eq=False, slots=True)
class Member:
    member_id: str
    instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocols: tuple[tuple[str, bytes], ...]
    assignment: bytes = b""
    join_token: int | None = None
    sync_token: int | None = None
    is_new: bool = False
    deadline: int = 0

    def protocol_names(self) -> list[str]:
        return [name for name, _ in self.protocols]

    def metadata(self, protocol: str | None) -> bytes:
        for name, data in self.protocols:
            if name == protocol:
                return data
        return b""

    def vote(self, candidates: set[str]) -> str:
        """This member's most preferred protocol among those every member supports."""
        return next(name for name, _ in self.protocols if name in candidates)

    def session_expired(self, now: int) -> bool:
        """Members parked on a request wait on us, so only their own timeouts count:
        none for known members, the new-member join timeout for new ones."""
        if self.sync_token is not None or (self.join_token is not None and not self.is_new):
            return False
        return now >= self.deadline

    def pending_deadline(self) -> int | None:
        if self.sync_token is not None or (self.join_token is not None and not self.is_new):
            return None
        return self.deadline


@dataclass(slots=True)
class InitialDelay:
    """group.initial.rebalance.delay.ms of a new group: extended while members keep coming."""
    delay_ms: int
    remaining_ms: int
    new_member_added: bool = False


class Group:
    def __init__(self, group_id: str) -> None:
        self.group_id = group_id
        self.state = EMPTY
        # Wall ms of the last state change; None for a group that only holds offsets.
        self.state_timestamp: int | None = None
        self.generation = 0
        self.protocol_type: str | None = None
        self.protocol_name: str | None = None
        self.leader_id: str | None = None
        self.members: dict[str, Member] = {}       # insertion order = join order
        self.static_members: dict[str, str] = {}   # group.instance.id -> member id
        self.pending: dict[str, int] = {}          # ids sent with MEMBER_ID_REQUIRED -> expiry
        self.pending_sync: set[str] = set()        # joined this generation, not yet synced
        self.join_deadline: int | None = None
        self.sync_deadline: int | None = None
        self.initial_delay: InitialDelay | None = None

    def __repr__(self) -> str:
        return f"Group({self.group_id!r}, {self.state.value}, generation {self.generation}, {len(self.members)} members)"

    # -- state ---------------------------------------------------------------------------

    def transition(self, new: GroupState, now_wall: int) -> None:
        check_transition(self.state, new)
        self.state = new
        self.state_timestamp = now_wall

    def is_in(self, *states: GroupState) -> bool:
        return self.state in states

    # -- membership ----------------------------------------------------------------------

    def add(self, member: Member, protocol_type: str) -> None:
        if not self.members:
            self.protocol_type = protocol_type
        self.members[member.member_id] = member
        self.pending.pop(member.member_id, None)
        if member.instance_id is not None:
            self.static_members[member.instance_id] = member.member_id
        if self.leader_id is None:
            self.leader_id = member.member_id

    def remove(self, member_id: str) -> Member:
        member = self.members.pop(member_id)
        self.pending_sync.discard(member_id)
        if member.instance_id is not None and self.static_members.get(member.instance_id) == member_id:
            del self.static_members[member.instance_id]
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)
        return member

    def replace_static(self, instance_id: str, new_id: str) -> tuple[Member, str]:
        """Give a static member a new member id; returns (member, old id)."""
        old_id = self.static_members[instance_id]
        member = self.members.pop(old_id)
        member.member_id = new_id
        self.members[new_id] = member
        self.static_members[instance_id] = new_id
        if old_id in self.pending_sync:
            self.pending_sync.discard(old_id)
            self.pending_sync.add(new_id)
        if self.leader_id == old_id:
            self.leader_id = new_id
        return member, old_id

    def is_fenced(self, instance_id: str | None, member_id: str) -> bool:
        """A known group.instance.id that now belongs to another member id."""
        if instance_id is None or instance_id not in self.static_members:
            return False
        return self.static_members[instance_id] != member_id

    # -- protocols -----------------------------------------------------------------------

    def candidates(self, exclude: str | None = None) -> set[str]:
        """Protocols supported by every member (but ``exclude``)."""
        others = [m for mid, m in self.members.items() if mid != exclude]
        if not others:
            return set()
        counts = Counter(name for m in others for name in set(m.protocol_names()))
        return {name for name, n in counts.items() if n == len(others)}

    def supports(self, protocol_type: str, protocols: list[tuple[str, bytes]], exclude: str | None = None) -> bool:
        """Kafka's supportsProtocols: an empty group takes any non-empty type and protocol list;
        otherwise the type must match and one protocol must be common to all members."""
        if not [mid for mid in self.members if mid != exclude]:
            return bool(protocol_type) and bool(protocols)
        if protocol_type != self.protocol_type:
            return False
        common = self.candidates(exclude)
        return any(name in common for name, _ in protocols)

    def select_protocol(self) -> str:
        """The protocol with most first-choice votes among those all members support;
        ties go to the protocol the leader prefers (Kafka leaves ties to hash order)."""
        candidates = self.candidates()
        votes = Counter(m.vote(candidates) for m in self.members.values())
        leader = self.members.get(self.leader_id) or next(iter(self.members.values()))
        rank = {name: i for i, name in enumerate(leader.protocol_names())}
        return max(votes, key=lambda name: (votes[name], -rank.get(name, len(rank))))

    # -- rebalance bookkeeping -----------------------------------------------------------

    def num_awaiting_join(self) -> int:
        return sum(1 for m in self.members.values() if m.join_token is not None)

    def all_joined(self) -> bool:
        return not self.pending and self.num_awaiting_join() == len(self.members)

    def max_rebalance_timeout(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def joined_metadata(self) -> tuple[JoinedMember, ...]:
        return tuple(JoinedMember(m.member_id, m.instance_id, m.metadata(self.protocol_name))
                     for m in self.members.values())

    def subscribed_topics(self) -> set[str] | None:
        """Topics the members subscribe to (consumer protocol), or None if unknown."""
        if self.protocol_type != "consumer" or not self.members or self.protocol_name is None:
            return None
        topics: set[str] = set()
        for member in self.members.values():
            found = subscribed_topics(member.metadata(self.protocol_name))
            if found is None:
                return None
            topics |= found
        return topics

    def next_deadline(self) -> int | None:
        times = [t for t in (self.join_deadline, self.sync_deadline if self.pending_sync else None)
                 if t is not None]
        times += self.pending.values()
        times += [d for d in (m.pending_deadline() for m in self.members.values()) if d is not None]
        return min(times, default=None)

    def durable_view(self) -> dict:
        """What a GroupMetadata record (plus offsets) preserves of this group."""
        return {
            "state": self.state.value, "generation": self.generation, "protocol_type": self.protocol_type or "",
            "protocol": self.protocol_name, "leader": self.leader_id, "state_timestamp": self.state_timestamp,
            "members": [(m.member_id, m.instance_id, m.client_id, m.client_host, m.rebalance_timeout_ms,
                         m.session_timeout_ms, m.metadata(self.protocol_name), m.assignment)
                        for m in self.members.values()],
        }
