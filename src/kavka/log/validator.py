"""Produce-time validation of one partition's records, before anything is written.

A pure function of (bytes, topic config, broker time, Produce version): no I/O,
no log state.  Idempotent-producer sequence checks need the partition's history
and live in :mod:`kavka.log.producer_state`.

Theory of operation
-------------------
The records of one partition in a Produce request are a run of v2 record
batches (layout in :mod:`kavka.protocol.records`)::

    [batch 0][batch 1]...     each: baseOffset i64 | batchLength i32 | ... (61-byte header) | records

The checks, in the order Kafka applies them (the first failure decides the
error code the client sees):

    check                                         error            Kafka source of the rule
    --------------------------------------------  ---------------  ---------------------------
    at least one batch                            InvalidRecord    ProduceRequest.validateRecords
    every batch frames (>= 61 bytes, in bounds)   CorruptRecord    log input stream
    magic == 2                                    InvalidRecord    ProduceRequest.validateRecords
    codec 0-4; zstd (4) only with Produce >= 7    UnsupportedCompr ProduceRequest.validateRecords
    exactly one batch (Produce >= 3)              InvalidRecord    ProduceRequest.validateRecords
    baseOffset == 0                               InvalidRecord    UnifiedLog.analyzeAndValidate
    size <= max.message.bytes                     RecordTooLarge   UnifiedLog.analyzeAndValidate
    CRC-32C matches                               CorruptRecord    UnifiedLog.analyzeAndValidate
    recordsCount == lastOffsetDelta + 1 > 0       InvalidRecord    LogValidator.validateBatch
    not a control batch                           InvalidRecord    LogValidator.validateBatch
    producerId >= 0  =>  baseSequence >= 0        InvalidRecord    LogValidator.validateBatch
    transactional  =>  producerId >= 0            InvalidRecord    (kavka only, see below)
    CreateTime within before/after.max.ms of now  InvalidTimestamp LogValidator.validateTimestamp
    compacted topic: every record has a key       InvalidRecord    LogValidator.validateKey
    ... and its records inflate to at most
        max.uncompressed.message.bytes            InvalidRecord    (kavka only, see below)

Deliberate differences from Kafka, each to keep the hot path header-only:

* Timestamps: Kafka checks every record's timestamp (and rewrites maxTimestamp
  from them).  We check only the header's baseTimestamp (the first record's
  timestamp, which clients use as the delta base) and maxTimestamp.  A client
  that writes a record older than its first one, with a negative delta, slips
  past the "before" bound; catching that needs decoding every record.
* Codec ids 5-7: Kafka's ``CompressionType.forId`` throws an
  IllegalArgumentException that surfaces as UNKNOWN_SERVER_ERROR.  We answer
  UNSUPPORTED_COMPRESSION_TYPE, the code a client can act on.
* A truncated batch or trailing bytes: Kafka silently drops a partial tail and
  answers "no record batch" when nothing whole is left.  We reject the request
  as CorruptRecord: a producer never sends a partial batch on purpose.
* A transactional batch (attributes bit 4) without a producer id cannot belong
  to a transaction: Kafka's api layer refuses it for want of a transactional
  id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED); the log refuses it here too, so
  no path stores one.  Transactional batches with a producer id pass here;
  kavka.log.producer_state judges their epoch and transaction state.
* Per-record offset deltas are not checked (Kafka checks them for compressed
  batches only, while decompressing anyway).

Only compacted topics decode records (to find null keys); Kafka decompresses
every compressed batch at produce.

Decompression bombs: Kafka streams a compressed batch through its validator
without any bound on the output, so a batch of a few hundred KB that inflates
to GBs costs it seconds of a request-handler thread (but no memory).  Here the
key check decompresses with the topic's ``max.uncompressed.message.bytes``
(default 64 MiB) as a hard bound (kavka.protocol.record_codec) and refuses a
batch that inflates further with INVALID_RECORD, the code Kafka gives records
that do not decode as valid records.  Scanning the keys costs ~0.35 us a
record; a batch declaring more than :data:`OFFLOAD_RECORDS` records is
checked in a worker thread instead of on the event loop (:func:`needs_offload`,
api/produce.py), so the worst allowed batch does not stall other clients.
"""

from __future__ import annotations

import struct

from kavka.config import TopicConfig
from kavka.log.errors import (
    CorruptRecord,
    InvalidRecord,
    InvalidTimestamp,
    RecordTooLarge,
    UnsupportedCompression,
)
from kavka.protocol import records
from kavka.protocol.record_codec import UncompressedTooLarge, null_key_indexes
from kavka.protocol.records import BatchHeader, CorruptBatch, InvalidBatch

NO_TIMESTAMP = -1
CODEC_ZSTD = 4
MAX_CODEC = CODEC_ZSTD
ZSTD_MIN_PRODUCE_VERSION = 7
_MAGIC_AT = 16
_ATTRIBUTES_AT = 21
_ATTR = struct.Struct(">h")
_RECORDS_COUNT = struct.Struct(">i")
_RECORDS_COUNT_AT = 57
OFFLOAD_RECORDS = 20_000  # ~7 ms of key scanning: more goes to a worker thread


def validate_produce_records(
    buf: bytes | bytearray, config: TopicConfig, now_ms: int, produce_version: int,
    keys_checked: bool = False,
) -> list[tuple[int, BatchHeader]]:
    """Check one partition's produce payload, which must be one batch (Kafka's rule for the
    record format v2, the only one kavka takes); return [(position, header)].

    Raises one of the log errors in the module table; never modifies ``buf``.
    ``keys_checked``: :func:`check_keys` already ran (in a worker thread).
    """
    spans = _frame(buf)
    for pos, _size in spans:
        _check_codec(buf, pos, produce_version)
    if len(spans) != 1:
        raise InvalidRecord(
            f"Produce v{produce_version} allows exactly one record batch per partition, got {len(spans)}"
        )
    batches = [(pos, _check_batch(buf, pos, size, config, now_ms)) for pos, size in spans]
    if config.compacted and not keys_checked:
        for pos, header in batches:
            _check_keys(buf, pos, header.size, config)
    return batches


def needs_offload(buf: bytes | bytearray, config: TopicConfig) -> bool:
    """Whether the key check of this payload is long enough to run off the event loop.

    Reads only the first batch's codec and records count (``buf`` is not
    validated yet: anything odd is left to the validator on the loop).
    """
    if not config.compacted or len(buf) < records.HEADER_SIZE:
        return False
    (attributes,) = _ATTR.unpack_from(buf, _ATTRIBUTES_AT)
    (count,) = _RECORDS_COUNT.unpack_from(buf, _RECORDS_COUNT_AT)
    return attributes & records.ATTR_CODEC_MASK != 0 and count > OFFLOAD_RECORDS


def check_keys(buf: bytes | bytearray, config: TopicConfig) -> None:
    """The compacted-topic key rule alone, for a worker thread; framing errors are
    left to :func:`validate_produce_records`, which runs after it either way."""
    for pos, size in _frame(buf):
        _check_keys(buf, pos, size, config)


def _frame(buf) -> list[tuple[int, int]]:
    """Split ``buf`` into (position, size) of batches; only framing and magic are read.

    Magic sits at byte 16 in every message format (v0/v1 too), so old-format
    message sets are recognised and refused before their smaller headers trip
    the v2 length rules.
    """
    if not buf:
        raise InvalidRecord("a produce request needs at least one record batch per partition")
    spans = []
    pos, end = 0, len(buf)
    while pos < end:
        size = records.peek_size(buf, pos)
        if size is None:
            raise CorruptRecord(f"{end - pos} trailing bytes do not form a record batch")
        if end - pos > _MAGIC_AT and buf[pos + _MAGIC_AT] != records.MAGIC:
            raise InvalidRecord(
                f"record batch magic {buf[pos + _MAGIC_AT]} is not supported: produce needs magic 2"
            )
        if size < records.HEADER_SIZE:
            raise CorruptRecord(f"record batch of {size} bytes is shorter than its 61-byte header")
        if pos + size > end:
            raise CorruptRecord(f"record batch of {size} bytes is truncated to {end - pos} bytes")
        spans.append((pos, size))
        pos += size
    return spans


def _check_codec(buf, pos: int, produce_version: int) -> None:
    (attributes,) = _ATTR.unpack_from(buf, pos + _ATTRIBUTES_AT)
    codec = attributes & records.ATTR_CODEC_MASK
    if codec > MAX_CODEC:
        raise UnsupportedCompression(f"unknown compression codec id {codec}")
    if codec == CODEC_ZSTD and produce_version < ZSTD_MIN_PRODUCE_VERSION:
        raise UnsupportedCompression(
            f"Produce v{produce_version} may not carry zstd batches (needs v{ZSTD_MIN_PRODUCE_VERSION}+)"
        )


def _check_batch(buf, pos: int, size: int, config: TopicConfig, now_ms: int) -> BatchHeader:
    header = records.read_header(buf, pos)
    if header.base_offset != 0:
        raise InvalidRecord(f"a produced batch must have baseOffset 0, not {header.base_offset}")
    if size > config.max_message_bytes:
        raise RecordTooLarge(
            f"record batch of {size} bytes exceeds max.message.bytes {config.max_message_bytes}"
        )
    try:
        # Framing and magic were checked above, so what is left here is the CRC
        # (CorruptBatch) and the count rule (InvalidBatch).
        records.validate(buf, pos, pos + size)
    except CorruptBatch as exc:
        raise CorruptRecord(str(exc)) from exc
    except InvalidBatch as exc:
        raise InvalidRecord(str(exc)) from exc
    if header.is_control:
        raise InvalidRecord("clients may not write control batches")
    if header.is_transactional and not header.has_producer_id:
        raise InvalidRecord("a transactional batch needs a producer id")
    if header.has_producer_id and header.base_sequence < 0:
        raise InvalidRecord(
            f"batch of producer {header.producer_id} has invalid base sequence {header.base_sequence}"
        )
    if not config.log_append_time:
        _check_timestamps(header, config, now_ms)
    return header


def _check_timestamps(header: BatchHeader, config: TopicConfig, now_ms: int) -> None:
    """CreateTime bounds on the batch's first and largest timestamps (see module notes)."""
    earliest = now_ms - config["message.timestamp.before.max.ms"]
    latest = now_ms + config["message.timestamp.after.max.ms"]
    for timestamp in (header.base_timestamp, header.max_timestamp):
        if timestamp == NO_TIMESTAMP:
            continue  # a producer that sets no timestamps is accepted, as in Kafka
        if not earliest <= timestamp <= latest:
            raise InvalidTimestamp(
                f"timestamp {timestamp} is out of range: it must be within [{earliest}, {latest}] "
                f"(message.timestamp.before.max.ms / after.max.ms of broker time {now_ms})"
            )


def _check_keys(buf, pos: int, size: int, config: TopicConfig) -> None:
    try:
        missing = null_key_indexes(buf, pos, pos + size, config.max_uncompressed_bytes)
    except UncompressedTooLarge as exc:
        raise InvalidRecord(f"a compacted topic's batch is too large to check: {exc}") from exc
    except InvalidBatch as exc:  # records that do not decode or decompress
        raise CorruptRecord(f"records of a compacted topic's batch do not decode: {exc}") from exc
    if missing:
        raise InvalidRecord(f"a compacted topic cannot accept a record without a key ({len(missing)} in this batch)",
                            tuple(missing), "Compacted topic cannot accept message without key")
