"""State model for KIP-848 consumer-protocol groups (not yet wired to the API layer).

A group has a group epoch (bumped when membership or subscriptions change), a
target assignment computed by a server-side assignor at that epoch, and per
member a member epoch and the partitions it currently owns.  A partition is
handed to its new owner only after its previous owner stopped reporting it
(revocation first), as KIP-848 requires.  Time is injected (``now`` in ms).
"""

from __future__ import annotations

from dataclasses import dataclass, field

TopicPartitions = dict[str, frozenset[int]]


def uniform_assign(members: dict[str, set[str]], partitions: dict[str, int]) -> dict[str, TopicPartitions]:
    """Spread all subscribed partitions round-robin over the members subscribed to each topic."""
    out: dict[str, dict[str, set[int]]] = {m: {} for m in members}
    load = {m: 0 for m in members}
    for topic in sorted(partitions):
        subs = sorted(m for m, t in members.items() if topic in t)
        for p in range(partitions[topic]) if subs else ():
            m = min(subs, key=lambda x: (load[x], x))
            out[m].setdefault(topic, set()).add(p)
            load[m] += 1
    return {m: {t: frozenset(ps) for t, ps in tps.items()} for m, tps in out.items()}


def range_assign(members: dict[str, set[str]], partitions: dict[str, int]) -> dict[str, TopicPartitions]:
    """Per topic, contiguous ranges; the first ``n % k`` members get one extra partition."""
    out: dict[str, dict[str, frozenset[int]]] = {m: {} for m in members}
    for topic in sorted(partitions):
        subs = sorted(m for m, t in members.items() if topic in t)
        if not subs:
            continue
        n, k = partitions[topic], len(subs)
        start = 0
        for i, m in enumerate(subs):
            size = n // k + (1 if i < n % k else 0)
            if size:
                out[m][topic] = frozenset(range(start, start + size))
            start += size
    return out


ASSIGNORS = {"uniform": uniform_assign, "range": range_assign}


@dataclass
class Member:
    member_id: str
    topics: set[str]
    deadline: int
    member_epoch: int = 0
    owned: TopicPartitions = field(default_factory=dict)


@dataclass
class ConsumerGroup:
    group_id: str
    assignor: str = "uniform"
    session_timeout_ms: int = 45_000
    heartbeat_interval_ms: int = 5_000
    group_epoch: int = 0
    assignment_epoch: int = 0
    members: dict[str, Member] = field(default_factory=dict)
    target: dict[str, TopicPartitions] = field(default_factory=dict)

    def heartbeat(self, member_id: str, member_epoch: int, topics: set[str] | None,
                  owned: TopicPartitions | None, partitions: dict[str, int], now: int) -> tuple[int, TopicPartitions]:
        """Returns (member_epoch, assignment to send); raises KeyError / ValueError for
        UNKNOWN_MEMBER_ID / FENCED_MEMBER_EPOCH.  ``member_epoch == -1`` leaves."""
        if member_epoch == -1:
            if self.members.pop(member_id, None) is not None:
                self._bump(partitions)
            return -1, {}
        member = self.members.get(member_id)
        if member_epoch == 0:
            if member is None:
                member = self.members[member_id] = Member(member_id, set(topics or ()), 0)
                self._bump(partitions)
        elif member is None:
            raise KeyError(member_id)
        elif member_epoch != member.member_epoch:
            raise ValueError(member_epoch)
        member.deadline = now + self.session_timeout_ms
        if topics is not None and set(topics) != member.topics:
            member.topics = set(topics)
            self._bump(partitions)
        if owned is not None:
            member.owned = dict(owned)
        if self.assignment_epoch != self.group_epoch:
            self._bump(partitions)
        return self._reconcile(member)

    def expire(self, now: int, partitions: dict[str, int]) -> list[str]:
        gone = [m for m, x in self.members.items() if x.deadline <= now]
        for m in gone:
            del self.members[m]
        if gone:
            self._bump(partitions)
        return gone

    def _bump(self, partitions: dict[str, int]) -> None:
        self.group_epoch += 1
        subs = {m: x.topics for m, x in self.members.items()}
        self.target = ASSIGNORS[self.assignor](subs, {t: n for t, n in partitions.items()})
        self.assignment_epoch = self.group_epoch

    def _reconcile(self, member: Member) -> tuple[int, TopicPartitions]:
        target = self.target.get(member.member_id, {})
        owned_by_others = {(t, p) for o in self.members.values() if o is not member
                           for t, ps in o.owned.items() for p in ps}
        keep = {t: frozenset(p for p in ps if p in target.get(t, ()))
                for t, ps in member.owned.items()}
        if any(keep.get(t, frozenset()) != ps for t, ps in member.owned.items()):
            # Must revoke first: send only what it may keep, epoch unchanged.
            return member.member_epoch, {t: ps for t, ps in keep.items() if ps}
        grant = {t: frozenset(p for p in ps if (t, p) not in owned_by_others) for t, ps in target.items()}
        grant = {t: ps for t, ps in grant.items() if ps}
        if grant == {t: ps for t, ps in target.items() if ps}:
            member.member_epoch = self.assignment_epoch
        return member.member_epoch, grant
