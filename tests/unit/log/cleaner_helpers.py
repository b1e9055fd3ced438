"""Helpers for the compaction tests: a LogManager with compacted topics, keyed writes, read-back."""

from __future__ import annotations

from kavka.clock import ManualClock
from kavka.config import BrokerConfig
from kavka.log.cleaner import LogCleaner
from kavka.log.log_manager import LogManager
from kavka.log.partition_log import PartitionLog
from kavka.protocol import records
from kavka.protocol.record_codec import decode_records, encode_batch

T0 = 1_700_000_000_000
COMPACT = {"cleanup.policy": "compact", "segment.bytes": "700", "min.cleanable.dirty.ratio": "0",
           "delete.retention.ms": "1000", "index.interval.bytes": "100"}


class Env:
    """A LogManager in ``directory`` with one compacted topic ``t`` and a cleaner."""

    def __init__(self, directory, overrides: dict | None = None, broker: dict | None = None,
                 clock: ManualClock | None = None) -> None:
        self.clock = clock or ManualClock(T0)
        self.directory = directory
        self.broker_config = BrokerConfig.from_strings(broker or {})
        self.manager = LogManager(directory, self.broker_config, self.clock)
        self.manager.load()
        if self.manager.topic("t") is None:
            self.manager.create_topic("t", 1, {**COMPACT, **(overrides or {})})
        self.cleaner = LogCleaner(self.manager, self.broker_config, self.clock)

    @property
    def partition(self):
        return self.manager.partition("t", 0)

    @property
    def log(self) -> PartitionLog:
        return self.partition.log

    def write(self, *pairs, codec: int = 0, producer: tuple[int, int, int] | None = None):
        """Append one batch of (key, value) pairs (value None = tombstone), timestamped now."""
        now = self.clock.now_ms()
        pid, epoch, seq = producer or (-1, -1, -1)
        batch = encode_batch([(k, v, now, ()) for k, v in pairs], codec=codec, producer_id=pid,
                             producer_epoch=epoch, base_sequence=seq)
        return self.partition.append_records(bytearray(batch), 9, now)

    def reopen(self) -> None:
        self.manager.close()
        self.__init__(self.directory)

    def close(self) -> None:
        self.manager.close()


def read_all(plog: PartitionLog) -> list[tuple[int, bytes, bytes | None]]:
    """(offset, key, value) of every record from the log start, in offset order."""
    return [(r.offset, r.key, r.value) for r in read_records(plog)]


def read_records(plog: PartitionLog):
    out = []
    data = b"".join(s.read() for s in plog.read(plog.log_start_offset, 1 << 30).slices)
    for pos, header in records.iter_batches(data):
        if not header.is_control:
            out.extend(decode_records(data, pos))
    return out


def read_batches(plog: PartitionLog) -> list[records.BatchHeader]:
    data = b"".join(s.read() for s in plog.read(plog.log_start_offset, 1 << 30).slices)
    return [h for _, h in records.iter_batches(data)]


def latest(entries) -> dict[bytes, bytes]:
    """Fold (offset, key, value) entries into the table they describe (tombstones delete)."""
    table: dict[bytes, bytes] = {}
    for _, key, value in entries:
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    return table


def is_subsequence(small, big) -> bool:
    it = iter(big)
    return all(any(x == y for y in it) for x in small)
