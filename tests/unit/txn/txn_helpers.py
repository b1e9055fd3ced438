"""An in-memory ``__transaction_state`` journal and a coordinator on a manual clock."""

from __future__ import annotations

import itertools

from kavka.clock import ManualClock
from kavka.internal_topics import coordinator_partition
from kavka.txn.coordinator import TransactionCoordinator, TxnConfig
from kavka.txn.log_format import decode_key, decode_value, encode_key, encode_value

PARTITIONS = 4


class MemoryJournal:
    """Records kept encoded, so every test also goes through the log format."""

    def __init__(self, partitions: int = PARTITIONS) -> None:
        self.partitions = partitions
        self.logs: dict[int, list[tuple[bytes, bytes | None]]] = {p: [] for p in range(partitions)}
        self.led = set(range(partitions))
        self.epochs = {p: 0 for p in range(partitions)}
        self.failing = False

    def partition_for(self, transactional_id: str) -> int:
        return coordinator_partition(transactional_id, self.partitions)

    def leads(self, partition: int) -> bool:
        return partition in self.led

    def coordinator_epoch(self, partition: int) -> int:
        return self.epochs[partition]

    def append(self, partition, records):
        if self.failing:
            return None
        log = self.logs[partition]
        log.extend((encode_key(tid), encode_value(meta)) for tid, meta in records)
        return len(log)

    def read_partition(self, partition):
        for key, value in self.logs[partition]:
            tid = decode_key(key)
            yield tid, decode_value(tid, value)


class CountingIds:
    def __init__(self, start: int = 1000) -> None:
        self._ids = itertools.count(start)

    def allocate(self) -> int:
        return next(self._ids)


def offsets_partition(group_id: str) -> tuple[str, int]:
    return ("__consumer_offsets", coordinator_partition(group_id, 50))


def make_coordinator(journal: MemoryJournal | None = None, clock: ManualClock | None = None,
                     config: TxnConfig = TxnConfig(), loaded: bool = True):
    journal = journal or MemoryJournal()
    clock = clock or ManualClock()
    coordinator = TransactionCoordinator(config, clock, journal, CountingIds(), offsets_partition)
    if loaded:
        for partition in range(journal.partitions):
            coordinator.load_partition(partition)
    return coordinator, journal, clock
