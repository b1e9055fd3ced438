"""JoinGroup: new members, known members, and static members coming back.

The group is looked up (or created empty) and the request validated for the
group id, session timeout and coordinator by the caller; this module decides
by the state table (kavka.group.state) what the join does.
"""

from __future__ import annotations

from dataclasses import dataclass

from kavka.group.env import Env
from kavka.group.model import NEW_MEMBER_JOIN_TIMEOUT_MS, Group, Member
from kavka.group.outcome import JoinReply, Outcome, Parked, SyncReply
from kavka.group.rebalance import (
    current_join_reply, group_record, maybe_complete_join, maybe_prepare_rebalance, prepare_rebalance,
)
from kavka.group.state import (
    COMPLETING, CURRENT_OR_REBALANCE, DEAD, JOIN_KNOWN_MEMBER, NONE, PREPARING, STABLE, WAIT,
)
from kavka.protocol.errors import ErrorCode


@dataclass(frozen=True, slots=True)
class JoinRequest:
    group_id: str
    member_id: str
    instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]
    require_known_member_id: bool = True    # JoinGroup v4+: MEMBER_ID_REQUIRED first
    supports_skip_assignment: bool = True   # JoinGroup v9+ (KIP-814)


def _error(request: JoinRequest, error: ErrorCode, member_id: str | None = None) -> Outcome:
    return Outcome(JoinReply(error, request.member_id if member_id is None else member_id))


def join(group: Group, request: JoinRequest, env: Env) -> Outcome:
    if group.state == DEAD:
        return _error(request, ErrorCode.coordinator_not_available)
    if not request.member_id:
        return _join_unknown(group, request, env)
    return _join_known(group, request, env)


def _accepts_new_member(group: Group, max_size: int) -> bool:
    """Kafka's acceptJoiningMember for a member not yet in the group."""
    if group.state == PREPARING:
        return group.num_awaiting_join() < max_size
    return len(group.members) < max_size


def _join_unknown(group: Group, request: JoinRequest, env: Env) -> Outcome:
    replaced = group.static_members.get(request.instance_id) if request.instance_id is not None else None
    if not group.supports(request.protocol_type, list(request.protocols), exclude=replaced):
        return _error(request, ErrorCode.inconsistent_group_protocol)
    if replaced is not None:
        return _rejoin_static(group, request, env)
    if not _accepts_new_member(group, env.config.max_size):
        return _error(request, ErrorCode.group_max_size_reached)
    member_id = f"{request.instance_id or request.client_id}-{env.new_uuid()}"
    if request.require_known_member_id and request.instance_id is None:
        # KIP-394: hand out the id first, so a client that times out and retries
        # rejoins as the same member instead of leaving a ghost behind.
        group.pending[member_id] = env.now + request.session_timeout_ms
        return _error(request, ErrorCode.member_id_required, member_id)
    return _add_member(group, request, member_id, env)


def _add_member(group: Group, request: JoinRequest, member_id: str, env: Env) -> Outcome:
    member = Member(member_id, request.instance_id, request.client_id, request.client_host,
                    request.session_timeout_ms, request.rebalance_timeout_ms, request.protocols,
                    join_token=env.next_token(), is_new=True, deadline=env.now + NEW_MEMBER_JOIN_TIMEOUT_MS)
    if group.initial_delay is not None and group.generation == 0:
        group.initial_delay.new_member_added = True
    group.add(member, request.protocol_type)
    return Outcome(Parked(member.join_token)).merge(maybe_prepare_rebalance(group, env))


def _join_known(group: Group, request: JoinRequest, env: Env) -> Outcome:
    member_id = request.member_id
    if group.is_fenced(request.instance_id, member_id):
        return _error(request, ErrorCode.fenced_instance_id)
    if member_id in group.pending:
        if not group.supports(request.protocol_type, list(request.protocols)):
            return _error(request, ErrorCode.inconsistent_group_protocol)
        if not _accepts_new_member(group, env.config.max_size):
            del group.pending[member_id]
            return _error(request, ErrorCode.group_max_size_reached)
        return _add_member(group, request, member_id, env)
    member = group.members.get(member_id)
    if member is None:
        return _error(request, ErrorCode.unknown_member_id)
    if not group.supports(request.protocol_type, list(request.protocols), exclude=member_id):
        return _error(request, ErrorCode.inconsistent_group_protocol)
    action = JOIN_KNOWN_MEMBER[group.state]
    if isinstance(action, ErrorCode):
        return _error(request, action)
    if action == WAIT:
        return _park(member, request, env).merge(maybe_complete_join(group, env))
    assert action == CURRENT_OR_REBALANCE
    unchanged = member.protocols == request.protocols
    if unchanged and not (group.state == STABLE and member_id == group.leader_id):
        # A follower that missed its JoinGroup answer: resend this generation's.
        member.deadline = env.now + member.session_timeout_ms
        return Outcome(current_join_reply(group, member_id))
    return _park(member, request, env).merge(prepare_rebalance(group, env))


def _park(member: Member, request: JoinRequest, env: Env) -> Outcome:
    """Update the member from its request and park the request until the join completes."""
    out = Outcome()
    if member.join_token is not None:
        # Superseded by this retry (the earlier connection is most likely gone).
        out.replies.append((member.join_token, JoinReply(ErrorCode.rebalance_in_progress, member.member_id)))
    member.protocols = request.protocols
    member.session_timeout_ms = request.session_timeout_ms
    member.rebalance_timeout_ms = request.rebalance_timeout_ms
    member.join_token = env.next_token()
    out.reply = Parked(member.join_token)
    return out


def _rejoin_static(group: Group, request: JoinRequest, env: Env) -> Outcome:
    """A known group.instance.id with no member id: a restarted static member (KIP-345).

    It takes over under a new member id; a duplicate instance still using the old
    id is fenced from now on.  In Stable the group does not rebalance unless the
    selected protocol would change, so the restart keeps every assignment.
    """
    out = Outcome(replies=_fence_parked(group.members[group.static_members[request.instance_id]]))
    previous_leader = group.leader_id
    member, old_id = group.replace_static(request.instance_id, f"{request.instance_id}-{env.new_uuid()}")
    was_leader = previous_leader == old_id
    member.client_id, member.client_host = request.client_id, request.client_host
    if group.state == STABLE:
        kept = _replace_in_stable(group, member, request, env, previous_leader, was_leader)
        if kept is not None:
            out.reply = kept.reply
            return out.merge(kept)
    out.merge(_park(member, request, env))
    out.reply = Parked(member.join_token)
    if group.state in (STABLE, COMPLETING):
        # In CompletingRebalance the leader may be assigning to the old id: start over.
        return out.merge(prepare_rebalance(group, env))
    return out.merge(maybe_complete_join(group, env))


def _fence_parked(old: Member) -> list:
    """The replaced instance's own parked requests, if any, learn they were fenced."""
    replies = []
    if old.join_token is not None:
        replies.append((old.join_token, JoinReply(ErrorCode.fenced_instance_id, old.member_id)))
    if old.sync_token is not None:
        replies.append((old.sync_token, SyncReply(ErrorCode.fenced_instance_id)))
    old.join_token = old.sync_token = None
    return replies


def _replace_in_stable(group: Group, member: Member, request: JoinRequest, env: Env,
                       previous_leader: str | None, was_leader: bool) -> Outcome | None:
    old_protocols = member.protocols
    member.protocols = request.protocols
    if group.select_protocol() != group.protocol_name:
        member.protocols = old_protocols
        return None
    member.session_timeout_ms = request.session_timeout_ms
    member.rebalance_timeout_ms = request.rebalance_timeout_ms
    member.deadline = env.now + member.session_timeout_ms
    # A leader that cannot be told to skip the assignment (JoinGroup < v9) is sent the
    # old leader id, so it acts as a follower: a Stable group would not pass on a new plan.
    skip = was_leader and request.supports_skip_assignment
    reply = JoinReply(NONE, member.member_id, group.generation, group.protocol_type, group.protocol_name,
                      group.leader_id if skip else (previous_leader or ""), skip,
                      group.joined_metadata() if skip else ())
    return Outcome(reply, records=[group_record(group, env)])

