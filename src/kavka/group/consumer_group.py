"""Groups of the consumer protocol (KIP-848): ConsumerGroupHeartbeat decided here.

Theory of operation
-------------------
The broker assigns partitions.  A group has a **group epoch**, bumped whenever
membership, a subscription or the partition count of a subscribed topic
changes; at each bump a server-side assignor (:mod:`kavka.group.assignors`)
computes the **target assignment** of every member, at assignment epoch =
group epoch.  Each member then moves from its current assignment to its
target on its own heartbeats (Kafka's CurrentAssignmentBuilder):

* member states: ``STABLE`` (owns its target at the current epoch),
  ``UNREVOKED`` (must first give up partitions no longer in its target: the
  heartbeat answer lists only what it may keep, and its epoch stays),
  ``UNRELEASED`` (at the new epoch, but some target partitions are still held
  by members that have not revoked them yet; it gets them once they are free).
* a partition has at most one owner at a time: it is handed to its new member
  only after the previous owner's heartbeat no longer reports it.
* a member that does not revoke within its rebalance timeout, or does not
  heartbeat within ``group.consumer.session.timeout.ms``, is removed (its
  partitions go back to the assignor at a new group epoch).

Member epoch rules (Kafka's): 0 joins (or rejoins, abandoning everything),
-1 leaves, -2 is a static member leaving for a restart (its assignment waits
for the same ``group.instance.id`` for a session timeout).  A greater epoch
than the coordinator's, or a smaller one other than the previous epoch with
owned partitions inside the assignment, is FENCED_MEMBER_EPOCH.

Like the classic coordinator, this module only *decides*: it returns an
:class:`~kavka.group.outcome.Outcome` with records (the group value with epoch
and target, one value per changed member, tombstones), and the coordinator
appends them to ``__consumer_offsets`` and replays them
(:meth:`ConsumerGroup.apply_group` / :meth:`ConsumerGroup.apply_member`),
which is also how state is rebuilt at startup.  Deadlines are in memory.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace
from typing import Mapping

from kavka.group.assignors import ASSIGNORS, DEFAULT
from kavka.group.env import Env
from kavka.group.log_format import (
    Assignment, ConsumerGroupKey, ConsumerGroupValue, ConsumerMemberKey, ConsumerMemberValue,
)
from kavka.group.outcome import HeartbeatReply, Outcome
from kavka.protocol.errors import ErrorCode

STABLE, UNREVOKED, UNRELEASED = 0, 1, 2
MEMBER_STATES = {STABLE: "stable", UNREVOKED: "unrevoked_partitions", UNRELEASED: "unreleased_partitions"}
LEAVE_EPOCH, STATIC_LEAVE_EPOCH = -1, -2

TopicMap = dict[str, frozenset[int]]


@dataclass(frozen=True, slots=True)
class TopicMeta:
    """What the assignor needs of a topic, and its id for the wire."""
    topic_id: object
    partitions: int
    internal: bool = False


@dataclass(frozen=True, slots=True)
class HeartbeatRequest:
    group_id: str
    member_id: str
    member_epoch: int
    instance_id: str | None = None
    rack_id: str | None = None
    rebalance_timeout_ms: int = -1
    topics: tuple[str, ...] | None = None
    regex: str | None = None
    server_assignor: str | None = None
    owned: TopicMap | None = None      # topic ids already resolved to names
    client_id: str = ""
    client_host: str = ""


# -- assignment forms ----------------------------------------------------------------------

def to_map(assignment: Assignment) -> TopicMap:
    return {t: frozenset(ps) for t, ps in assignment}


def to_tuple(mapping: Mapping[str, frozenset[int] | set[int]]) -> Assignment:
    return tuple((t, tuple(sorted(ps))) for t, ps in sorted(mapping.items()) if ps)


def is_subset(owned: TopicMap | None, assigned: TopicMap) -> bool:
    if owned is None:
        return False
    return all(ps <= assigned.get(t, frozenset()) for t, ps in owned.items())


def _minus(a: TopicMap, b: TopicMap) -> TopicMap:
    return {t: ps - b.get(t, frozenset()) for t, ps in a.items() if ps - b.get(t, frozenset())}


def _and(a: TopicMap, b: TopicMap) -> TopicMap:
    return {t: ps & b.get(t, frozenset()) for t, ps in a.items() if ps & b.get(t, frozenset())}


# -- the group -------------------------------------------------------------------------------

class ConsumerGroup:
    def __init__(self, group_id: str) -> None:
        self.group_id = group_id
        self.value = ConsumerGroupValue(0, 0, DEFAULT, (), ())
        self.members: dict[str, ConsumerMemberValue] = {}
        self.static: dict[str, str] = {}                      # instance id -> member id
        self.owners: dict[tuple[str, int], str] = {}          # partition -> member (assigned or revoking)
        self.session_deadlines: dict[str, int] = {}
        self.revoke_deadlines: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"ConsumerGroup({self.group_id!r}, epoch {self.value.group_epoch}, {len(self.members)} members)"

    # -- replay ------------------------------------------------------------------------------

    def apply_group(self, value: ConsumerGroupValue) -> None:
        self.value = value

    def apply_member(self, member_id: str, value: ConsumerMemberValue | None) -> None:
        old = self.members.pop(member_id, None)
        if old is not None:
            for tp in _partitions(old):
                if self.owners.get(tp) == member_id:
                    del self.owners[tp]
            if old.instance_id is not None and self.static.get(old.instance_id) == member_id:
                del self.static[old.instance_id]
        if value is None:
            self.session_deadlines.pop(member_id, None)
            self.revoke_deadlines.pop(member_id, None)
            return
        self.members[member_id] = value
        for tp in _partitions(value):
            self.owners[tp] = member_id
        if value.instance_id is not None:
            self.static[value.instance_id] = member_id
        if value.state != UNREVOKED:
            self.revoke_deadlines.pop(member_id, None)

    # -- views -------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """Kafka's ConsumerGroupState names."""
        if not self.members:
            return "Empty"
        if self.value.group_epoch > self.value.assignment_epoch:
            return "Assigning"
        if any(m.member_epoch != self.value.assignment_epoch or m.state != STABLE for m in self.members.values()):
            return "Reconciling"
        return "Stable"

    def target_of(self, member_id: str) -> TopicMap:
        for m, assignment in self.value.target:
            if m == member_id:
                return to_map(assignment)
        return {}

    def subscribed_topics(self) -> set[str]:
        return {t for t, _ in self.value.subscribed}

    def next_deadline(self) -> int | None:
        return min((*self.session_deadlines.values(), *self.revoke_deadlines.values()), default=None)

    def durable_view(self) -> dict:
        return {"value": self.value, "members": dict(sorted(self.members.items()))}


def _partitions(member: ConsumerMemberValue):
    for assignment in (member.assigned, member.revoking):
        for topic, ps in assignment:
            for p in ps:
                yield (topic, p)


# -- decisions -------------------------------------------------------------------------------

class Refused(Exception):
    def __init__(self, error: ErrorCode, message: str | None = None) -> None:
        super().__init__(message)
        self.error, self.message = error, message


def validate(request: HeartbeatRequest, version: int) -> None:
    """Kafka's request checks, in Kafka's order (INVALID_REQUEST, UNSUPPORTED_ASSIGNOR)."""
    def blank(value: str | None) -> bool:
        return value is not None and not value.strip()

    epoch = request.member_epoch
    if (version >= 1 or epoch > 0 or epoch == LEAVE_EPOCH) and blank(request.member_id or ""):
        raise Refused(ErrorCode.invalid_request, "MemberId can't be empty.")
    if blank(request.group_id or ""):
        raise Refused(ErrorCode.invalid_request, "GroupId can't be empty.")
    if blank(request.instance_id):
        raise Refused(ErrorCode.invalid_request, "InstanceId can't be empty.")
    if blank(request.rack_id):
        raise Refused(ErrorCode.invalid_request, "RackId can't be empty.")
    if epoch == 0:
        if request.rebalance_timeout_ms == -1:
            raise Refused(ErrorCode.invalid_request, "RebalanceTimeoutMs must be provided in first request.")
        if request.owned is None or any(request.owned.values()):
            raise Refused(ErrorCode.invalid_request, "TopicPartitions must be empty when (re-)joining.")
        if request.topics is None and request.regex is None:
            raise Refused(ErrorCode.invalid_request,
                          "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.")
    elif epoch == STATIC_LEAVE_EPOCH:
        if request.instance_id is None:
            raise Refused(ErrorCode.invalid_request, "InstanceId can't be null.")
    elif epoch < STATIC_LEAVE_EPOCH:
        raise Refused(ErrorCode.invalid_request, "MemberEpoch is invalid.")
    if request.server_assignor is not None and request.server_assignor not in ASSIGNORS:
        raise Refused(ErrorCode.unsupported_assignor,
                      f"ServerAssignor {request.server_assignor} is not supported. "
                      f"Supported assignors: {', '.join(sorted(ASSIGNORS))}.")
    if request.regex:
        try:
            re.compile(request.regex)
        except re.error as exc:
            raise Refused(ErrorCode.invalid_regular_expression,
                          f"SubscribedTopicRegex `{request.regex}` is not a valid regular expression: {exc}.")


def heartbeat(group: ConsumerGroup, request: HeartbeatRequest, topics: Mapping[str, TopicMeta],
              env: Env) -> Outcome:
    """One ConsumerGroupHeartbeat (not a leave).  ``group`` may be new and empty."""
    config = env.config
    epoch, member_id = request.member_epoch, request.member_id
    member = group.members.get(member_id)
    records: list = []
    target_rename = None
    if request.instance_id is not None:
        holder = group.static.get(request.instance_id)
        if epoch == 0 and holder is not None and holder != member_id:
            old = group.members[holder]
            if old.member_epoch != STATIC_LEAVE_EPOCH:
                raise Refused(ErrorCode.unreleased_instance_id,
                              f"Static member {member_id} with instance id {request.instance_id} cannot join "
                              f"the group because the instance id is owned by {holder} member.")
            # The restarted static member takes over its old assignment, without a rebalance.
            member = replace(old, member_epoch=old.previous_epoch if old.previous_epoch > 0 else 0)
            records.append((ConsumerMemberKey(group.group_id, holder), None))
            target_rename = holder
        elif epoch != 0:
            _check_static_holder(holder, member_id, request.instance_id)
    if member is None:
        if epoch != 0:
            raise Refused(ErrorCode.unknown_member_id, f"Member {member_id} is not a member of group "
                                                       f"{group.group_id}.")
        if len(group.members) >= config.consumer_max_size:
            raise Refused(ErrorCode.group_max_size_reached, "The consumer group has reached its maximum "
                                                            f"capacity of {config.consumer_max_size} members.")
        old_value = None
        member = ConsumerMemberValue(None, None, "", "", 0, None, (), None, 0, 0, STABLE, (), ())
    elif target_rename is not None:
        old_value = None
    else:
        old_value = member
        if epoch == 0:
            # A rejoin: the member says it owns nothing, so it owns nothing.
            member = replace(member, assigned=(), revoking=(), state=STABLE)
        elif epoch > member.member_epoch:
            raise Refused(ErrorCode.fenced_member_epoch, _fenced(epoch, member.member_epoch, "greater"))
        elif epoch < member.member_epoch and (epoch != member.previous_epoch
                                              or not is_subset(request.owned, to_map(member.assigned))):
            raise Refused(ErrorCode.fenced_member_epoch, _fenced(epoch, member.member_epoch, "smaller"))

    updated = replace(
        member,
        instance_id=request.instance_id if request.instance_id is not None else member.instance_id,
        rack_id=request.rack_id if request.rack_id is not None else member.rack_id,
        client_id=request.client_id, client_host=request.client_host,
        rebalance_timeout_ms=(request.rebalance_timeout_ms if request.rebalance_timeout_ms != -1
                              else member.rebalance_timeout_ms),
        server_assignor=request.server_assignor if request.server_assignor is not None else member.server_assignor,
        topics=tuple(sorted(set(request.topics))) if request.topics is not None else member.topics,
        regex=(request.regex or None) if request.regex is not None else member.regex,
    )
    new_member = old_value is None and target_rename is None
    subscription_changed = (new_member or updated.topics != member.topics or updated.regex != member.regex
                            or updated.server_assignor != member.server_assignor)

    members = dict(group.members)
    if target_rename is not None:
        del members[target_rename]
    members[member_id] = updated
    value = group.value
    subscribed = subscription_metadata(members.values(), topics)
    if subscription_changed or subscribed != value.subscribed:
        value = new_target(group, members, subscribed, topics)
        records.append((ConsumerGroupKey(group.group_id), value))
    elif target_rename is not None:
        value = replace(value, target=tuple((member_id if m == target_rename else m, a) for m, a in value.target))
        records.append((ConsumerGroupKey(group.group_id), value))

    target = next((to_map(a) for m, a in value.target if m == member_id), {})
    owners = {tp: m for tp, m in group.owners.items() if m != member_id and m != target_rename}
    reconciled = reconcile(updated, target, value.assignment_epoch, request.owned if epoch != 0 else {}, owners)
    if reconciled != old_value:
        records.append((ConsumerMemberKey(group.group_id, member_id), reconciled))

    send = (epoch != reconciled.member_epoch or old_value is None
            or reconciled.assigned != old_value.assigned
            or (request.owned is not None and request.owned != to_map(reconciled.assigned)))
    reply = HeartbeatReply(ErrorCode.none, None, member_id, reconciled.member_epoch,
                           config.consumer_heartbeat_interval_ms,
                           to_map(reconciled.assigned) if send else None)
    return Outcome(reply, records)


def _check_static_holder(holder: str | None, member_id: str, instance_id: str) -> None:
    """A known member naming its group.instance.id must be the id's current holder."""
    if holder is None:
        raise Refused(ErrorCode.unknown_member_id, f"Instance id {instance_id} is unknown.")
    if holder != member_id:
        raise Refused(ErrorCode.fenced_instance_id,
                      f"Static member {member_id} with instance id {instance_id} was fenced by member {holder}.")


def _fenced(received: int, known: int, which: str) -> str:
    return (f"The consumer group member has a {which} member epoch ({received}) than the one known by the "
            f"group coordinator ({known}). The member must abandon all its partitions and rejoin.")


def leave(group: ConsumerGroup, request: HeartbeatRequest, topics: Mapping[str, TopicMeta]) -> Outcome:
    member_id = request.member_id
    if request.instance_id is not None:
        _check_static_holder(group.static.get(request.instance_id), member_id, request.instance_id)
    member = group.members.get(member_id)
    if member is None:
        raise Refused(ErrorCode.unknown_member_id, f"Member {member_id} is not a member of group "
                                                   f"{group.group_id}.")
    reply = HeartbeatReply(ErrorCode.none, None, member_id, request.member_epoch)
    if request.member_epoch == STATIC_LEAVE_EPOCH:
        kept = replace(member, member_epoch=STATIC_LEAVE_EPOCH,
                       previous_epoch=member.member_epoch if member.member_epoch > 0 else member.previous_epoch)
        return Outcome(reply, [(ConsumerMemberKey(group.group_id, member_id), kept)])
    return Outcome(reply, remove_members(group, [member_id], topics))


def remove_members(group: ConsumerGroup, member_ids: list[str], topics: Mapping[str, TopicMeta]) -> list:
    """Tombstones for the members and a new target without them."""
    members = {m: v for m, v in group.members.items() if m not in member_ids}
    records: list = [(ConsumerMemberKey(group.group_id, m), None) for m in member_ids]
    value = new_target(group, members, subscription_metadata(members.values(), topics), topics)
    return records + [(ConsumerGroupKey(group.group_id), value)]


def expire(group: ConsumerGroup, now: int, topics: Mapping[str, TopicMeta]) -> Outcome:
    """Members past their session timeout or their revocation deadline are removed."""
    gone = sorted({m for m, due in group.session_deadlines.items() if due <= now}
                  | {m for m, due in group.revoke_deadlines.items() if due <= now})
    gone = [m for m in gone if m in group.members]
    for m in gone:
        group.session_deadlines.pop(m, None)
        group.revoke_deadlines.pop(m, None)
    return Outcome(None, remove_members(group, gone, topics) if gone else [])



# -- assignment --------------------------------------------------------------------------------

def member_topics(member: ConsumerMemberValue, topics: Mapping[str, TopicMeta]) -> set[str]:
    names = {t for t in member.topics if t in topics}
    if member.regex:
        pattern = re.compile(member.regex)
        names |= {t for t, meta in topics.items() if not meta.internal and pattern.fullmatch(t)}
    return names


def subscription_metadata(members, topics: Mapping[str, TopicMeta]) -> tuple[tuple[str, int], ...]:
    wanted: set[str] = set()
    for member in members:
        wanted |= member_topics(member, topics)
    return tuple(sorted((t, topics[t].partitions) for t in wanted))


def choose_assignor(members) -> str:
    votes = Counter(m.server_assignor for m in members if m.server_assignor)
    if not votes:
        return DEFAULT
    return max(sorted(votes), key=lambda name: votes[name])


def new_target(group: ConsumerGroup, members: Mapping[str, ConsumerMemberValue],
               subscribed: tuple[tuple[str, int], ...], topics: Mapping[str, TopicMeta]) -> ConsumerGroupValue:
    assignor = choose_assignor(members.values())
    counts = dict(subscribed)
    subs = {m: member_topics(v, topics) & counts.keys() for m, v in members.items()}
    previous = {m: to_map(a) for m, a in group.value.target}
    target = ASSIGNORS[assignor](subs, counts, previous)
    epoch = group.value.group_epoch + 1
    return ConsumerGroupValue(epoch, epoch, assignor, subscribed,
                              tuple((m, to_tuple(target.get(m, {}))) for m in sorted(members)))


def reconcile(member: ConsumerMemberValue, target: TopicMap, target_epoch: int, owned: TopicMap | None,
              owners: Mapping[tuple[str, int], str]) -> ConsumerMemberValue:
    """The member's next step towards its target (Kafka's CurrentAssignmentBuilder).

    ``owners`` are the partitions other members still hold (assigned or revoking)."""
    if member.member_epoch == STATIC_LEAVE_EPOCH:
        return member
    if member.state == UNREVOKED:
        if not is_subset(owned, to_map(member.assigned)):
            return member  # still revoking
        member = replace(member, revoking=())
    elif member.state == STABLE and member.member_epoch == target_epoch:
        return member
    current = to_map(member.assigned)
    keep, revoke = _and(current, target), _minus(current, target)
    if revoke:
        return replace(member, state=UNREVOKED, assigned=to_tuple(keep), revoking=to_tuple(revoke))
    assigned: dict[str, set[int]] = {t: set(ps) for t, ps in keep.items()}
    unreleased = False
    for topic, ps in _minus(target, current).items():
        for p in ps:
            if (topic, p) in owners:
                unreleased = True
            else:
                assigned.setdefault(topic, set()).add(p)
    previous = member.member_epoch if member.member_epoch != target_epoch else member.previous_epoch
    return replace(member, member_epoch=target_epoch, previous_epoch=previous,
                   state=UNRELEASED if unreleased else STABLE, assigned=to_tuple(assigned), revoking=())
