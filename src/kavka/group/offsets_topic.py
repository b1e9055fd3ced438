"""The internal topic ``__consumer_offsets`` as the group coordinator's journal.

A :class:`~kavka.log.coordinator_journal.CoordinatorJournal` (one batch per operation,
created on first use, compacted, unreadable records skipped with a warning) with the
group's records (``log_format``) and Kafka's partitioning by group id.  ``read_all`` yields
every record of every partition in offset order, with the producer id of its batch, and the
transaction markers between them (``JournalRecord``/``JournalMarker``), for the coordinator
to replay at startup; the topic has ``offsets.topic.num.partitions`` partitions.  A
transactional offset commit is appended as a batch of its producer (``producer``), which
the transaction's marker ends.
"""

from __future__ import annotations

import logging
from typing import Iterator

from kavka.group.log_format import Key, Value, decode_key, decode_value, encode_key, encode_value
from kavka.internal_topics import OFFSETS_TOPIC
from kavka.log.coordinator_journal import CoordinatorJournal, JournalMarker, JournalRecord

log = logging.getLogger("kavka.group")

TOPIC = OFFSETS_TOPIC


class _GroupRecords:
    @staticmethod
    def encode(key: Key, value: Value) -> tuple[bytes, bytes | None]:
        return encode_key(key), encode_value(value)

    @staticmethod
    def decode(key: bytes, value: bytes | None) -> tuple[Key, Value]:
        decoded = decode_key(key)
        return decoded, decode_value(decoded, value)


class OffsetsTopic:
    def __init__(self, logs, partitions: int, segment_bytes: int, clock, leads=None) -> None:
        """``leads(partition) -> bool``: in a cluster, whether this broker leads that
        partition (the cluster creates the topic); None: a lone broker, which leads all."""
        self._journal = CoordinatorJournal(logs, TOPIC, partitions, segment_bytes, clock, _GroupRecords(),
                                           leads, logger=log)

    @property
    def partitions(self) -> int:
        return self._journal.partitions

    def partition_for(self, group_id: str) -> int:
        return self._journal.partition_for(group_id)

    def is_local(self, group_id: str) -> bool:
        """Whether this broker leads the group's partition (a lone broker leads all)."""
        return self._journal.leads(self.partition_for(group_id))

    def append(self, group_id: str, records: list[tuple[Key, Value]],
               producer: tuple[int, int] | None = None, guard=None) -> tuple[int, int] | None:
        """Append one batch (of ``producer`` (id, epoch)'s transaction, if given, with its
        verification ``guard``); (partition, offset after it), which a cluster waits to see
        replicated before answering."""
        index = self.partition_for(group_id)
        end = self._journal.append(index, records, producer, guard)
        return None if end is None else (index, end)

    def read_all(self) -> Iterator[JournalRecord | JournalMarker]:
        if self._journal.in_cluster:
            return  # in a cluster, partitions are read as this broker comes to lead them
        for index in range(self.partitions):
            yield from self.read_partition(index)

    def read_partition(self, index: int) -> Iterator[JournalRecord | JournalMarker]:
        yield from self._journal.read_entries(index)
