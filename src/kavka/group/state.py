"""The classic group state machine, as a table.

Each state, and what it does with each request and timer (Kafka's
``ClassicGroupState``; "record" means a GroupMetadata record is appended to
``__consumer_offsets`` and the change happens when it is replayed)::

  Empty  -- no members (a new group, every member gone, or offsets only)
    JoinGroup      new member: added (v4+ dynamic members first get
                   MEMBER_ID_REQUIRED), -> PreparingRebalance with the initial
                   delay (group.initial.rebalance.delay.ms); known id: UNKNOWN_MEMBER_ID
    SyncGroup, Heartbeat, LeaveGroup   UNKNOWN_MEMBER_ID
    OffsetCommit   generation -1 (assign() consumers): stored; else UNKNOWN_MEMBER_ID
    retention      offsets expire offsets.retention.minutes after the group
                   emptied; with no offsets left -> Dead (tombstone)

  PreparingRebalance -- waiting for every member to (re)join
    JoinGroup      member added or updated, request parked; the join completes
                   when all members and no pending ids are in, or at the deadline
    SyncGroup      REBALANCE_IN_PROGRESS
    Heartbeat      REBALANCE_IN_PROGRESS (the client rejoins)
    LeaveGroup     member removed; the join may complete
    OffsetCommit   stored for the current generation (revoking members commit)
    join deadline  max rebalance timeout: dynamic members that did not rejoin are
                   removed; generation+1 -> CompletingRebalance, or with no
                   members left a record -> Empty
    session expiry member removed (parked members are exempt: they wait on us)

  CompletingRebalance -- joined; waiting for the leader's assignment
    JoinGroup      unchanged metadata: the current generation's answer again;
                   changed: -> PreparingRebalance
    SyncGroup      parked; the leader's assignment is a record -> Stable, and
                   every parked SyncGroup gets its member's assignment
    Heartbeat      NONE
    LeaveGroup     member removed -> PreparingRebalance
    OffsetCommit   REBALANCE_IN_PROGRESS
    sync deadline  members that did not sync by the rebalance timeout are
                   removed -> PreparingRebalance

  Stable -- every member has its assignment
    JoinGroup      follower with unchanged metadata: current generation's answer;
                   the leader or changed metadata: -> PreparingRebalance; a known
                   group.instance.id with a new member id replaces the old id
                   (record) and rebalances only if the selected protocol changes
    SyncGroup      the member's assignment
    Heartbeat      NONE
    LeaveGroup, session expiry   member removed -> PreparingRebalance
    OffsetCommit   stored for the current generation

  Dead -- deleted or expired; the object is about to be dropped
    everything     COORDINATOR_NOT_AVAILABLE (the client looks the group up again)

Requests with a wrong group.instance.id/member id pair get FENCED_INSTANCE_ID,
unknown member ids UNKNOWN_MEMBER_ID, other generations ILLEGAL_GENERATION.
"""

from __future__ import annotations

from enum import Enum

from kavka.protocol.errors import ErrorCode


class GroupState(Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


EMPTY = GroupState.EMPTY
PREPARING = GroupState.PREPARING_REBALANCE
COMPLETING = GroupState.COMPLETING_REBALANCE
STABLE = GroupState.STABLE
DEAD = GroupState.DEAD

# Which states each state may be entered from (Kafka's validPreviousStates).
# Stable -> Stable is a replayed record that renames a static member.
VALID_PREVIOUS: dict[GroupState, frozenset[GroupState]] = {
    EMPTY: frozenset({PREPARING, EMPTY}),
    PREPARING: frozenset({EMPTY, COMPLETING, STABLE}),
    COMPLETING: frozenset({PREPARING}),
    STABLE: frozenset({COMPLETING, STABLE}),
    DEAD: frozenset({EMPTY, PREPARING, COMPLETING, STABLE, DEAD}),
}

NONE = ErrorCode.none
PARK, ANSWER = "park", "answer"
CURRENT_OR_REBALANCE, WAIT = "current-or-rebalance", "wait"

# The table's columns that are plain lookups, used by the code.
HEARTBEAT: dict[GroupState, ErrorCode] = {
    EMPTY: ErrorCode.unknown_member_id,
    PREPARING: ErrorCode.rebalance_in_progress,
    COMPLETING: NONE,
    STABLE: NONE,
    DEAD: ErrorCode.coordinator_not_available,
}

SYNC: dict[GroupState, ErrorCode | str] = {
    EMPTY: ErrorCode.unknown_member_id,
    PREPARING: ErrorCode.rebalance_in_progress,
    COMPLETING: PARK,
    STABLE: ANSWER,
    DEAD: ErrorCode.coordinator_not_available,
}

JOIN_KNOWN_MEMBER: dict[GroupState, ErrorCode | str] = {
    EMPTY: ErrorCode.unknown_member_id,
    PREPARING: WAIT,
    COMPLETING: CURRENT_OR_REBALANCE,
    STABLE: CURRENT_OR_REBALANCE,
    DEAD: ErrorCode.coordinator_not_available,
}

# OffsetCommit by a member of the current generation.
MEMBER_COMMIT: dict[GroupState, ErrorCode] = {
    EMPTY: ErrorCode.unknown_member_id,
    PREPARING: NONE,
    COMPLETING: ErrorCode.rebalance_in_progress,
    STABLE: NONE,
    DEAD: ErrorCode.coordinator_not_available,
}


class IllegalTransition(RuntimeError):
    """A bug: the code tried a transition the table does not allow."""


def check_transition(current: GroupState, new: GroupState) -> None:
    if current not in VALID_PREVIOUS[new]:
        raise IllegalTransition(f"group cannot go from {current.value} to {new.value}")
