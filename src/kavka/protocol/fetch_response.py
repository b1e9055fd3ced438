"""A hand-written FetchResponse encoder (v4-v17) that never copies record bytes.

Fetch is the broker's hottest response and mostly log bytes, so instead of
building kio objects the encoder emits *parts*: small ``bytes`` for the framing
and, for each partition's records, the caller's file-region objects (anything
with a ``size``), which the server hands to ``sendfile``.  Tests check the
result against kio's encoder byte for byte.

Layout (v12+ are "flexible": compact arrays/strings/bytes and tagged fields)::

    throttle_time_ms i32
    error_code i16, session_id i32                         (v7+)
    responses [
      topic string (v<13) | topic_id uuid (v13+)
      partitions [
        partition_index i32, error_code i16, high_watermark i64,
        last_stable_offset i64, log_start_offset i64 (v5+),
        aborted_transactions nullable [producer_id i64, first_offset i64],
        preferred_read_replica i32 (v11+),
        records nullable bytes
        tagged fields (v12+)
      ]
      tagged fields (v12+)
    ]
    tagged fields (v12+)
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field
from typing import Sequence

from kavka.protocol.framing import write_uvarint

_I32 = struct.Struct(">i")
_PART_HEAD = struct.Struct(">ihqq")  # index, error, high watermark, last stable offset
_I64 = struct.Struct(">q")


@dataclass(slots=True)
class PartitionResult:
    index: int
    error_code: int = 0
    high_watermark: int = -1
    last_stable_offset: int = -1
    log_start_offset: int = -1
    # Region objects with a ``size`` (file slices) or bytes, in log order.
    records: Sequence = field(default_factory=tuple)
    # None = null aborted-transaction list (read_uncommitted); () = empty list.
    aborted_transactions: tuple | None = None
    preferred_read_replica: int = -1    # v11+ (KIP-392): -1, or the replica to read from instead

    @property
    def records_size(self) -> int:
        return sum(part.size if not isinstance(part, (bytes, bytearray)) else len(part) for part in self.records)


@dataclass(slots=True)
class TopicResult:
    name: str | None
    topic_id: uuid.UUID | None
    partitions: list[PartitionResult]


class _Parts:
    """Accumulates small writes into one buffer, interleaved with region parts."""

    __slots__ = ("parts", "buffer", "size")

    def __init__(self) -> None:
        self.parts: list = []
        self.buffer = bytearray()
        self.size = 0

    def region(self, part, length: int) -> None:
        if self.buffer:
            self.parts.append(bytes(self.buffer))
            self.size += len(self.buffer)
            self.buffer = bytearray()
        self.parts.append(part)
        self.size += length

    def finish(self) -> tuple[list, int]:
        if self.buffer:
            self.parts.append(bytes(self.buffer))
            self.size += len(self.buffer)
        return self.parts, self.size


def encode_fetch_response(version: int, topics: Sequence[TopicResult], *, error_code: int = 0,
                          session_id: int = 0, throttle_ms: int = 0) -> tuple[list, int]:
    """Return (parts, total size) of a FetchResponse body for ``version`` (4-17)."""
    flexible = version >= 12
    out = _Parts()
    buf = out.buffer
    buf += _I32.pack(throttle_ms)
    if version >= 7:
        buf += struct.pack(">hi", error_code, session_id)
    _array_len(buf, len(topics), flexible)
    for topic in topics:
        if version >= 13:
            buf += (topic.topic_id or uuid.UUID(int=0)).bytes
        else:
            _string(buf, topic.name or "", flexible)
        _array_len(buf, len(topic.partitions), flexible)
        for partition in topic.partitions:
            _partition(out, partition, version, flexible)
            buf = out.buffer
        if flexible:
            buf.append(0)
    if flexible:
        buf.append(0)
    return out.finish()


def _partition(out: _Parts, p: PartitionResult, version: int, flexible: bool) -> None:
    buf = out.buffer
    buf += _PART_HEAD.pack(p.index, p.error_code, p.high_watermark, p.last_stable_offset)
    if version >= 5:
        buf += _I64.pack(p.log_start_offset)
    if p.aborted_transactions is None:
        _array_len(buf, -1, flexible)
    else:
        _array_len(buf, len(p.aborted_transactions), flexible)
        for producer_id, first_offset in p.aborted_transactions:
            buf += struct.pack(">qq", producer_id, first_offset)
            if flexible:
                buf.append(0)
    if version >= 11:
        buf += _I32.pack(p.preferred_read_replica)
    size = p.records_size
    if flexible:
        buf += write_uvarint(size + 1)
    else:
        buf += _I32.pack(size)
    for part in p.records:
        out.region(part, part.size if not isinstance(part, (bytes, bytearray)) else len(part))
    if flexible:
        out.buffer.append(0)


def _array_len(buf: bytearray, length: int, flexible: bool) -> None:
    if flexible:
        buf += write_uvarint(length + 1)  # null (-1) encodes as 0
    else:
        buf += _I32.pack(length)


def _string(buf: bytearray, text: str, flexible: bool) -> None:
    data = text.encode()
    if flexible:
        buf += write_uvarint(len(data) + 1)
    else:
        buf += struct.pack(">h", len(data))
    buf += data
