"""The log of one partition: an ordered list of segments plus its offsets.

Theory of operation
-------------------
Files: segments plus small checkpoints in ``<data_dir>/<topic>-<partition>/``
(layout and what opening does with leftovers: kavka.log.partition_dir).

Offsets, always ``log_start_offset <= high_watermark <= log_end_offset``:

* log start offset (``_log_start``; not Kafka's "LSO", which is the last stable
  offset below): first offset a reader may ask for; max(first segment
  base, the ``log-start-offset`` file), moved by retention and DeleteRecords.
* high watermark (HW): end of what consumers may read.  By default it follows
  the log end offset on every append (single broker); ``hw_follows_leo=False``
  leaves it to ``advance_high_watermark`` (replication).
* log end offset (LEO): the next offset to assign.
* last stable offset (LSO, Kafka's meaning): end of what read_committed
  consumers may read, min(HW, first unstable offset), never below the log start.
  The first unstable offset (the earliest open or not yet replicated
  transaction) comes from the partition's producer state, which
  kavka.log.partition hands in as ``transactions``; without one LSO = HW.

Aborted transactions: each segment keeps the transactions aborted by markers
in it in its ``.txnindex`` (kavka.log.txn_index); :meth:`PartitionLog.aborted_transactions`
answers a read_committed fetch from them.  The partition adds the entries
(``add_aborted_txn``) and, when it rebuilds its producer state, rebuilds the
entries of the replayed offsets (``truncate_txn_indexes``).

Append (leader): offsets are assigned by patching ``baseOffset`` in place to
the LEO and ``partitionLeaderEpoch`` to the current epoch (neither is covered
by the CRC), so the batch is written as received with one ``os.write``.  The
active segment is rolled first when the batch would push it past
``segment.bytes``, when it has spanned more than ``segment.ms`` (in record time:
the new batch's maxTimestamp minus the first batch's, as Kafka does) or when an
offset would not fit its i32 relative offsets.

Read: bisect the segment base offsets, then ``Segment.read`` per segment; the
result is a list of :class:`FileSlice` of whole batches for sendfile.

Lookup by timestamp: the first segment whose max timestamp reaches the target,
its time index, a header scan, then the records of one batch are decoded.

Crash: the broker calls ``open(recover=True)`` after an unclean shutdown;
segments wholly below the ``recovery-point`` (written by ``flush`` after the
fsyncs) are trusted unless their ``.log`` was modified after that checkpoint
file, the others re-validated and cut at the first torn or
corrupt batch (kavka.log.partition_dir).  Missing or inconsistent index files
are rebuilt even on a clean open.  Checkpoints that name offsets about to be
rewritten (recovery point, log start offset) are lowered before the rewrite.

Deleting segments from the front (retention, DeleteRecords; which ones:
kavka.log.retention) removes them from the list, moves the log start offset to
the first kept segment and persists it, and only then renames their files to
``*.deleted`` and unlinks them (at once: Kafka waits ``file.delete.delay.ms``
for readers, which the shared fd below makes unnecessary here).  Opening after
a crash in between unlinks the ``*.deleted`` leftovers and deletes segments
wholly below the persisted log start offset, so no deleted record comes back
and the log start offset never goes down.  The ``.log`` fd is closed
only when the last :class:`FileSlice` read from it is released (reference
counting in FileHandle), so a fetch response being sent keeps valid data.

Not thread-safe: one event-loop thread owns a partition.  ``flush`` may run in
a worker thread while appends continue (it snapshots LEO first), but not
concurrently with truncation, retention or close.
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
import uuid
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol

from kavka.clock import Clock
from kavka.config import TopicConfig
from kavka.log import checkpoint
from kavka.log.errors import CorruptRecord, LogError, OffsetOutOfRange
from kavka.log.leader_epoch import LeaderEpochCache
from kavka.log.file_slice import FileSlice
from kavka.log.partition_dir import (
    EPOCH_FILE, LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE, SWAP_SUFFIX, finish_leftovers, load_segments,
    mtime_ns,
)
from kavka.log.retention import RetentionDecision, deletable_segments
from kavka.log.segment import Segment, validate_stored
from kavka.log.txn_index import AbortedTxn
from kavka.protocol import records
from kavka.protocol.control_records import EndTxnMarker, read_marker
from kavka.protocol.record_codec import decode_records
from kavka.protocol.records import BatchHeader

log = logging.getLogger("kavka.log")

INT32_MAX = 2**31 - 1
_LAST_DELTA_AND_MAX_TS = struct.Struct(">i8xq")  # batch bytes 23..43


class UnexpectedAppendOffset(LogError):
    """A follower batch would go below the log end offset (storage-internal)."""


@dataclass(frozen=True, slots=True)
class AppendInfo:
    base_offset: int
    last_offset: int
    log_append_time_ms: int  # -1 for CreateTime topics
    log_start_offset: int


class TransactionBound(Protocol):
    """What the LSO needs from the producer state (kavka.log.producer_state)."""

    def first_unstable_offset(self, high_watermark: int) -> int | None: ...


@dataclass(frozen=True, slots=True)
class ReadResult:
    slices: list[FileSlice]
    high_watermark: int
    log_start_offset: int
    log_end_offset: int
    # No batch read starts at or after it: the upper bound for aborted_transactions
    # (the end of the read, or of the last segment read from, as Kafka bounds it).
    upper_bound: int = 0

    @property
    def size(self) -> int:
        return sum(s.size for s in self.slices)


class PartitionLog:
    def __init__(self, path: Path, topic: str, partition: int, config: TopicConfig, clock: Clock,
                 segments: list[Segment], epochs: LeaderEpochCache, log_start_offset: int,
                 recovery_point: int, hw_follows_leo: bool) -> None:
        self.path, self.topic, self.partition, self._clock = path, topic, partition, clock
        self._segments = segments
        self._bases = [s.base_offset for s in segments]
        self._active = segments[-1]
        self._epochs = epochs
        self._leo = self._active.next_offset
        self._log_start = min(log_start_offset, self._leo)
        self._hw = self._leo if hw_follows_leo else self._log_start
        self._recovery_point = min(recovery_point, self._leo)
        self.hw_follows_leo = hw_follows_leo
        self.transactions: TransactionBound | None = None
        self.listeners: list[Callable[[PartitionLog], None]] = []
        self._closed = False
        self._unflushed_records = 0
        self._last_flush_ms = clock.now_ms()
        self.update_config(config)

    @classmethod
    def open(cls, path: Path, topic: str, partition: int, config: TopicConfig, clock: Clock,
             recover: bool, *, hw_follows_leo: bool = True,
             verify_newer_than_ns: int | None = None) -> "PartitionLog":
        path.mkdir(parents=True, exist_ok=True)
        finish_leftovers(path, config, clock)
        persisted_log_start = checkpoint.read_offset(path / LOG_START_OFFSET_FILE) or 0
        recovery_point = checkpoint.read_offset(path / RECOVERY_POINT_FILE)
        if recover and verify_newer_than_ns is None:
            # Segments below the recovery point were fsynced before the checkpoint was
            # written: one modified after it was changed behind the broker's back.
            verify_newer_than_ns = mtime_ns(path / RECOVERY_POINT_FILE)
        segments = load_segments(path, config, clock, recover, recovery_point, verify_newer_than_ns)
        if not segments:
            segments = [Segment.create(path, persisted_log_start, config, clock)]
        epochs = LeaderEpochCache.load(path / EPOCH_FILE)
        log = cls(path, topic, partition, config, clock, segments, epochs or LeaderEpochCache(path / EPOCH_FILE),
                  max(segments[0].base_offset, persisted_log_start),
                  segments[0].base_offset if recovery_point is None else recovery_point, hw_follows_leo)
        if persisted_log_start > log._leo:
            # DeleteRecords reached offsets whose data a crash then lost: never hand
            # out those offsets again, start empty at the log start offset.
            log._truncate_fully_and_start_at(persisted_log_start)
        log._drop_segments_below_start()
        if epochs is None:
            log._rebuild_epochs()
        log._epochs.truncate_from_end(log._leo)
        return log

    def update_config(self, config: TopicConfig) -> None:
        self.config = config
        self._segment_bytes = config.segment_bytes
        self._segment_ms = config.segment_ms
        self._log_append_time = config.log_append_time
        self._flush_messages = config["flush.messages"]
        self._flush_ms = config["flush.ms"]
        for segment in self._segments:
            segment.index_interval_bytes = config.index_interval_bytes

    # -- offsets -------------------------------------------------------------------------

    @property
    def log_start_offset(self) -> int:
        return self._log_start

    @property
    def first_stored_offset(self) -> int:
        """Base offset of the first segment: batches below the log start offset may remain."""
        return self._bases[0]

    @property
    def high_watermark(self) -> int:
        return self._hw

    @property
    def log_end_offset(self) -> int:
        return self._leo

    @property
    def recovery_point(self) -> int:
        return self._recovery_point

    @property
    def last_stable_offset(self) -> int:
        """Kafka's LSO: read_committed consumers read below it (module doc)."""
        hw = self._hw
        first = None if self.transactions is None else self.transactions.first_unstable_offset(hw)
        return hw if first is None else max(self._log_start, min(hw, first))

    def advance_high_watermark(self, offset: int) -> None:
        """Move the HW forward to ``offset`` (never back; truncation lowers it)."""
        if not self._log_start <= offset <= self._leo:
            raise ValueError(f"high watermark {offset} outside [{self._log_start}, {self._leo}]")
        self._hw = max(self._hw, offset)

    # -- append --------------------------------------------------------------------------

    def append(self, batch: bytearray, leader_epoch: int | None = None, now_ms: int | None = None) -> AppendInfo:
        """Append one validated batch as leader: assign offsets, stamp epoch (and time)."""
        epoch = self._epoch_for_append(leader_epoch)
        now = self._clock.now_ms() if now_ms is None else now_ms
        base = self._leo
        records.patch_base_offset(batch, 0, base)
        records.patch_leader_epoch(batch, 0, epoch)
        if self._log_append_time:
            records.set_log_append_time(batch, 0, now)
        last_delta, max_ts = _LAST_DELTA_AND_MAX_TS.unpack_from(batch, 23)  # no full header: hot path
        self._append_batch(batch, base, base + last_delta, max_ts, now)
        return AppendInfo(base, base + last_delta, now if self._log_append_time else -1, self._log_start)

    def append_as_follower(self, data: bytes | bytearray | memoryview) -> AppendInfo:
        """Append batches that already carry offsets and epochs (replication).

        Offsets must not go back (compaction may leave gaps, so base >= LEO)."""
        view = memoryview(data)
        first, last, now = -1, -1, self._clock.now_ms()
        for position, _ in records.iter_batches(view):
            try:
                header = validate_stored(view, position)
            except records.InvalidBatch as e:
                raise CorruptRecord(str(e)) from e
            if header.base_offset < self._leo:
                raise UnexpectedAppendOffset(f"batch at {header.base_offset} is below the log end {self._leo}")
            if header.partition_leader_epoch > self._epochs.latest_epoch:
                self._epochs.assign(header.partition_leader_epoch, header.base_offset)
            self._append_batch(view[position : position + header.size], header.base_offset, header.last_offset,
                               header.max_timestamp, now)
            first = header.base_offset if first < 0 else first
            last = header.last_offset
        return AppendInfo(first, last, -1, self._log_start)

    def _append_batch(self, batch, base: int, last: int, max_ts: int, now: int) -> None:
        segment = self._active
        if segment.size and (segment.size + len(batch) > self._segment_bytes
                             or segment.time_waited_for_roll(now, max_ts) > self._segment_ms
                             or last - segment.base_offset > INT32_MAX):
            segment = self.roll()
        segment.append_raw(batch, base, last, max_ts)  # all or nothing (kavka.log.segment)
        self._leo = last + 1
        self._unflushed_records += last - base + 1
        if (self._unflushed_records >= self._flush_messages
                or now - self._last_flush_ms >= self._flush_ms):
            try:
                self.flush()  # before the append is acknowledged: flush.messages=1 means fsync per batch
            except OSError:
                self._undo_last_append(segment, base)
                raise
        if self.hw_follows_leo:
            self._hw = self._leo
        assert self._log_start <= self._hw <= self._leo
        for listener in self.listeners:
            listener(self)

    def _undo_last_append(self, segment: Segment, base: int) -> None:
        """The fsync after an append failed: the batch is not acknowledged, so it goes
        (best effort: on a failed filesystem the cut may fail too, and the directory
        goes offline; recovery at the next start then keeps what the disk holds)."""
        self._leo = base
        try:
            segment.truncate_to(base)
        except OSError:
            pass

    def roll(self) -> Segment:
        """Start a new active segment at the LEO (no-op while the active one is empty)."""
        if self._active.is_empty:
            return self._active
        segment = Segment.create(self.path, self._leo, self.config, self._clock)
        self._segments.append(segment)
        self._bases.append(segment.base_offset)
        self._active = segment
        return segment

    # -- read ----------------------------------------------------------------------------

    def read(self, offset: int, max_bytes: int, max_offset: int | None = None,
             min_one_batch: bool = True) -> ReadResult:
        """Whole batches from the one holding ``offset``; none at or beyond ``max_offset``."""
        log_start, leo = self._log_start, self._leo
        if offset < log_start or offset > leo:
            raise OffsetOutOfRange(
                f"offset {offset} is outside [{log_start}, {leo}] of {self.topic}-{self.partition}")
        end = leo if max_offset is None else min(max_offset, leo)
        slices: list[FileSlice] = []
        upper = offset
        if offset < end:
            upper = self._collect(offset, max_bytes, end, min_one_batch, slices)
        return ReadResult(slices, self._hw, log_start, leo, upper)

    def _collect(self, offset: int, max_bytes: int, end: int, min_one: bool, out: list[FileSlice]) -> int:
        """Fill ``out``; returns an offset no read batch reaches (the end of the last
        segment read from, at most ``end``)."""
        last, last_position = self._limit(end)
        remaining = max_bytes
        for i in range(self._segment_index(offset), last + 1):
            segment = self._segments[i]
            max_position = last_position if i == last else None
            piece = segment.read(offset, remaining, max_position)
            if piece is None:
                continue
            if piece.size > remaining and (out or not min_one):
                return min(end, self._segment_end(i))
            out.append(piece)
            remaining -= piece.size
            stop = segment.size if max_position is None else max_position
            if remaining <= 0 or piece.position + piece.size < stop:
                return min(end, self._segment_end(i))
        return end

    def _segment_end(self, i: int) -> int:
        return self._bases[i + 1] if i + 1 < len(self._bases) else self._leo

    def _limit(self, end: int) -> tuple[int, int | None]:
        """(last segment index, byte limit in it) so that nothing at offset >= end is read."""
        if end >= self._leo:
            return len(self._segments) - 1, None
        i = self._segment_index(end)
        found = self._segments[i].translate_offset(end)
        return i, None if found is None else found[0]

    def _segment_index(self, offset: int) -> int:
        return max(0, bisect_right(self._bases, offset) - 1)

    def offset_for_timestamp(self, timestamp: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record at or after the log start with timestamp >= target."""
        log_start = self._log_start
        for segment in self._segments[self._segment_index(log_start):]:
            found = segment.find_offset_by_timestamp(timestamp)
            if found is None:
                continue
            for position, header in segment.iter_headers(found[0]):
                if header.max_timestamp < timestamp or header.last_offset < log_start:
                    continue
                try:
                    for record in decode_records(segment.read_bytes(position, header.size)):
                        if record.offset >= log_start and record.timestamp >= timestamp:
                            return record.offset, record.timestamp
                except records.InvalidBatch as exc:
                    # Records that do not decode (the batch's CRC held): answer at batch
                    # granularity, which never skips a record the consumer should see.
                    log.warning("%s: batch at offset %d has records that do not decode (%s); "
                                "answering its first offset for timestamp %d", f"{self.topic}-{self.partition}", header.base_offset,
                                exc, timestamp)
                    return max(header.base_offset, log_start), header.max_timestamp
        return None

    def max_timestamp_entry(self) -> tuple[int, int]:
        """(offset, timestamp) of the first record with the largest timestamp; (-1, -1) if none."""
        best = None
        for segment in self._segments:
            if segment.max_timestamp >= 0 and (best is None or segment.max_timestamp > best.max_timestamp):
                best = segment
        if best is None:
            return -1, -1
        position, _ = best.translate_offset(best.offset_of_max_timestamp)
        header = records.read_header(best.read_bytes(position, records.HEADER_SIZE))
        try:
            for record in decode_records(best.read_bytes(position, header.size)):
                if record.timestamp == best.max_timestamp:
                    return record.offset, record.timestamp
        except records.InvalidBatch as exc:
            log.warning("%s: batch at offset %d has records that do not decode (%s)", f"{self.topic}-{self.partition}",
                        header.base_offset, exc)
        return header.last_offset, best.max_timestamp  # maxTimestamp field disagrees with its records

    def iter_batch_headers(self, from_offset: int | None = None) -> Iterator[tuple[int, BatchHeader]]:
        """(base offset, header) of every batch from the one holding ``from_offset`` (default: the log start)."""
        start = self._log_start if from_offset is None else from_offset
        for segment in list(self._segments[self._segment_index(start):]):
            found = segment.translate_offset(start)
            if found is not None:
                for _, header in segment.iter_headers(found[0]):
                    yield header.base_offset, header

    def iter_replay(self, from_offset: int) -> Iterator[tuple[BatchHeader, EndTxnMarker | None]]:
        """(header, marker) of every batch from the one holding ``from_offset``; the marker of
        a control batch is read from its record (None for data batches and for control
        batches without a marker), for rebuilding producer state (kavka.log.producer_state)."""
        for segment in list(self._segments[self._segment_index(from_offset):]):
            found = segment.translate_offset(from_offset)
            if found is None:
                continue
            for position, header in segment.iter_headers(found[0]):
                if header.is_control:
                    yield header, self.marker_of(segment.read_bytes(position, header.size), header)
                else:
                    yield header, None

    def marker_of(self, batch, header: BatchHeader) -> EndTxnMarker | None:
        """The marker in the stored batch ``batch`` (None for a data batch, and for a
        control batch that holds none or does not decode, which is logged)."""
        if not header.is_control:
            return None
        try:
            return read_marker(batch)
        except records.InvalidBatch as exc:
            log.warning("%s-%d: control batch at offset %d does not decode (%s); ignoring it",
                        self.topic, self.partition, header.base_offset, exc)
            return None

    # -- aborted transactions ------------------------------------------------------------

    def add_aborted_txn(self, txn: AbortedTxn) -> None:
        """Record an aborted transaction in the segment holding its marker."""
        self._segments[self._segment_index(txn.last_offset)].txn_index.append(txn)

    def aborted_transactions(self, start_offset: int, end_offset: int) -> list[tuple[int, int]]:
        """(producer id, first offset) of the aborted transactions overlapping
        [start_offset, end_offset), in marker order (Kafka's collectAbortedTransactions)."""
        return [(txn.producer_id, txn.first_offset) for txn in self.aborted_txns_overlapping(start_offset, end_offset)]

    def aborted_txns_overlapping(self, start_offset: int, end_offset: int) -> list[AbortedTxn]:
        """The .txnindex entries of every segment overlapping [start_offset, end_offset), for
        the cleaner (its markers may lie beyond the range)."""
        found: list[AbortedTxn] = []
        for segment in self._segments[self._segment_index(start_offset):]:
            entries, complete = segment.txn_index.collect(start_offset, end_offset)
            found += entries
            if complete:
                break
        return found

    def truncate_txn_indexes(self, offset: int) -> None:
        """Drop the aborted-transaction entries of markers at or after ``offset`` (before
        a replay from there adds them again)."""
        for segment in self._segments[self._segment_index(offset):]:
            segment.txn_index.truncate_to(offset)

    def txn_index_rebuild_from(self) -> int | None:
        """Base offset of the first segment whose .txnindex may miss entries (it did not
        load, or the segment was recovered); None when all are trusted."""
        return next((s.base_offset for s in self._segments if s.txn_index_suspect), None)

    def txn_indexes_rebuilt(self) -> None:
        for segment in self._segments:
            segment.txn_index_suspect = False

    # -- leader epochs -------------------------------------------------------------------

    @property
    def leader_epoch(self) -> int:
        return self._epochs.latest_epoch

    def leader_epoch_entries(self) -> list[tuple[int, int]]:
        return self._epochs.entries()

    def assign_leader_epoch(self, epoch: int) -> None:
        """Become leader in ``epoch``: its records start at the current LEO."""
        if epoch < self._epochs.latest_epoch:
            raise ValueError(f"leader epoch {epoch} is older than {self._epochs.latest_epoch}")
        self._epochs.assign(epoch, self._leo)

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        return self._epochs.end_offset_for(epoch, self._leo)

    def _epoch_for_append(self, leader_epoch: int | None) -> int:
        latest = self._epochs.latest_epoch
        if leader_epoch is None or leader_epoch == latest:
            return latest
        self.assign_leader_epoch(leader_epoch)
        return leader_epoch

    def _rebuild_epochs(self) -> None:
        for base, header in self.iter_batch_headers(self._log_start):
            epoch = header.partition_leader_epoch
            if epoch > self._epochs.latest_epoch:
                self._epochs.assign(epoch, max(base, self._log_start), persist=False)
        self._epochs.persist()

    # -- truncation and deletion ---------------------------------------------------------

    def truncate_to(self, offset: int) -> None:
        """Drop every batch holding an offset >= ``offset`` (follower divergence)."""
        if offset >= self._leo:
            return
        if offset < self._log_start:
            return self._truncate_fully_and_start_at(offset)
        while len(self._segments) > 1 and self._active.base_offset >= offset:
            self._drop_last_segment()
        self._active.truncate_to(offset)
        self._leo = self._active.next_offset
        if self._log_start > self._leo:  # a dropped batch straddled both offsets
            self._log_start = self._leo
            checkpoint.write_offset(self.path / LOG_START_OFFSET_FILE, self._log_start)
        self._hw = min(self._hw, self._leo)
        self._lower_recovery_point(self._leo)
        self._epochs.truncate_from_end(self._leo)

    def _lower_recovery_point(self, offset: int) -> None:
        """Offsets at or above ``offset`` will be rewritten: they are not flushed any more."""
        if offset < self._recovery_point:
            self._recovery_point = offset
            checkpoint.write_offset(self.path / RECOVERY_POINT_FILE, offset)

    def _drop_last_segment(self) -> None:
        segment = self._segments.pop()
        self._bases.pop()
        self._active = self._segments[-1]
        segment.delete()

    def restart_at(self, offset: int) -> None:
        """Drop everything and continue at ``offset`` (a follower whose leader's log now
        starts after this one ends)."""
        self._truncate_fully_and_start_at(offset)

    def _truncate_fully_and_start_at(self, offset: int) -> None:
        doomed, self._segments = self._segments, []
        for segment in doomed:
            segment.delete()
        self._active = Segment.create(self.path, offset, self.config, self._clock)
        self._segments, self._bases = [self._active], [offset]
        self._log_start = self._hw = self._leo = offset
        self._recovery_point = offset
        checkpoint.write_offset(self.path / RECOVERY_POINT_FILE, offset)
        checkpoint.write_offset(self.path / LOG_START_OFFSET_FILE, offset)
        self._epochs.clear()

    def delete_segments_before(self, offset: int) -> int:
        """Delete whole segments holding only offsets < min(offset, HW); returns how many.

        Unlike retention this may take the active segment too (after a roll)."""
        limit = min(offset, self._hw)
        segments, n = self._segments, 0
        while n + 1 < len(segments) and segments[n + 1].base_offset <= limit:
            n += 1  # the next segment starts at or below the limit (a cleaned one may be empty)
        if n + 1 == len(segments) and not segments[n].is_empty and segments[n].next_offset <= limit:
            n += 1  # the active one too
        self._delete_leading(n)
        return n

    def delete_oldest_segment(self) -> bool:
        return self.delete_segments_before(self._segments[0].next_offset) > 0

    def apply_retention(self, now_ms: int) -> RetentionDecision:
        """Delete the closed segments retention.ms / retention.bytes / the log start offset expire."""
        decision = deletable_segments(self._segments, self.config, now_ms, self._hw, self._log_start)
        if decision:
            self._delete_leading(decision.count)
        return decision

    def _delete_leading(self, n: int) -> None:
        """Drop the first ``n`` segments, crash-safely and without disturbing readers.

        Order: out of the segment list; the log start offset moved to the first
        kept segment and persisted; only then are the files renamed ``*.deleted``
        and unlinked.  A crash before the checkpoint leaves the segments in
        place (nothing was deleted); after it, reopening deletes every segment
        wholly below the persisted start (``_drop_segments_below_start``).
        Slices already handed to fetches keep the old fd (kavka.log.file_slice).
        """
        if n >= len(self._segments):
            self.roll()  # there is always an active segment
            n = min(n, len(self._segments) - 1)
        if n <= 0:
            return
        doomed = self._segments[:n]
        del self._segments[:n], self._bases[:n]
        new_log_start = max(self._log_start, self._segments[0].base_offset)
        if new_log_start != self._log_start:
            checkpoint.write_offset(self.path / LOG_START_OFFSET_FILE, new_log_start)
            self._log_start = new_log_start
            self._epochs.truncate_from_start(new_log_start)
        for segment in doomed:
            segment.delete()

    def _drop_segments_below_start(self) -> None:
        """At open: finish a deletion that persisted the log start offset and then died."""
        n = 0
        while n + 1 < len(self._segments) and self._segments[n + 1].base_offset <= self._log_start:
            n += 1
        self._delete_leading(n)

    def replace_segments(self, old: list[Segment], new: Segment, hook: Callable[[str], None] | None = None) -> bool:
        """Swap in the cleaner's ``new`` segment (files ``*.cleaned``) for the closed ``old`` ones.

        False, changing nothing, when ``old`` is no longer a run of this log's
        closed segments (retention, DeleteRecords or truncation got there first).
        Crash-safe order: rename ``new`` to ``*.swap`` (the commit point: an
        opening log completes a swap, kavka.log.partition_dir), swap the list,
        delete the old files, rename ``new`` to its final names.  Slices of the
        old segments still being sent keep their fds.  ``hook(step)`` is for
        crash tests.
        """
        step = hook or (lambda _name: None)
        first = next((i for i, s in enumerate(self._segments) if s is old[0]), None)
        if (self._closed or first is None or first + len(old) >= len(self._segments)
                or any(a is not b for a, b in zip(self._segments[first:first + len(old)], old))
                or new.base_offset != old[0].base_offset):
            return False
        new.rename_files(SWAP_SUFFIX)
        checkpoint.fsync_directory(self.path)
        step("swap")
        self._segments[first:first + len(old)] = [new]
        self._bases[first:first + len(old)] = [new.base_offset]
        for segment in old:
            segment.delete()
        step("deleted")
        new.rename_files("")
        step("renamed")
        return True

    def set_log_start_offset(self, offset: int) -> None:
        """DeleteRecords: make offsets below ``offset`` unreadable (persisted)."""
        if offset > self._hw:
            raise OffsetOutOfRange(f"log start offset {offset} is above the high watermark {self._hw}")
        if offset <= self._log_start:
            return
        checkpoint.write_offset(self.path / LOG_START_OFFSET_FILE, offset)
        self._log_start = offset
        self._epochs.truncate_from_start(offset)
        self.delete_segments_before(offset)

    # -- whole-log accessors and lifecycle -----------------------------------------------

    @property
    def segments(self) -> list[Segment]:
        return list(self._segments)

    @property
    def active_base_offset(self) -> int:
        """Base offset of the segment appends go to (changes when the log rolls)."""
        return self._segments[-1].base_offset

    @property
    def size_bytes(self) -> int:
        return sum(s.size for s in self._segments)

    def flush(self) -> None:
        """fsync everything up to the current LEO, then record it as the recovery point."""
        leo = self._leo
        self._unflushed_records = 0
        self._last_flush_ms = self._clock.now_ms()
        if not checkpoint.syncs_deferred():  # bulk close: one syncfs for all (kavka.log.checkpoint)
            for segment in self._segments[self._segment_index(self._recovery_point):]:
                segment.flush()
        checkpoint.fsync_directory(self.path)
        if leo != self._recovery_point or not (self.path / RECOVERY_POINT_FILE).exists():
            checkpoint.write_offset(self.path / RECOVERY_POINT_FILE, leo)
            self._recovery_point = leo

    def close(self) -> None:
        """Flush and close every fd; a second call (or one after delete) does nothing."""
        if self._closed:
            return
        try:
            self.flush()
        finally:  # a failed disk must not keep the fds open
            for segment in self._segments:
                segment.close()
            self._closed = True

    def delete(self) -> None:
        """Remove the partition: rename the directory aside (atomic), then delete it."""
        doomed = self.path.with_name(f"{self.path.name}.{uuid.uuid4().hex}-delete")
        os.rename(self.path, doomed)
        for segment in self._segments:
            segment.release()
        self._closed = True
        shutil.rmtree(doomed)
        for listener in list(self.listeners):  # parked fetches answer now (is_closed)
            listener(self)

    @property
    def is_closed(self) -> bool:
        """Closed or deleted: reads would meet released fds (EBADF)."""
        return self._closed

    def __repr__(self) -> str:
        return (f"PartitionLog({self.topic}-{self.partition}, log_start={self._log_start}, hw={self._hw}, "
                f"leo={self._leo}, segments={len(self._segments)})")
