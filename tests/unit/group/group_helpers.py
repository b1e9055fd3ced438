"""Helpers: a group coordinator on a ManualClock with an in-memory journal; nothing sleeps.

``Harness`` drives the coordinator the way the runner does, but keeps the
answers to parked requests in a dict instead of futures: ``h.join(...)``
returns a reply or a :class:`Parked`; ``h.answer(parked)`` is its answer once
some later operation or ``h.advance(ms)`` released it.  The journal encodes
every record to bytes (the real format), so ``h.rebuilt()`` replays exactly
what a broker would load from ``__consumer_offsets``.
"""

from __future__ import annotations

import itertools
import struct

from kavka.clock import ManualClock
from kavka.group.coordinator import GroupCoordinator
from kavka.group.env import GroupConfig
from kavka.group.join import JoinRequest
from kavka.group.log_format import decode_key, decode_value, encode_key, encode_value, partition_for
from kavka.group.membership import SyncRequest
from kavka.group.offsets import OffsetCommit
from kavka.group.outcome import Parked
from kavka.log.coordinator_journal import NO_PRODUCER_ID, JournalMarker, JournalRecord

SESSION, REBALANCE = 10_000, 30_000


def subscription(*topics: str) -> bytes:
    """A ConsumerProtocolSubscription v0: version, topics, null user data."""
    body = struct.pack(">hi", 0, len(topics))
    for topic in topics:
        body += struct.pack(">h", len(topic)) + topic.encode()
    return body + struct.pack(">i", -1)


class MemoryJournal:
    """Each partition a list of (key bytes, value bytes, producer id) records and
    ("marker", producer id, commit) entries, in log order."""

    def __init__(self, partitions: int = 3) -> None:
        self.partitions = partitions
        self.logs: dict[int, list[tuple]] = {}
        self.fail: Exception | None = None
        self.local = True

    def is_local(self, group_id: str) -> bool:
        return self.local

    def append(self, group_id: str, records, producer=None, guard=None) -> None:
        if self.fail is not None:
            raise self.fail
        log = self.logs.setdefault(partition_for(group_id, self.partitions), [])
        producer_id = NO_PRODUCER_ID if producer is None else producer[0]
        log.extend((encode_key(k), encode_value(v), producer_id) for k, v in records)

    def append_marker(self, index: int, producer_id: int, commit: bool) -> None:
        self.logs.setdefault(index, []).append(("marker", producer_id, commit))

    def read_all(self):
        for index in sorted(self.logs):
            yield from self.read_partition(index)

    def partition_for(self, group_id: str) -> int:
        return partition_for(group_id, self.partitions)

    def read_partition(self, index: int):
        for entry in self.logs.get(index, []):
            if entry[0] == "marker":
                yield JournalMarker(index, entry[1], entry[2])
                continue
            key_bytes, value_bytes, producer_id = entry
            key = decode_key(key_bytes)
            yield JournalRecord(key, decode_value(key, value_bytes), producer_id)

    def count(self) -> int:
        return sum(len(log) for log in self.logs.values())


class Harness:
    def __init__(self, **settings) -> None:
        defaults = dict(initial_rebalance_delay_ms=0, min_session_timeout_ms=1000, max_session_timeout_ms=60_000)
        self.config = GroupConfig(**{**defaults, **settings})
        self.clock = ManualClock()
        self.journal = MemoryJournal()
        ids = itertools.count(1)
        self.topics: dict = {}  # name -> kavka.group.consumer_group.TopicMeta, for server-side assignment
        self.coordinator = GroupCoordinator(self.config, self.clock, self.journal, new_uuid=lambda: str(next(ids)),
                                            topics=lambda: self.topics)
        self.answers: dict[int, object] = {}

    # -- driving ---------------------------------------------------------------------------

    def _settle(self, out):
        for token, reply in out.replies:
            assert token not in self.answers, f"token {token} answered twice"
            self.answers[token] = reply
        return out.reply

    def join(self, member_id: str = "", group: str = "g", *, instance: str | None = None,
             protocols=(("range", b"m"),), protocol_type: str = "consumer", session: int = SESSION,
             rebalance: int = REBALANCE, version: int = 9, client: str = "c"):
        request = JoinRequest(group, member_id, instance, client, "/127.0.0.1", session, rebalance,
                              protocol_type, tuple(protocols), require_known_member_id=version >= 4,
                              supports_skip_assignment=version >= 9)
        return self._settle(self.coordinator.join(request))

    def new_member(self, group: str = "g", **kwargs):
        """Join twice (MEMBER_ID_REQUIRED, then with the id); the parked second join."""
        first = self.join("", group, **kwargs)
        assert first.error.name == "member_id_required", first
        return self.join(first.member_id, group, **kwargs)

    def answer(self, parked):
        assert isinstance(parked, Parked), parked
        return self.answers.get(parked.token)

    def sync(self, member_id: str, generation: int, group: str = "g", assignments=None, instance=None,
             protocol_type=None, protocol_name=None):
        request = SyncRequest(group, generation, member_id, instance, protocol_type, protocol_name,
                              dict(assignments or {}))
        return self._settle(self.coordinator.sync(request))

    def heartbeat(self, member_id: str, generation: int, group: str = "g", instance=None):
        return self._settle(self.coordinator.heartbeat(group, member_id, instance, generation))

    def leave(self, *members, group: str = "g"):
        return self._settle(self.coordinator.leave(group, list(members)))

    def commit(self, group: str = "g", generation: int = -1, member_id: str = "", offsets=(("t", 0, 5),),
               metadata: str | None = "", instance=None):
        commits = [OffsetCommit(t, p, o, -1, metadata) for t, p, o in offsets]
        return self._settle(self.coordinator.commit_offsets(group, generation, member_id, instance, commits))

    def advance(self, ms: int) -> None:
        self.clock.advance(ms)
        self._settle(self.coordinator.tick())

    # -- looking -------------------------------------------------------------------------

    def group(self, group_id: str = "g"):
        return self.coordinator.groups.get(group_id)

    def state(self, group_id: str = "g") -> str | None:
        group = self.group(group_id)
        return None if group is None else group.state.value

    def rebuilt(self) -> GroupCoordinator:
        """A second coordinator loaded from this one's journal (a broker restart)."""
        loaded = GroupCoordinator(self.config, self.clock, self.journal, topics=lambda: self.topics)
        loaded.load()
        return loaded

    def stable_group(self, *names: str, group: str = "g", **kwargs) -> dict[str, str]:
        """Bring ``names`` (in order) into a Stable group; returns name -> member id.

        Members join one after another; each new one triggers a rebalance the
        earlier ones answer by rejoining, as real clients do after a heartbeat.
        """
        ids: dict[str, str] = {}
        for name in names:
            pending = {name: self.new_member(group, client=name, **kwargs)}
            for other, member_id in ids.items():
                pending[other] = self.join(member_id, group, client=other, **kwargs)
            replies = {n: self.answer(p) for n, p in pending.items()}
            assert all(r is not None and r.error.value == 0 for r in replies.values()), replies
            ids = {n: r.member_id for n, r in replies.items()}
            self._sync_all(replies, group)
        return ids

    def _sync_all(self, replies: dict, group: str) -> None:
        leader = next(r for r in replies.values() if r.leader == r.member_id)
        plan = {r.member_id: f"assignment-{n}".encode() for n, r in replies.items()}
        parked = {n: self.sync(r.member_id, r.generation, group, plan if r is leader else None)
                  for n, r in replies.items() if r is not leader}
        assert self.answer(self.sync(leader.member_id, leader.generation, group, plan)).error.value == 0
        assert all(self.answer(p).error.value == 0 for p in parked.values())

