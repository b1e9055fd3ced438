"""SyncGroup, Heartbeat and LeaveGroup of the classic protocol, by the state table."""

from __future__ import annotations

from dataclasses import dataclass

from kavka.group.env import Env
from kavka.group.model import Group, Member
from kavka.group.outcome import Outcome, Parked, SyncReply
from kavka.group.rebalance import complete_sync, remove_member, remove_pending
from kavka.group.state import ANSWER, DEAD, HEARTBEAT, NONE, PARK, SYNC
from kavka.protocol.errors import ErrorCode


@dataclass(frozen=True, slots=True)
class SyncRequest:
    group_id: str
    generation: int
    member_id: str
    instance_id: str | None
    protocol_type: str | None
    protocol_name: str | None
    assignments: dict[str, bytes]


def check_member(group: Group | None, member_id: str, instance_id: str | None,
                 generation: int) -> ErrorCode | Member:
    """The checks every member request starts with, in Kafka's order."""
    if group is None:
        return ErrorCode.unknown_member_id
    if group.state == DEAD:
        return ErrorCode.coordinator_not_available
    if group.is_fenced(instance_id, member_id):
        return ErrorCode.fenced_instance_id
    member = group.members.get(member_id)
    if member is None:
        return ErrorCode.unknown_member_id
    if generation != group.generation:
        return ErrorCode.illegal_generation
    return member


def sync(group: Group | None, request: SyncRequest, env: Env) -> Outcome:
    member = check_member(group, request.member_id, request.instance_id, request.generation)
    if isinstance(member, ErrorCode):
        return Outcome(SyncReply(member))
    if request.protocol_type is not None and request.protocol_type != group.protocol_type:
        return Outcome(SyncReply(ErrorCode.inconsistent_group_protocol))
    if request.protocol_name is not None and request.protocol_name != group.protocol_name:
        return Outcome(SyncReply(ErrorCode.inconsistent_group_protocol))
    action = SYNC[group.state]
    if isinstance(action, ErrorCode):
        return Outcome(SyncReply(action))
    group.pending_sync.discard(member.member_id)
    if action == ANSWER:
        member.deadline = env.now + member.session_timeout_ms
        return Outcome(SyncReply(NONE, member.assignment, group.protocol_type, group.protocol_name))
    assert action == PARK
    out = Outcome()
    if member.sync_token is not None:
        out.replies.append((member.sync_token, SyncReply(ErrorCode.rebalance_in_progress)))
    member.sync_token = env.next_token()
    out.reply = Parked(member.sync_token)
    if member.member_id == group.leader_id:
        out.merge(complete_sync(group, request.assignments, env))
    return out


def heartbeat(group: Group | None, member_id: str, instance_id: str | None, generation: int,
              env: Env) -> Outcome:
    member = check_member(group, member_id, instance_id, generation)
    if isinstance(member, ErrorCode):
        return Outcome(member)
    member.deadline = env.now + member.session_timeout_ms
    return Outcome(HEARTBEAT[group.state])


def leave(group: Group | None, members: list[tuple[str, str | None]], env: Env) -> Outcome:
    """LeaveGroup of several members (v3+); reply: (group error, [error per member])."""
    if group is None:
        return Outcome((NONE, [ErrorCode.unknown_member_id] * len(members)))
    if group.state == DEAD:
        return Outcome((ErrorCode.coordinator_not_available, []))
    out = Outcome()
    errors = []
    for member_id, instance_id in members:
        error, step = _leave_one(group, member_id, instance_id, env)
        errors.append(error)
        out.merge(step)
    out.reply = (NONE, errors)
    return out


def _leave_one(group: Group, member_id: str, instance_id: str | None, env: Env) -> tuple[ErrorCode, Outcome]:
    if instance_id is not None:
        # By instance id (also from admin clients, who do not know the member id).
        known = group.static_members.get(instance_id)
        if known is None:
            return ErrorCode.unknown_member_id, Outcome()
        if member_id and member_id != known:
            return ErrorCode.fenced_instance_id, Outcome()
        return NONE, remove_member(group, known, env)
    if member_id in group.pending:
        return NONE, remove_pending(group, member_id, env)
    if member_id in group.members:
        return NONE, remove_member(group, member_id, env)
    return ErrorCode.unknown_member_id, Outcome()
