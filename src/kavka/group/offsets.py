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

Transactional commits (TxnOffsetCommit, KIP-98) are *pending* per producer id until the
transaction's marker reaches the group's ``__consumer_offsets`` partition: a commit marker
moves them into the store (unless a plain commit of the same partition was replayed after
them: the later record wins, as Kafka compares record offsets), an abort drops them.
OffsetFetch sees committed offsets only; with ``require_stable`` a partition with pending
offsets answers UNSTABLE_OFFSET_COMMIT.  A tombstone (OffsetDelete, DeleteGroups, expiry)
removes a partition's pending offsets too; deletion writes one for partitions that have only
pending offsets, and expiry keeps an offset, and a group, while offsets are pending.

Expiry (KIP-211): offsets of an Empty group expire ``offsets.retention.minutes``
after it became empty; offsets of a simple group that long after their commit;
a Stable consumer group's offsets of topics nobody subscribes to any more,
that long after their commit.  An Empty group left without offsets is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

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
    """Committed offsets, and the pending offsets of open transactions.  ``position``: the
    order in which records were replayed, which is their log order within a group's partition."""

    def __init__(self) -> None:
        self._groups: dict[str, dict[TopicPartition, OffsetValue]] = {}
        self._positions: dict[tuple[str, TopicPartition], int] = {}
        # producer id -> group -> partition -> (value, position)
        self._pending: dict[int, dict[str, dict[TopicPartition, tuple[OffsetValue, int]]]] = {}
        self._open: dict[str, dict[TopicPartition, set[int]]] = {}   # group -> partition -> producer ids

    def get(self, group_id: str, topic: str, partition: int) -> OffsetValue | None:
        return self._groups.get(group_id, {}).get((topic, partition))

    def of_group(self, group_id: str) -> dict[TopicPartition, OffsetValue]:
        return self._groups.get(group_id, {})

    def has_offsets(self, group_id: str) -> bool:
        return bool(self._groups.get(group_id))

    def put(self, group_id: str, topic: str, partition: int, value: OffsetValue, position: int = 0) -> None:
        self._groups.setdefault(group_id, {})[(topic, partition)] = value
        self._positions[(group_id, (topic, partition))] = position

    def remove(self, group_id: str, topic: str, partition: int) -> None:
        """A tombstone: the committed offset and every pending one of the partition go."""
        tp = (topic, partition)
        offsets = self._groups.get(group_id)
        if offsets is not None:
            offsets.pop(tp, None)
            self._positions.pop((group_id, tp), None)
            if not offsets:
                del self._groups[group_id]
        for producer_id in self._open.get(group_id, {}).get(tp, set()).copy():
            self._drop_pending(producer_id, group_id, tp)

    def remove_group(self, group_id: str) -> None:
        """Forget a group's offsets, committed and pending (its partition moved away)."""
        for topic, partition in {*self.of_group(group_id), *self.pending_partitions(group_id)}:
            self.remove(group_id, topic, partition)

    # -- transactions --------------------------------------------------------------------

    def put_pending(self, producer_id: int, group_id: str, topic: str, partition: int, value: OffsetValue,
                    position: int) -> None:
        tp = (topic, partition)
        self._pending.setdefault(producer_id, {}).setdefault(group_id, {})[tp] = (value, position)
        self._open.setdefault(group_id, {}).setdefault(tp, set()).add(producer_id)

    def end_transaction(self, producer_id: int, commit: bool, in_partition: Callable[[str], bool]) -> None:
        """A marker of ``producer_id``: its pending offsets of the groups ``in_partition``
        accepts (those of the marker's partition) are committed or dropped."""
        groups = self._pending.get(producer_id, {})
        for group_id in [g for g in groups if in_partition(g)]:
            for tp, (value, position) in list(groups[group_id].items()):
                self._drop_pending(producer_id, group_id, tp)
                if commit and position > self._positions.get((group_id, tp), -1):
                    self.put(group_id, *tp, value, position)

    def is_pending(self, group_id: str, topic: str, partition: int) -> bool:
        return (topic, partition) in self._open.get(group_id, {})

    def pending_partitions(self, group_id: str) -> set[TopicPartition]:
        return set(self._open.get(group_id, {}))

    def has_pending(self, group_id: str) -> bool:
        return group_id in self._open

    def _drop_pending(self, producer_id: int, group_id: str, tp: TopicPartition) -> None:
        groups = self._pending[producer_id]
        del groups[group_id][tp]
        if not groups[group_id]:
            del groups[group_id]
            if not groups:
                del self._pending[producer_id]
        open_ids = self._open[group_id][tp]
        open_ids.discard(producer_id)
        if not open_ids:
            del self._open[group_id][tp]
            if not self._open[group_id]:
                del self._open[group_id]

    def snapshot(self) -> dict:
        return {g: dict(offsets) for g, offsets in self._groups.items() if offsets}

    def pending_snapshot(self) -> dict:
        return {pid: {g: {tp: value for tp, (value, _) in tps.items()} for g, tps in groups.items()}
                for pid, groups in self._pending.items()}

    def partitions_to_delete(self, group_id: str) -> list[TopicPartition]:
        """Every partition with a committed or a pending offset: one tombstone each."""
        return sorted({*self.of_group(group_id), *self.pending_partitions(group_id)})


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


def validate_txn_commit(group: Group | None, generation: int, member_id: str, instance_id: str | None) -> ErrorCode:
    """TxnOffsetCommit to a classic group, as Kafka: the member and generation are checked
    only when the request names them (v3+); a rebalance in progress does not refuse it."""
    if group is None:
        return NONE if generation < 0 else ErrorCode.illegal_generation
    if group.state == DEAD:
        return ErrorCode.coordinator_not_available
    if generation < 0 and group.state == EMPTY:
        return NONE
    if generation < 0 and not member_id and instance_id is None:
        return NONE   # v0-2 send neither
    if instance_id is not None and instance_id not in group.static_members:
        return ErrorCode.unknown_member_id
    if group.is_fenced(instance_id, member_id):
        return ErrorCode.fenced_instance_id
    if member_id not in group.members:
        return ErrorCode.unknown_member_id
    return ErrorCode.illegal_generation if generation != group.generation else NONE


def validate_consumer_txn_commit(group: ConsumerGroup, member_epoch: int, member_id: str) -> ErrorCode:
    """TxnOffsetCommit to a consumer-protocol group: a stale member epoch is ILLEGAL_GENERATION."""
    error = validate_consumer_commit(group, member_epoch, member_id, version=9)
    return ErrorCode.illegal_generation if error == ErrorCode.stale_member_epoch else error


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


FetchedPartition = tuple[int, OffsetValue | None, ErrorCode]


def fetch(store: OffsetStore, group_id: str, topics: list[tuple[str, list[int]]] | None,
          require_stable: bool = False) -> list[tuple[str, list[FetchedPartition]]]:
    """Committed offsets of the requested partitions (None if none), or all when ``topics`` is
    None, each with its error: with ``require_stable``, UNSTABLE_OFFSET_COMMIT (and no offset)
    for a partition with pending transactional offsets."""
    def one(topic: str, partition: int, value: OffsetValue | None) -> FetchedPartition:
        if require_stable and store.is_pending(group_id, topic, partition):
            return partition, None, ErrorCode.unstable_offset_commit
        return partition, value, NONE

    if topics is None:
        by_topic: dict[str, list] = {}
        for (topic, partition), value in sorted(store.of_group(group_id).items()):
            by_topic.setdefault(topic, []).append(one(topic, partition, value))
        return list(by_topic.items())
    return [(topic, [one(topic, p, store.get(group_id, topic, p)) for p in partitions])
            for topic, partitions in topics]


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
        if store.get(group_id, topic, partition) is not None or store.is_pending(group_id, topic, partition):
            records.append((OffsetKey(group_id, topic, partition), None))
    return NONE, errors, records


def delete_consumer_group_records(group: ConsumerGroup, store: OffsetStore) -> tuple[ErrorCode, list]:
    if group.members:
        return ErrorCode.non_empty_group, []
    records = [(OffsetKey(group.group_id, t, p), None) for t, p in store.partitions_to_delete(group.group_id)]
    return NONE, records + [(ConsumerGroupKey(group.group_id), None)]


def consumer_expiry_records(group: ConsumerGroup, store: OffsetStore, now_wall: int, retention_ms: int) -> list:
    """Offsets of topics the group does not subscribe to (all, once it is empty) expire
    ``retention_ms`` after their commit; an empty group left without offsets is deleted."""
    offsets = store.of_group(group.group_id)
    subscribed = group.subscribed_topics() if group.members else set()
    expired = [(t, p) for (t, p), value in offsets.items()
               if t not in subscribed and value.commit_timestamp + retention_ms <= now_wall
               and not store.is_pending(group.group_id, t, p)]
    records = [(OffsetKey(group.group_id, t, p), None) for t, p in sorted(expired)]
    if not group.members and len(expired) == len(offsets) and not store.has_pending(group.group_id):
        records.append((ConsumerGroupKey(group.group_id), None))
    return records


def delete_group_records(group: Group | None, store: OffsetStore) -> tuple[ErrorCode, list]:
    """DeleteGroups of one group: tombstones for its offsets, then for the group."""
    if group is None or group.state == DEAD:
        return ErrorCode.group_id_not_found, []
    if group.state != EMPTY:
        return ErrorCode.non_empty_group, []
    records = [(OffsetKey(group.group_id, t, p), None) for t, p in store.partitions_to_delete(group.group_id)]
    return NONE, records + [(GroupKey(group.group_id), None)]


def expiry_records(group: Group, store: OffsetStore, now_wall: int, retention_ms: int) -> list:
    """Tombstones for expired offsets, and for the group if it is Empty and left without any."""
    offsets = store.of_group(group.group_id)
    base = _expiry_base(group)
    expired = [] if base is None else [
        (topic, partition) for (topic, partition), value in offsets.items()
        if base(topic, value) is not None and base(topic, value) + retention_ms <= now_wall
        and not store.is_pending(group.group_id, topic, partition)]
    records = [(OffsetKey(group.group_id, t, p), None) for t, p in sorted(expired)]
    if (group.state == EMPTY and not group.pending and len(expired) == len(offsets)
            and not store.has_pending(group.group_id)):
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
