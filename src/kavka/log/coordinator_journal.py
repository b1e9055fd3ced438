"""An internal, compacted topic as a coordinator's journal (``__consumer_offsets``,
``__transaction_state``).

``append`` writes one operation's records as one batch to one partition (so an operation
is all or nothing: a batch is the unit the log appends and recovers).  The batch goes
straight to the partition's log, not through produce validation: it is built here, always
keyed, without a producer id, and checking it again cost half of a group commit (Kafka's
coordinators append with a trusted origin likewise).  The topic is created on first use
with its configured partition count and ``cleanup.policy=compact``; an existing topic keeps
its partition count (changing it would move every key).

Reading never stops the broker from starting: a record whose key or value cannot be
decoded (written by a newer broker, or damaged) is skipped with one warning naming its
topic-partition-offset, and a batch whose records cannot be read at all is skipped whole;
after ``SKIPS_LOGGED`` such lines per partition only a count is logged at the end.  The
records around them load as usual.  Clients cannot write here (kavka.internal_topics), so
such records come from the disk or from another program writing the log files.

Transactional offset commits (TxnOffsetCommit) make the group coordinator's journal hold
transactions too: ``append(..., producer=(id, epoch))`` writes a transactional batch, which
the partition's producer table opens as any other, and the transaction coordinator's marker
later ends it.  ``read_entries`` yields what a coordinator replays, in log order: each
record with the producer id of its batch (NO_PRODUCER_ID outside transactions) and each
marker (:class:`JournalMarker`), so a restart rebuilds the pending offsets a marker has not
ended yet.  ``read_partition`` yields the (key, value) pairs alone, for a coordinator that
writes no transactions (``__transaction_state``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol

from kavka.internal_topics import coordinator_partition
from kavka.log.errors import InvalidProducerEpoch
from kavka.log.producer_state import VerificationGuard
from kavka.protocol.control_records import NO_SEQUENCE, read_marker
from kavka.protocol.record_codec import encode_batch, iter_records
from kavka.protocol.records import InvalidBatch, iter_batches

log = logging.getLogger("kavka.log")

READ_CHUNK = 1 << 20
SKIPS_LOGGED = 20  # warnings per partition and load; the rest are counted
NO_PRODUCER_ID = -1


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One record as its coordinator wrote it, with its batch's producer id."""
    key: Any
    value: Any
    producer_id: int = NO_PRODUCER_ID


@dataclass(frozen=True, slots=True)
class JournalMarker:
    """A transaction marker: ``producer_id``'s transaction ended in ``partition`` (commit or abort)."""
    partition: int
    producer_id: int
    commit: bool


class RecordCodec(Protocol):
    """A coordinator's records: its keys and values to bytes and back."""
    def encode(self, key: Any, value: Any) -> tuple[bytes, bytes | None]: ...
    def decode(self, key: bytes, value: bytes | None) -> tuple[Any, Any]: ...


class CoordinatorJournal:
    def __init__(self, logs, topic: str, partitions: int, segment_bytes: int, clock,
                 codec: RecordCodec, leads: Callable[[int], bool] | None = None,
                 logger: logging.Logger = log) -> None:
        """``leads(partition) -> bool``: in a cluster, whether this broker leads that
        partition (the cluster creates the topic); None: a lone broker, which leads all.
        ``logger``: the coordinator's, which names the topic's trouble."""
        self.log = logger
        self.topic = topic
        self._logs = logs
        self._wanted_partitions = partitions
        self._segment_bytes = segment_bytes
        self._clock = clock
        self._codec = codec
        self._leads = leads

    @property
    def partitions(self) -> int:
        info = self._logs.topic(self.topic)
        return info.partitions if info is not None else self._wanted_partitions

    @property
    def in_cluster(self) -> bool:
        return self._leads is not None

    def partition_for(self, key: str) -> int:
        return coordinator_partition(key, self.partitions)

    def leads(self, index: int) -> bool:
        """Whether this broker writes ``index`` (a lone broker creates the topic on first write)."""
        if self._leads is not None:
            return self._logs.topic(self.topic) is not None and self._leads(index)
        if self._logs.topic(self.topic) is None:
            return True
        return self._logs.partition(self.topic, index) is not None

    def append(self, index: int, records: list[tuple[Any, Any]],
               producer: tuple[int, int] | None = None, guard: VerificationGuard | None = None) -> int | None:
        """Append one batch to partition ``index``; the offset after it, which a cluster
        waits to see replicated before answering.  ``producer`` (id, epoch): a batch of
        that producer's transaction (no sequence, as Kafka's coordinators write them);
        an epoch older than the partition's producer table knows raises
        InvalidProducerEpoch (a fenced producer's late write, which Kafka's log refuses too);
        ``guard``: the transaction verification that batch must bring (Partition.append_internal).
        A disk error raises StorageError with nothing written."""
        if not records:
            return None
        now = self._clock.now_ms()
        entries = [(*self._codec.encode(k, v), now, ()) for k, v in records]
        partition = self._partition(index)
        if producer is None:
            batch = encode_batch(entries)
        else:
            _check_epoch(partition, *producer)
            batch = encode_batch(entries, producer_id=producer[0], producer_epoch=producer[1],
                                 base_sequence=NO_SEQUENCE, transactional=True)
        info = partition.append_internal(bytearray(batch), now, guard)
        return info.last_offset + 1

    def read_entries(self, index: int) -> Iterator[JournalRecord | JournalMarker]:
        """Records and markers of partition ``index`` in log order (module doc)."""
        partition = self._logs.partition(self.topic, index)
        if partition is not None:
            yield from self._read(partition.log, index)

    def read_partition(self, index: int) -> Iterator[tuple[Any, Any]]:
        """The (key, value) of every record, markers left out."""
        for entry in self.read_entries(index):
            if isinstance(entry, JournalRecord):
                yield entry.key, entry.value

    def _partition(self, index: int):
        if self._logs.topic(self.topic) is None:
            self._logs.create_topic(self.topic, self._wanted_partitions, {
                "cleanup.policy": "compact", "segment.bytes": str(self._segment_bytes)})
            self.log.info("created %s with %d partitions", self.topic, self._wanted_partitions)
        return self._logs.partition(self.topic, index)

    def _read(self, plog, index: int) -> Iterator[JournalRecord | JournalMarker]:
        # Up to the log end, not the high watermark: a new leader's HW catches up only as its
        # followers fetch, and what its log holds is the coordinator's history from now on.
        skips = _Skips(self.log, self.topic, index)
        offset, end = plog.log_start_offset, plog.log_end_offset
        while offset < end:
            read = plog.read(offset, READ_CHUNK, max_offset=end, min_one_batch=True)
            if not read.slices:
                break
            data = b"".join(piece.read() for piece in read.slices)
            before = offset
            for pos, header in iter_batches(data):
                if header.is_control:
                    if header.base_offset >= offset:
                        yield from self._decode_marker(data, pos, header, index, skips)
                else:
                    yield from self._decode_batch(data, pos, header, offset, skips)
                offset = max(offset, header.next_offset)
            if offset == before:   # no whole batch where one should start: nothing more is readable
                self.log.warning("%s-%d: no readable batch at offset %d (log end %d); loaded what came before",
                            self.topic, index, offset, end)
                break
        skips.summary()

    @staticmethod
    def _decode_marker(data: bytes, pos: int, header, index: int, skips: "_Skips") -> Iterator[JournalMarker]:
        try:
            marker = read_marker(memoryview(data)[pos : pos + header.size])
        except InvalidBatch as exc:
            skips.skip(header.base_offset, "marker", exc)
            return
        if marker is not None:  # None: compaction emptied it, or not a commit/abort marker
            yield JournalMarker(index, header.producer_id, marker.commit)

    def _decode_batch(self, data: bytes, pos: int, header, from_offset: int,
                      skips: "_Skips") -> Iterator[JournalRecord]:
        try:
            records = list(iter_records(data, pos, pos + header.size))
        except Exception as exc:  # a damaged batch: its framing or compression does not parse
            skips.skip(header.base_offset, "batch", exc)
            return
        producer_id = header.producer_id if header.is_transactional else NO_PRODUCER_ID
        for record in records:
            if record.offset < from_offset or record.key is None:
                continue
            try:
                key, value = self._codec.decode(record.key, record.value)
            except Exception as exc:  # unknown versions and damaged bytes alike
                skips.skip(record.offset, "record", exc)
                continue
            yield JournalRecord(key, value, producer_id)


def _check_epoch(partition, producer_id: int, producer_epoch: int) -> None:
    entry = partition.producers.producers.get(producer_id)
    if entry is not None and producer_epoch < entry.epoch:
        raise InvalidProducerEpoch(f"producer {producer_id} sent epoch {producer_epoch}, older than its "
                                   f"current epoch {entry.epoch} in {partition.topic}-{partition.index}")


class _Skips:
    """One warning per unreadable record, up to SKIPS_LOGGED; then a count at the end."""

    def __init__(self, logger: logging.Logger, topic: str, index: int) -> None:
        self.log, self.topic, self.index, self.count = logger, topic, index, 0

    def skip(self, offset: int, what: str, exc: BaseException) -> None:
        self.count += 1
        if self.count <= SKIPS_LOGGED:
            self.log.warning("skipping unreadable %s at %s-%d offset %d: %s: %s", what, self.topic, self.index,
                        offset, type(exc).__name__, exc)

    def summary(self) -> None:
        if self.count > SKIPS_LOGGED:
            self.log.warning("skipped %d unreadable records/batches in %s-%d (%d not logged one by one)",
                        self.count, self.topic, self.index, self.count - SKIPS_LOGGED)
