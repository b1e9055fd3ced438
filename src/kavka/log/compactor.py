"""The compaction cleaner's copy: an offset map of the dirty range, then cleaned segments.

Theory of operation
-------------------
Input (a :class:`CleanJob`, made on the event loop by kavka.log.cleaner): the
partition's closed segments from the first one on, each as a
:class:`FileSlice` of its whole file (the slice holds the fd open, so
retention or a topic deletion meanwhile cannot pull the bytes away), plus the
dirty range ``[first_dirty, end)``.

1. Offset map: every keyed record of a data batch in the dirty range sets
   ``map[key] = offset``, so afterwards the map holds each key's newest
   offset below ``end``; batches of aborted transactions are skipped
   (kavka.log.txn_cleaning).  Keys longer than 16 bytes are stored as a 16-byte
   BLAKE2b digest (Kafka stores MD5s).  When the map would outgrow
   ``max_map_entries`` it stops at a batch boundary; that offset (``map_end``)
   is where the next cleaning starts.
2. Copy: segments whose base offset is below ``map_end`` are grouped into runs
   whose total size fits ``segment.bytes`` (and whose offsets fit a segment's
   i32 relative offsets), and each run is copied into one new segment with the
   run's first base offset, named ``*.cleaned``.  A record is kept unless a
   newer offset of its key is in the map, it has no key, or it is a tombstone
   whose batch's delete horizon has passed.  Per batch:

   * nothing dropped: the original bytes are copied as they are;
   * some dropped: the survivors are re-encoded with the batch's codec and its
     baseOffset, lastOffsetDelta, producer id/epoch/base sequence, leader
     epoch, timestamp type and transactional flag, so offsets keep their gaps
     and sequence numbers still line up;
   * all dropped: the batch goes, except the last batch of an idempotent
     producer, kept as an empty batch (header only) so that producer state
     rebuilt from the log still knows the producer's last sequence;
   * transactions (kavka.log.txn_cleaning): a batch of an aborted
     transaction loses all its records; a marker whose transaction left no
     batch gets a delete horizon and goes at the first cleaning after it; the
     ``.txnindex`` of a cleaned segment holds the entries of the abort
     markers it keeps whose batches the walk met;
   * a batch whose records do not decode (CRC mismatch, corrupt compressed
     data, or records inflating past ``max.uncompressed.message.bytes``: a
     decompression bomb stored before the limit, or through a topic that was
     not compacted then) is copied unchanged too and adds no key to the map.
     It was acknowledged, so it is kept rather than dropped; the cleaning goes
     on and counts it (``CleanResult.undecodable``, logged by the cleaner).

   Tombstones (null values) survive ``delete.retention.ms`` after the first
   cleaning that sees them: that cleaning stamps the batch with a delete
   horizon (attribute bit 6, baseTimestamp = now + delete.retention.ms; record
   timestamp deltas are relative to it, so record timestamps do not change),
   and a cleaning at or after the horizon drops them.
3. Each new segment is fsynced before the job returns; swapping it in is the
   partition log's job (PartitionLog.replace_segments, on the event loop).

Runs outside the event loop (a child process, kavka.log.cleaner_process, or a
thread): touches no PartitionLog state, reads only the slices and writes only
its own ``*.cleaned`` files, which an opening log deletes.
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping

from crc32c import crc32c

from kavka.clock import Clock
from kavka.config import TopicConfig
from kavka.log.errors import LogCorrupted, LogError
from kavka.log.file_slice import FileSlice
from kavka.log.partition_dir import CLEANED_SUFFIX
from kavka.log.segment import Segment
from kavka.log.txn_cleaning import ProducerTail, TxnScan
from kavka.log.txn_index import AbortedTxn
from kavka.protocol import records as rb
from kavka.protocol.control_records import read_marker
from kavka.protocol.record_codec import Record, decode_records, encode_batch
from kavka.protocol.records import InvalidBatch

READ_CHUNK = 4 << 20
INT32_MAX = 2**31 - 1
MAX_RAW_KEY = 16
_TAIL = struct.Struct(">hiqqqhii")  # attributes .. recordsCount: bytes 21..61 of a batch
_LAST_DELTA = struct.Struct(">i")
_ATTRIBUTES = struct.Struct(">h")


class CleanerAborted(LogError):
    """The broker is shutting down: the job stopped and removed its files."""


@dataclass(frozen=True, slots=True)
class SourceSegment:
    base_offset: int
    next_offset: int
    data: FileSlice

    @property
    def size(self) -> int:
        return self.data.size


@dataclass(frozen=True)
class CleanJob:
    topic: str
    partition: int
    path: Path
    config: TopicConfig
    segments: tuple[SourceSegment, ...]  # closed segments, from the first one on
    first_dirty: int
    end: int                             # first offset that may not be cleaned
    now_ms: int
    producer_tails: Mapping[int, ProducerTail] = field(default_factory=dict)
    max_map_entries: int = 1 << 20
    aborted: tuple[AbortedTxn, ...] = ()  # the .txnindex entries overlapping the segments


@dataclass
class CleanedGroup:
    first: int       # index in job.segments
    count: int
    segment: Segment


@dataclass
class CleanResult:
    map_end: int
    groups: list[CleanedGroup] = field(default_factory=list)
    bytes_read: int = 0      # offset-map scan plus the copy
    bytes_cleaned: int = 0   # size of the segments copied
    bytes_written: int = 0
    records_read: int = 0
    records_kept: int = 0
    next_horizon: int | None = None  # earliest delete horizon of a kept tombstone
    seconds: float = 0.0
    undecodable: int = 0     # batches kept as they are because their records do not decode
    undecodable_reason: str = ""  # why the first one did not

    def discard(self) -> None:
        """Close and unlink the cleaned segments not swapped in."""
        for group in self.groups:
            discard_segment(group.segment)
        self.groups = []


def compact(job: CleanJob, clock: Clock, abort: threading.Event | None = None,
            hook: Callable[[str], None] | None = None) -> CleanResult:
    """Build the offset map and the cleaned segments (see the module doc)."""
    started = time.perf_counter()
    step = hook or (lambda _name: None)
    stop = abort or threading.Event()
    offset_map, map_end, scanned = build_offset_map(job, stop)
    step("map")
    result = CleanResult(map_end, bytes_read=scanned)
    scan = TxnScan(job.aborted)
    try:
        for first, count in group_segments(job, map_end):
            segment = _clean_group(job, job.segments[first:first + count], offset_map, scan, clock, stop, result)
            result.groups.append(CleanedGroup(first, count, segment))
            step("cleaned")
    except BaseException:
        result.discard()
        raise
    result.seconds = time.perf_counter() - started
    return result


def _pause(stop: threading.Event) -> None:
    """Between batches: stop if asked."""
    if stop.is_set():
        raise CleanerAborted("the cleaner is stopping")


# -- the offset map ------------------------------------------------------------------------

def map_key(key: bytes) -> bytes:
    return key if len(key) <= MAX_RAW_KEY else hashlib.blake2b(key, digest_size=16).digest()


def build_offset_map(job: CleanJob, stop: threading.Event) -> tuple[dict[bytes, int], int, int]:
    """(key -> newest offset in [first_dirty, map_end), map_end, bytes scanned)."""
    offset_map: dict[bytes, int] = {}
    scanned = 0
    aborted = TxnScan(job.aborted).ranges
    for source in job.segments:
        if source.next_offset <= job.first_dirty or source.base_offset >= job.end:
            continue
        for buf, pos, header in iter_batches(source.data):
            _pause(stop)
            if header.last_offset < job.first_dirty or header.is_control:
                continue
            if header.base_offset >= job.end:
                return offset_map, job.end, scanned
            if offset_map and len(offset_map) + header.records_count > job.max_map_entries:
                return offset_map, max(header.base_offset, job.first_dirty), scanned
            scanned += header.size
            if aborted.covering(header) is not None:
                continue
            for record in _decode_or_none(job, buf, pos, None) or ():
                if job.first_dirty <= record.offset < job.end and record.key is not None:
                    offset_map[map_key(record.key)] = record.offset
    return offset_map, job.end, scanned


def _decode_or_none(job: CleanJob, buf: bytes, pos: int, result: CleanResult | None) -> list[Record] | None:
    """The batch's records, or None (counted in ``result``) when they do not decode."""
    try:
        return decode_records(buf, pos, job.config.max_uncompressed_bytes)
    except InvalidBatch as exc:
        if result is not None:
            if not result.undecodable:
                header = rb.read_header(buf, pos)
                result.undecodable_reason = f"batch at offset {header.base_offset}: {exc}"
            result.undecodable += 1
        return None


def iter_batches(piece: FileSlice) -> Iterator[tuple[bytes, int, rb.BatchHeader]]:
    """(buffer, position, header) of every batch of a slice, read a few MB at a time."""
    done = 0
    while done < piece.size:
        buf = FileSlice(piece.fd, piece.position + done, min(READ_CHUNK, piece.size - done)).read()
        pos = 0
        while (size := rb.peek_size(buf, pos)) is not None and pos + size <= len(buf):
            if size < rb.HEADER_SIZE:
                raise LogCorrupted(f"bad batch length {size} at {piece.position + done + pos}")
            yield buf, pos, rb.read_header(buf, pos)
            pos += size
        if pos == 0:  # one batch larger than a chunk
            size = rb.peek_size(buf)
            if size is None or size < rb.HEADER_SIZE or done + size > piece.size:
                raise LogCorrupted(f"torn batch at {piece.position + done}")
            buf = FileSlice(piece.fd, piece.position + done, size).read()
            yield buf, 0, rb.read_header(buf)
            pos = size
        done += pos


# -- grouping and copying ------------------------------------------------------------------

def group_segments(job: CleanJob, map_end: int) -> list[tuple[int, int]]:
    """(first index, count) runs of the segments below ``map_end``, each fitting segment.bytes."""
    limit = job.config.segment_bytes
    groups: list[tuple[int, int]] = []
    i, segments = 0, job.segments
    while i < len(segments) and segments[i].base_offset < map_end:
        j, size = i + 1, segments[i].size
        while (j < len(segments) and segments[j].base_offset < map_end and size + segments[j].size <= limit
               and segments[j].next_offset - 1 - segments[i].base_offset <= INT32_MAX):
            size += segments[j].size
            j += 1
        groups.append((i, j - i))
        i = j
    return groups


def _clean_group(job: CleanJob, sources, offset_map: dict[bytes, int], scan: TxnScan, clock: Clock,
                 stop: threading.Event, result: CleanResult) -> Segment:
    segment = Segment.create(job.path, sources[0].base_offset, job.config, clock, suffix=CLEANED_SUFFIX)
    try:
        for source in sources:
            result.bytes_read += source.size
            result.bytes_cleaned += source.size
            for buf, pos, header in iter_batches(source.data):
                _pause(stop)
                if header.is_control:
                    out, entry = _clean_control(job, buf, pos, header, scan, result)
                else:
                    out, entry = _clean_batch(job, buf, pos, header, offset_map, scan, result), None
                if out is not None:
                    segment.append(out, rb.read_header(out))
                    result.bytes_written += len(out)
                if entry is not None:
                    segment.txn_index.append(entry)
        segment.flush()
    except BaseException:
        discard_segment(segment)
        raise
    return segment


def _clean_batch(job: CleanJob, buf: bytes, pos: int, header: rb.BatchHeader,
                 offset_map: dict[bytes, int], scan: TxnScan, result: CleanResult) -> bytes | None:
    """The data batch as it goes into the cleaned segment, or None to drop it."""
    original = buf[pos:pos + header.size]
    if scan.data_batch(header):  # aborted: not even decoded
        result.records_read += header.records_count
        return _empty_batch(header) if _is_tail(job, header) else None
    items = _decode_or_none(job, buf, pos, result)
    if items is None:
        return original
    horizon = header.base_timestamp if header.attributes & rb.ATTR_DELETE_HORIZON else None
    kept = [r for r in items if _retain(r, offset_map, horizon, job.now_ms)]
    result.records_read += len(items)
    result.records_kept += len(kept)
    has_tombstone = any(r.value is None for r in kept)
    if has_tombstone and horizon is None:
        horizon = job.now_ms + job.config["delete.retention.ms"]
    elif not has_tombstone:
        horizon = None
    if has_tombstone:
        _note_horizon(result, horizon)
    if not kept:
        return _empty_batch(header) if _is_tail(job, header) else None
    stamped = bool(header.attributes & rb.ATTR_DELETE_HORIZON)
    if len(kept) == len(items) and stamped == (horizon is not None):
        return original
    return _rebuild(header, kept, horizon)


def _clean_control(job: CleanJob, buf: bytes, pos: int, header: rb.BatchHeader, scan: TxnScan,
                   result: CleanResult) -> tuple[bytes | None, AbortedTxn | None]:
    """A control batch as it goes into the cleaned segment (None: dropped), and the
    .txnindex entry the segment keeps for it (kavka.log.txn_cleaning)."""
    original = buf[pos:pos + header.size]
    items = _decode_or_none(job, buf, pos, result)
    if items is None:
        return original, None
    try:
        marker = read_marker(original) if items else None
    except InvalidBatch:
        return original, None
    decision = scan.control_batch(header, marker, empty=not items)
    if not decision.discardable:
        return original, decision.entry
    if not items:  # emptied after its horizon: kept only while it is a producer's tail
        return (original if _is_tail(job, header) else None), None
    horizon = header.base_timestamp if header.attributes & rb.ATTR_DELETE_HORIZON else None
    if horizon is not None and job.now_ms >= horizon:
        return (_empty_batch(header) if _is_tail(job, header) else None), None
    if horizon is None:
        horizon = job.now_ms + job.config["delete.retention.ms"]
        original = _rebuild(header, items, horizon)
    _note_horizon(result, horizon)
    return original, None


def _is_tail(job: CleanJob, header: rb.BatchHeader) -> bool:
    """The batch producer state rebuilt from the log needs: kept, emptied if need be."""
    tail = job.producer_tails.get(header.producer_id) if header.has_producer_id else None
    return tail is not None and tail.keeps(header)


def _note_horizon(result: CleanResult, horizon: int) -> None:
    result.next_horizon = horizon if result.next_horizon is None else min(result.next_horizon, horizon)


def _retain(record: Record, offset_map: dict[bytes, int], horizon: int | None, now_ms: int) -> bool:
    if record.key is None:
        return False  # keyless records cannot be compacted; Kafka drops them too
    if offset_map.get(map_key(record.key), -1) > record.offset:
        return False
    return record.value is not None or horizon is None or now_ms < horizon


def _rebuild(header: rb.BatchHeader, kept: list[Record], horizon: int | None) -> bytes:
    batch = bytearray(encode_batch(
        kept, base_offset=header.base_offset, codec=header.compression, producer_id=header.producer_id,
        producer_epoch=header.producer_epoch, base_sequence=header.base_sequence,
        partition_leader_epoch=header.partition_leader_epoch, transactional=header.is_transactional,
        control=header.is_control, log_append_time=header.max_timestamp if header.log_append_time else None,
        base_timestamp=horizon))
    _LAST_DELTA.pack_into(batch, 23, header.last_offset_delta)  # the original span: offsets keep their gaps
    if horizon is not None:
        (attributes,) = _ATTRIBUTES.unpack_from(batch, 21)
        _ATTRIBUTES.pack_into(batch, 21, attributes | rb.ATTR_DELETE_HORIZON)
    struct.pack_into(">I", batch, 17, crc32c(memoryview(batch)[rb.CRC_START:]))
    return bytes(batch)


def _empty_batch(header: rb.BatchHeader) -> bytes:
    """A header-only batch with the original offsets and producer fields, no records."""
    attributes = header.attributes & (rb.ATTR_TIMESTAMP_TYPE | rb.ATTR_TRANSACTIONAL | rb.ATTR_CONTROL)
    tail = _TAIL.pack(attributes, header.last_offset_delta, header.base_timestamp, header.max_timestamp,
                      header.producer_id, header.producer_epoch, header.base_sequence, 0)
    head = struct.pack(">qiibI", header.base_offset, len(tail) + rb.CRC_START - rb.LOG_OVERHEAD,
                       header.partition_leader_epoch, rb.MAGIC, crc32c(tail))
    return head + tail


def discard_segment(segment: Segment) -> None:
    """Close a cleaned segment that will not be swapped in and unlink its files."""
    paths = [segment.log_path, segment.offset_index.path, segment.time_index.path, segment.txn_index.path]
    segment.close()
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
