"""The internal topic ``__consumer_offsets`` as the coordinator's journal.

``append`` writes one operation's records as one batch to the group's
partition (so an operation is all or nothing: a batch is the unit the log
appends and recovers).  The batch goes straight to the partition's log, not
through produce validation: it is built here, always keyed, without a
producer id, and checking it again cost half of a commit (Kafka's coordinator
appends with a trusted origin likewise).
``read_all`` yields every record of every partition in offset order, for the
coordinator to replay at startup.  The topic is created on first use with
``offsets.topic.num.partitions`` partitions and ``cleanup.policy=compact``; an
existing topic keeps its partition count (changing it would move groups).

Reading never stops the broker from starting: a record whose key or value
cannot be decoded (written by a newer broker, or damaged) is skipped with one
warning naming its topic-partition-offset, and a batch whose records cannot
be read at all is skipped whole; after ``SKIPS_LOGGED`` such lines per
partition only a count is logged at the end.  The records around them load as
usual.  Clients cannot write here (kavka.internal_topics), so such records
come from the disk or from another program writing the log files.
"""

from __future__ import annotations

import logging
from typing import Iterator

from kavka.group.log_format import (
    Key, Value, decode_key, decode_value, encode_key, encode_value, partition_for,
)
from kavka.internal_topics import OFFSETS_TOPIC
from kavka.protocol.record_codec import encode_batch, iter_records
from kavka.protocol.records import iter_batches

log = logging.getLogger("kavka.group")

TOPIC = OFFSETS_TOPIC
READ_CHUNK = 1 << 20
SKIPS_LOGGED = 20  # warnings per partition and load; the rest are counted


class OffsetsTopic:
    def __init__(self, logs, partitions: int, segment_bytes: int, clock, leads=None) -> None:
        """``leads(partition) -> bool``: in a cluster, whether this broker leads that
        partition (the cluster creates the topic); None: a lone broker, which leads all."""
        self._logs = logs
        self._wanted_partitions = partitions
        self._segment_bytes = segment_bytes
        self._clock = clock
        self._leads = leads

    @property
    def partitions(self) -> int:
        info = self._logs.topic(TOPIC)
        return info.partitions if info is not None else self._wanted_partitions

    def partition_for(self, group_id: str) -> int:
        return partition_for(group_id, self.partitions)

    def is_local(self, group_id: str) -> bool:
        """Whether this broker leads the group's partition (a lone broker leads all)."""
        if self._leads is not None:
            return self._logs.topic(TOPIC) is not None and self._leads(self.partition_for(group_id))
        if self._logs.topic(TOPIC) is None:
            return True  # created here on first write
        return self._logs.partition(TOPIC, self.partition_for(group_id)) is not None

    def append(self, group_id: str, records: list[tuple[Key, Value]]) -> tuple[int, int] | None:
        """Append one batch; (partition, offset after it), which a cluster waits to see
        replicated before answering."""
        if not records:
            return None
        now = self._clock.now_ms()
        batch = encode_batch([(encode_key(k), encode_value(v), now, ()) for k, v in records])
        index = self.partition_for(group_id)
        partition = self._partition(index)
        info = partition.append_internal(bytearray(batch), now)  # a disk error: StorageError, nothing written
        return index, info.last_offset + 1

    def read_all(self) -> Iterator[tuple[Key, Value]]:
        if self._logs.topic(TOPIC) is None or self._leads is not None:
            return  # in a cluster, partitions are read as this broker comes to lead them
        for index in range(self.partitions):
            yield from self.read_partition(index)

    def read_partition(self, index: int) -> Iterator[tuple[Key, Value]]:
        partition = self._logs.partition(TOPIC, index)
        if partition is not None:
            yield from _read_partition(partition.log, index)

    def _partition(self, index: int):
        if self._logs.topic(TOPIC) is None:
            self._logs.create_topic(TOPIC, self._wanted_partitions, {
                "cleanup.policy": "compact", "segment.bytes": str(self._segment_bytes)})
            log.info("created %s with %d partitions", TOPIC, self._wanted_partitions)
        return self._logs.partition(TOPIC, index)


class _Skips:
    """One warning per unreadable record, up to SKIPS_LOGGED; then a count at the end."""

    def __init__(self, index: int) -> None:
        self.index, self.count = index, 0

    def skip(self, offset: int, what: str, exc: BaseException) -> None:
        self.count += 1
        if self.count <= SKIPS_LOGGED:
            log.warning("skipping unreadable %s at %s-%d offset %d: %s: %s", what, TOPIC, self.index, offset,
                        type(exc).__name__, exc)

    def summary(self) -> None:
        if self.count > SKIPS_LOGGED:
            log.warning("skipped %d unreadable records/batches in %s-%d (%d not logged one by one)",
                        self.count, TOPIC, self.index, self.count - SKIPS_LOGGED)


def _read_partition(plog, index: int = 0) -> Iterator[tuple[Key, Value]]:
    # Up to the log end, not the high watermark: a new leader's HW catches up only as its
    # followers fetch, and what its log holds is what the group's history is from now on.
    skips = _Skips(index)
    offset, end = plog.log_start_offset, plog.log_end_offset
    while offset < end:
        read = plog.read(offset, READ_CHUNK, max_offset=end, min_one_batch=True)
        if not read.slices:
            break
        data = b"".join(piece.read() for piece in read.slices)
        before = offset
        for pos, header in iter_batches(data):
            if not header.is_control:
                yield from _decode_batch(data, pos, header, offset, skips)
            offset = max(offset, header.next_offset)
        if offset == before:   # no whole batch where one should start: nothing more is readable
            log.warning("%s-%d: no readable batch at offset %d (log end %d); loaded what came before",
                        TOPIC, index, offset, end)
            break
    skips.summary()


def _decode_batch(data: bytes, pos: int, header, from_offset: int, skips: _Skips) -> Iterator[tuple[Key, Value]]:
    try:
        records = list(iter_records(data, pos, pos + header.size))
    except Exception as exc:  # a damaged batch: its framing or compression does not parse
        skips.skip(header.base_offset, "batch", exc)
        return
    for record in records:
        if record.offset < from_offset or record.key is None:
            continue
        try:
            key = decode_key(record.key)
            value = decode_value(key, record.value)
        except Exception as exc:  # unknown versions (UnknownRecord) and damaged bytes alike
            skips.skip(record.offset, "record", exc)
            continue
        yield key, value
