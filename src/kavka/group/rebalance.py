"""Rebalance steps shared by every request and timer: prepare, complete the join,
complete the sync, remove a member.

Each returns an :class:`Outcome`; durable steps (the leader's assignment, a
group that became empty) only *produce* their GroupMetadata record here, and
``Coordinator.replay`` applies it, exactly as when the record is loaded at
startup.
"""

from __future__ import annotations

import logging

from kavka.group.env import Env
from kavka.group.log_format import GroupKey, GroupValue, MemberValue
from kavka.group.model import Group, InitialDelay
from kavka.group.outcome import JoinReply, Outcome, SyncReply
from kavka.group.state import COMPLETING, EMPTY, NONE, PREPARING, STABLE
from kavka.protocol.errors import ErrorCode

log = logging.getLogger("kavka.group")


def group_record(group: Group, env: Env, assignments: dict[str, bytes] | None = None) -> tuple:
    """The GroupMetadata record of ``group`` as it stands, or with the leader's ``assignments``."""
    def assignment(member) -> bytes:
        return member.assignment if assignments is None else assignments.get(member.member_id, b"")

    members = tuple(
        MemberValue(m.member_id, m.instance_id, m.client_id, m.client_host, m.rebalance_timeout_ms,
                    m.session_timeout_ms, m.metadata(group.protocol_name), assignment(m))
        for m in group.members.values())
    value = GroupValue(group.protocol_type or "", group.generation, group.protocol_name, group.leader_id,
                       env.wall, members)
    return GroupKey(group.group_id), value


def empty_group_record(group: Group, env: Env) -> tuple:
    """The next generation of a group nobody rejoined: Empty, no protocol, no leader."""
    value = GroupValue(group.protocol_type or "", group.generation + 1, None, None, env.wall, ())
    return GroupKey(group.group_id), value


def maybe_prepare_rebalance(group: Group, env: Env) -> Outcome:
    if group.is_in(STABLE, COMPLETING, EMPTY):
        return prepare_rebalance(group, env)
    return maybe_complete_join(group, env)


def prepare_rebalance(group: Group, env: Env) -> Outcome:
    out = Outcome()
    if group.state == COMPLETING:
        # This generation's assignment will never be sent: release parked SyncGroups.
        for member in group.members.values():
            member.assignment = b""
            if member.sync_token is not None:
                out.replies.append((member.sync_token, SyncReply(ErrorCode.rebalance_in_progress)))
                member.sync_token = None
    group.pending_sync.clear()
    group.sync_deadline = None
    timeout = group.max_rebalance_timeout()
    delay = env.config.initial_rebalance_delay_ms
    if group.state == EMPTY and delay > 0:
        group.initial_delay = InitialDelay(delay, max(timeout - delay, 0))
        group.join_deadline = env.now + min(delay, timeout)
    else:
        group.initial_delay = None
        group.join_deadline = env.now + timeout
    log.info("group %s: preparing a rebalance from %s (generation %d, %d members)", group.group_id,
             group.state.value, group.generation, len(group.members))
    group.transition(PREPARING, env.wall)
    return out.merge(maybe_complete_join(group, env))


def maybe_complete_join(group: Group, env: Env) -> Outcome:
    """Complete as soon as everyone is in, except during a new group's initial delay."""
    if group.state == PREPARING and group.initial_delay is None and group.all_joined():
        return complete_join(group, env)
    return Outcome()


def on_join_deadline(group: Group, env: Env) -> Outcome:
    delay = group.initial_delay
    if delay is not None and delay.new_member_added and delay.remaining_ms > 0:
        step = min(delay.delay_ms, delay.remaining_ms)
        delay.remaining_ms -= step
        delay.new_member_added = False
        group.join_deadline = env.now + step
        return Outcome()
    return complete_join(group, env)


def complete_join(group: Group, env: Env) -> Outcome:
    """End the join phase: drop dynamic members that did not rejoin, start a generation."""
    out = Outcome()
    group.initial_delay = None
    group.join_deadline = None
    for member in [m for m in group.members.values() if m.join_token is None and m.instance_id is None]:
        group.remove(member.member_id)
    joined = [m for m in group.members.values() if m.join_token is not None]
    if group.members and not joined:
        # Only static members that have not rejoined are left: give their sessions time to expire.
        group.join_deadline = env.now + group.max_rebalance_timeout()
        return out
    if not group.members:
        out.records.append(empty_group_record(group, env))
        return out
    if group.leader_id not in {m.member_id for m in joined}:
        group.leader_id = joined[0].member_id
    return out.merge(_start_generation(group, env))


def _start_generation(group: Group, env: Env) -> Outcome:
    out = Outcome()
    group.generation += 1
    group.protocol_name = group.select_protocol()
    group.transition(COMPLETING, env.wall)
    for member in group.members.values():
        if member.join_token is not None:
            out.replies.append((member.join_token, current_join_reply(group, member.member_id)))
            member.join_token = None
        member.is_new = False
        member.deadline = env.now + member.session_timeout_ms
    group.pending_sync = set(group.members)
    group.sync_deadline = env.now + group.max_rebalance_timeout()
    log.info("group %s: generation %d with %d members, leader %s, protocol %s", group.group_id,
             group.generation, len(group.members), group.leader_id, group.protocol_name)
    return out


def current_join_reply(group: Group, member_id: str) -> JoinReply:
    """This generation's JoinGroup answer; only the leader gets the member list."""
    leader = member_id == group.leader_id
    return JoinReply(NONE, member_id, group.generation, group.protocol_type, group.protocol_name,
                     group.leader_id or "", False, group.joined_metadata() if leader else ())


def complete_sync(group: Group, assignments: dict[str, bytes], env: Env) -> Outcome:
    """The leader's assignment: one record; members without one get empty bytes."""
    out = Outcome(records=[group_record(group, env, assignments)])
    for member in group.members.values():
        if member.sync_token is not None:
            reply = SyncReply(NONE, assignments.get(member.member_id, b""), group.protocol_type,
                              group.protocol_name)
            out.replies.append((member.sync_token, reply))
            member.sync_token = None
            member.deadline = env.now + member.session_timeout_ms
    return out


def remove_member(group: Group, member_id: str, env: Env, reason: str = "left") -> Outcome:
    """Leave, session expiry or a missed sync: the group rebalances without the member."""
    member = group.remove(member_id)
    error = ErrorCode.unknown_member_id
    log.info("group %s: member %s removed (%s) in %s", group.group_id, member_id, reason, group.state.value)
    out = Outcome()
    if member.join_token is not None:
        out.replies.append((member.join_token, JoinReply(error, member_id)))
    if member.sync_token is not None:
        out.replies.append((member.sync_token, SyncReply(error)))
    return out.merge(maybe_prepare_rebalance(group, env))


def remove_pending(group: Group, member_id: str, env: Env) -> Outcome:
    del group.pending[member_id]
    return maybe_complete_join(group, env)


def expire(group: Group, env: Env) -> Outcome:
    """Everything of this group that is due at ``env.now``."""
    out = Outcome()
    for member_id in [mid for mid, at in group.pending.items() if at <= env.now]:
        if member_id in group.pending:
            out.merge(remove_pending(group, member_id, env))
    for member in [m for m in group.members.values() if m.session_expired(env.now)]:
        if group.members.get(member.member_id) is member:  # an earlier step may have dropped it
            out.merge(remove_member(group, member.member_id, env, "session expired"))
    if group.state == PREPARING and group.join_deadline is not None and group.join_deadline <= env.now:
        out.merge(on_join_deadline(group, env))
    if (group.pending_sync and group.sync_deadline is not None and group.sync_deadline <= env.now
            and group.is_in(COMPLETING, STABLE)):
        for member_id in sorted(group.pending_sync):
            if member_id in group.members:
                out.merge(remove_member(group, member_id, env, "no SyncGroup in time"))
    return out
