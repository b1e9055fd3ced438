"""Committed offsets: the store, commit validation, fetch, delete and expiry.

The store changes only through ``put``/``remove``, which only
``Coordinator.replay`` calls: a commit is validated here, turned into one
record per partition, appended to ``__consumer_offsets``, then replayed.

Who may commit (Kafka's rules for classic groups):

* a consumer using ``assign()`` (generation -1, no member id) when the group
  is Empty or does not exist yet: the "simple" group only stores offsets;
* a member of the current generation, while the group is PreparingRebalance
  (revoking members commit before rejoining) or Stable;
* in CompletingRebalance: REBALANCE_IN_PROGRESS (the member knows the new
  generation but not yet its partitions).

Expiry (KIP-211): offsets of an Empty group expire ``offsets.retention.minutes``
after it became empty; offsets of a simple group that long after their commit;
a Stable consumer group's offsets of topics nobody subscribes to any more,
that long after their commit.  An Empty group left without offsets is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from kavka.group.consumer_group import ConsumerGroup
from kavka.group.log_format import ConsumerGroupKey, GroupKey, OffsetKey, OffsetValue
from kavka.group.model import Group
from kavka.group.state import COMPLETING, DEAD, EMPTY, MEMBER_COMMIT, NONE, STABLE
from kavka.protocol.errors import ErrorCode

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class OffsetCommit:
    topic: str
    partition: int
    offset: int
    leader_epoch: int
    metadata: str | None


class OffsetStore:
    def __init__(self) -> None:
        self._groups: dict[str, dict[TopicPartition, OffsetValue]] = {}

    def get(self, group_id: str, topic: str, partition: int) -> OffsetValue | None:
        return self._groups.get(group_id, {}).get((topic, partition))

    def of_group(self, group_id: str) -> dict[TopicPartition, OffsetValue]:
        return self._groups.get(group_id, {})

    def has_offsets(self, group_id: str) -> bool:
        return bool(self._groups.get(group_id))

    def put(self, group_id: str, topic: str, partition: int, value: OffsetValue) -> None:
        self._groups.setdefault(group_id, {})[(topic, partition)] = value

    def remove(self, group_id: str, topic: str, partition: int) -> None:
        offsets = self._groups.get(group_id)
        if offsets is not None:
            offsets.pop((topic, partition), None)
            if not offsets:
                del self._groups[group_id]

    def snapshot(self) -> dict:
        return {g: dict(offsets) for g, offsets in self._groups.items() if offsets}


def validate_commit(group: Group | None, generation: int, member_id: str, instance_id: str | None) -> ErrorCode:
    if group is None:
        return NONE if generation < 0 else ErrorCode.illegal_generation
    if group.state == DEAD:
        return ErrorCode.coordinator_not_available
    if group.is_fenced(instance_id, member_id):
        return ErrorCode.fenced_instance_id
    if generation < 0 and group.state == EMPTY:
        return NONE
    state_error = MEMBER_COMMIT[group.state]
    if group.state == COMPLETING:
        return state_error
    member = group.members.get(member_id)
    if member is None:
        return ErrorCode.unknown_member_id
    if generation != group.generation:
        return ErrorCode.illegal_generation
    return state_error


def validate_consumer_commit(group: ConsumerGroup, member_epoch: int, member_id: str, version: int) -> ErrorCode:
    """Commits to a consumer-protocol group: by a member at its current epoch (v9+),
    or by anyone with epoch -1 while the group has no members (admin tools)."""
    if member_epoch < 0 and not group.members:
        return NONE
    member = group.members.get(member_id)
    if member is None:
        return ErrorCode.unknown_member_id
    if version < 9:
        return ErrorCode.unsupported_version
    if member_epoch != member.member_epoch:
        return ErrorCode.stale_member_epoch
    return NONE


def commit_records(group_id: str, commits: Iterable[OffsetCommit], max_metadata: int,
                   now_wall: int) -> tuple[list, dict[TopicPartition, ErrorCode]]:
    """One record per valid partition; OFFSET_METADATA_TOO_LARGE for the others."""
    records, errors = [], {}
    for c in commits:
        metadata = c.metadata or ""
        if len(metadata) > max_metadata:  # Kafka measures the Java string length
            errors[(c.topic, c.partition)] = ErrorCode.offset_metadata_too_large
            continue
        errors[(c.topic, c.partition)] = NONE
        records.append((OffsetKey(group_id, c.topic, c.partition),
                        OffsetValue(c.offset, c.leader_epoch, metadata, now_wall)))
    return records, errors


def fetch(store: OffsetStore, group_id: str,
          topics: list[tuple[str, list[int]]] | None) -> list[tuple[str, list[tuple[int, OffsetValue | None]]]]:
    """Committed offsets of the requested partitions (None if none), or all when ``topics`` is None."""
    if topics is None:
        by_topic: dict[str, list] = {}
        for (topic, partition), value in sorted(store.of_group(group_id).items()):
            by_topic.setdefault(topic, []).append((partition, value))
        return list(by_topic.items())
    return [(topic, [(p, store.get(group_id, topic, p)) for p in partitions]) for topic, partitions in topics]


def delete_offsets(group: Group | None, store: OffsetStore, partitions: list[TopicPartition]
                   ) -> tuple[ErrorCode, dict[TopicPartition, ErrorCode], list]:
    """OffsetDelete: (group error, error per partition, tombstones)."""
    if group is None or group.state == DEAD:
        return ErrorCode.group_id_not_found, {}, []
    if group.protocol_type == "consumer":
        subscribed = group.subscribed_topics() or set()
    elif group.state == EMPTY:
        subscribed = set()
    else:
        return ErrorCode.non_empty_group, {}, []
    return _delete_unsubscribed(group.group_id, store, partitions, subscribed)


def delete_consumer_offsets(group: ConsumerGroup, store: OffsetStore, partitions: list[TopicPartition]
                            ) -> tuple[ErrorCode, dict[TopicPartition, ErrorCode], list]:
    """OffsetDelete of a consumer-protocol group: any topic no member subscribes to."""
    subscribed = group.subscribed_topics() if group.members else set()
    return _delete_unsubscribed(group.group_id, store, partitions, subscribed)


def _delete_unsubscribed(group_id: str, store: OffsetStore, partitions: list[TopicPartition], subscribed: set
                         ) -> tuple[ErrorCode, dict[TopicPartition, ErrorCode], list]:
    errors, records = {}, []
    for topic, partition in partitions:
        if topic in subscribed:
            errors[(topic, partition)] = ErrorCode.group_subscribed_to_topic
            continue
        errors[(topic, partition)] = NONE
        if store.get(group_id, topic, partition) is not None:
            records.append((OffsetKey(group_id, topic, partition), None))
    return NONE, errors, records


def delete_consumer_group_records(group: ConsumerGroup, store: OffsetStore) -> tuple[ErrorCode, list]:
    if group.members:
        return ErrorCode.non_empty_group, []
    records = [(OffsetKey(group.group_id, t, p), None) for t, p in sorted(store.of_group(group.group_id))]
    return NONE, records + [(ConsumerGroupKey(group.group_id), None)]


def consumer_expiry_records(group: ConsumerGroup, store: OffsetStore, now_wall: int, retention_ms: int) -> list:
    """Offsets of topics the group does not subscribe to (all, once it is empty) expire
    ``retention_ms`` after their commit; an empty group left without offsets is deleted."""
    offsets = store.of_group(group.group_id)
    subscribed = group.subscribed_topics() if group.members else set()
    expired = [(t, p) for (t, p), value in offsets.items()
               if t not in subscribed and value.commit_timestamp + retention_ms <= now_wall]
    records = [(OffsetKey(group.group_id, t, p), None) for t, p in sorted(expired)]
    if not group.members and len(expired) == len(offsets):
        records.append((ConsumerGroupKey(group.group_id), None))
    return records


def delete_group_records(group: Group | None, store: OffsetStore) -> tuple[ErrorCode, list]:
    """DeleteGroups of one group: tombstones for its offsets, then for the group."""
    if group is None or group.state == DEAD:
        return ErrorCode.group_id_not_found, []
    if group.state != EMPTY:
        return ErrorCode.non_empty_group, []
    records = [(OffsetKey(group.group_id, t, p), None) for t, p in sorted(store.of_group(group.group_id))]
    return NONE, records + [(GroupKey(group.group_id), None)]


def expiry_records(group: Group, store: OffsetStore, now_wall: int, retention_ms: int) -> list:
    """Tombstones for expired offsets, and for the group if it is Empty and left without any."""
    offsets = store.of_group(group.group_id)
    base = _expiry_base(group)
    expired = [] if base is None else [
        (topic, partition) for (topic, partition), value in offsets.items()
        if base(topic, value) is not None and base(topic, value) + retention_ms <= now_wall]
    records = [(OffsetKey(group.group_id, t, p), None) for t, p in sorted(expired)]
    if group.state == EMPTY and not group.pending and len(expired) == len(offsets):
        records.append((GroupKey(group.group_id), None))
    return records


def _expiry_base(group: Group):
    """fn(topic, value) -> the time an offset's retention counts from (None: keep), or None."""
    if not group.protocol_type:
        return lambda topic, value: value.commit_timestamp
    if group.state == EMPTY:
        return lambda topic, value: (value.commit_timestamp if group.state_timestamp is None
                                     else group.state_timestamp)
    subscribed = group.subscribed_topics() if group.state == STABLE else None
    if subscribed is None:
        return None
    return lambda topic, value: None if topic in subscribed else value.commit_timestamp
