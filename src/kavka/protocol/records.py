"""RecordBatch v2 (magic 2): a view over batch bytes, validation and in-place patching.

Byte layout of one batch (all integers big-endian)::

    offset  size  field
    0       8     baseOffset            patched in place by the broker
    8       4     batchLength           bytes from offset 12 to the end of the batch
    12      4     partitionLeaderEpoch  patched in place by the broker
    16      1     magic                 must be 2
    17      4     crc                   CRC-32C (Castagnoli) of bytes 21..end
    21      2     attributes            bits 0-2 codec, 3 LogAppendTime, 4 transactional,
                                        5 control, 6 delete horizon set
    23      4     lastOffsetDelta
    27      8     baseTimestamp
    35      8     maxTimestamp
    43      8     producerId
    51      2     producerEpoch
    53      4     baseSequence
    57      4     recordsCount
    61      ...   records (one compressed blob when a codec is set)

Because the CRC starts at ``attributes``, the broker can overwrite ``baseOffset``
and ``partitionLeaderEpoch`` without re-checksumming: the hot path never decodes
records.  Setting LogAppendTime changes ``attributes``/``maxTimestamp`` and so
needs a new CRC (:func:`set_log_append_time`).

This module does no I/O.  Record-level decoding and compression live in
:mod:`kavka.protocol.record_codec`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterator

from crc32c import crc32c

HEADER_SIZE = 61
LOG_OVERHEAD = 12  # baseOffset + batchLength: what precedes the length-counted part
MAGIC = 2
CRC_START = 21

ATTR_CODEC_MASK = 0x07
ATTR_TIMESTAMP_TYPE = 0x08
ATTR_TRANSACTIONAL = 0x10
ATTR_CONTROL = 0x20
ATTR_DELETE_HORIZON = 0x40

NO_PRODUCER_ID = -1

_HEADER = struct.Struct(">qiiBIhiqqqhii")
_OFFSET = struct.Struct(">q")
_EPOCH = struct.Struct(">i")
_MAX_TS = struct.Struct(">q")
_ATTR = struct.Struct(">h")
_CRC = struct.Struct(">I")
_LEN_AT_8 = struct.Struct(">qi")


class InvalidBatch(ValueError):
    """The bytes are not a well-formed v2 batch; ``reason`` says which rule failed."""


class CorruptBatch(InvalidBatch):
    """The batch's CRC-32C does not match its contents."""


@dataclass(frozen=True, slots=True)
class BatchHeader:
    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        """Total bytes of the batch on the wire and on disk."""
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> int:
        return self.attributes & ATTR_CODEC_MASK

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & ATTR_CONTROL)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & ATTR_TRANSACTIONAL)

    @property
    def log_append_time(self) -> bool:
        return bool(self.attributes & ATTR_TIMESTAMP_TYPE)

    @property
    def has_producer_id(self) -> bool:
        return self.producer_id >= 0

    @property
    def last_sequence(self) -> int:
        """Sequence of the last record; sequences wrap at 2**31 - 1."""
        return (self.base_sequence + self.last_offset_delta) % 0x80000000


def read_header(buf, pos: int = 0) -> BatchHeader:
    """Parse the 61-byte header at ``pos``; raises InvalidBatch when it is short."""
    if len(buf) - pos < HEADER_SIZE:
        raise InvalidBatch(f"batch header needs {HEADER_SIZE} bytes, {len(buf) - pos} available")
    return BatchHeader(*_HEADER.unpack_from(buf, pos))


def peek_size(buf, pos: int = 0) -> int | None:
    """Total size of the batch starting at ``pos``, or None if fewer than 12 bytes remain."""
    if len(buf) - pos < LOG_OVERHEAD:
        return None
    return _LEN_AT_8.unpack_from(buf, pos)[1] + LOG_OVERHEAD


def compute_crc(buf, pos: int, size: int) -> int:
    return crc32c(memoryview(buf)[pos + CRC_START : pos + size])


def validate(buf, pos: int = 0, end: int | None = None) -> BatchHeader:
    """Check one batch at ``pos`` is structurally sound and its CRC matches.

    Raises CorruptBatch on a CRC mismatch (Kafka: CORRUPT_MESSAGE) and
    InvalidBatch for everything else (Kafka: INVALID_RECORD / CORRUPT_MESSAGE
    depending on the caller).
    """
    end = len(buf) if end is None else end
    header = read_header(buf, pos)
    size = header.size
    if header.batch_length < HEADER_SIZE - LOG_OVERHEAD:
        raise InvalidBatch(f"batch length {header.batch_length} is shorter than a batch header")
    if pos + size > end:
        raise InvalidBatch(f"batch of {size} bytes runs past the end of its buffer ({end - pos} bytes)")
    if header.magic != MAGIC:
        raise InvalidBatch(f"record batch magic {header.magic} is not supported (only 2)")
    if header.crc != compute_crc(buf, pos, size):
        raise CorruptBatch("record batch CRC-32C does not match its contents")
    if header.last_offset_delta < 0 or header.records_count != header.last_offset_delta + 1:
        raise InvalidBatch(
            f"records count {header.records_count} does not match last offset delta "
            f"{header.last_offset_delta}"
        )
    return header


def iter_batches(buf, pos: int = 0, end: int | None = None) -> Iterator[tuple[int, BatchHeader]]:
    """Yield (position, header) for each whole batch in ``buf[pos:end]``.

    Stops silently at a trailing partial batch (a fetch may end mid-batch);
    does not check CRCs.
    """
    end = len(buf) if end is None else end
    while end - pos >= HEADER_SIZE:
        header = read_header(buf, pos)
        if header.batch_length < HEADER_SIZE - LOG_OVERHEAD or pos + header.size > end:
            return
        yield pos, header
        pos += header.size


def patch_base_offset(buf: bytearray | memoryview, pos: int, base_offset: int) -> None:
    """Overwrite baseOffset in place; the CRC does not cover it."""
    _OFFSET.pack_into(buf, pos, base_offset)


def patch_leader_epoch(buf: bytearray | memoryview, pos: int, epoch: int) -> None:
    """Overwrite partitionLeaderEpoch in place; the CRC does not cover it."""
    _EPOCH.pack_into(buf, pos + 12, epoch)


def set_log_append_time(buf: bytearray | memoryview, pos: int, timestamp_ms: int) -> None:
    """Mark the batch LogAppendTime with ``timestamp_ms`` and recompute its CRC.

    Kafka sets maxTimestamp to the append time and the timestamp-type bit; record
    deltas are left alone (readers use maxTimestamp for every record).
    """
    (attributes,) = _ATTR.unpack_from(buf, pos + 21)
    _ATTR.pack_into(buf, pos + 21, attributes | ATTR_TIMESTAMP_TYPE)
    _MAX_TS.pack_into(buf, pos + 35, timestamp_ms)
    size = _LEN_AT_8.unpack_from(buf, pos)[1] + LOG_OVERHEAD
    _CRC.pack_into(buf, pos + 17, compute_crc(buf, pos, size))
