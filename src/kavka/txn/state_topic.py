"""The internal topic ``__transaction_state`` as the transaction coordinator's journal.

A :class:`~kavka.log.coordinator_journal.CoordinatorJournal` with the records of
``log_format``: ``transaction.state.log.num.partitions`` partitions (50), a transactional
id on ``coordinator_partition(id, n)``.  The coordinator epoch Kafka writes into every
marker is the leader epoch of the id's partition (0 on a lone broker), so a partition can
tell a deposed coordinator's late markers from its successor's.  In a cluster nothing is
appended while the partition's ISR is below its ``min.insync.replicas``
(``writable``), as Kafka's acks=all append refuses NOT_ENOUGH_REPLICAS before writing: the
coordinator then changes nothing and its client retries.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterator

from kavka.internal_topics import TRANSACTION_STATE_TOPIC
from kavka.log.coordinator_journal import CoordinatorJournal
from kavka.txn.log_format import decode_key, decode_value, encode_key, encode_value
from kavka.txn.model import TxnMetadata

log = logging.getLogger("kavka.txn")

TOPIC = TRANSACTION_STATE_TOPIC


class _TxnRecords:
    @staticmethod
    def encode(transactional_id: str, meta: TxnMetadata | None) -> tuple[bytes, bytes | None]:
        return encode_key(transactional_id), encode_value(meta)

    @staticmethod
    def decode(key: bytes, value: bytes | None) -> tuple[str, TxnMetadata | None]:
        transactional_id = decode_key(key)
        return transactional_id, decode_value(transactional_id, value)


class TransactionStateTopic:
    def __init__(self, logs, partitions: int, segment_bytes: int, clock,
                 leads: Callable[[int], bool] | None = None,
                 leader_epoch: Callable[[int], int] = lambda _index: 0,
                 writable: Callable[[int], bool] = lambda _index: True) -> None:
        self._journal = CoordinatorJournal(logs, TOPIC, partitions, segment_bytes, clock, _TxnRecords(),
                                           leads, logger=log)
        self._leader_epoch = leader_epoch
        self._writable = writable

    @property
    def partitions(self) -> int:
        return self._journal.partitions

    def partition_for(self, transactional_id: str) -> int:
        return self._journal.partition_for(transactional_id)

    def leads(self, partition: int) -> bool:
        return self._journal.leads(partition)

    def coordinator_epoch(self, partition: int) -> int:
        return self._leader_epoch(partition)

    def append(self, partition: int, records: list[tuple[str, TxnMetadata | None]]) -> int | None:
        if not self._writable(partition):
            log.warning("%s-%d: too few in-sync replicas; the coordinator's write is refused", TOPIC, partition)
            return None
        return self._journal.append(partition, records)

    def read_partition(self, partition: int) -> Iterator[tuple[str, TxnMetadata | None]]:
        yield from self._journal.read_partition(partition)
