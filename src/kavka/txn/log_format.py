"""Records of the internal topic ``__transaction_state``: one per change of a transactional id.

Theory of operation
-------------------
The latest record of a key is the id's current state, so the topic is compacted and a
``None`` value (tombstone) removes an expired id.  The layout is Kafka's own
(TransactionLogKey / TransactionLogValue), so Kafka's tools could read the topic::

    key                  i16 version=0 | transactional_id str
    value, version 0     i16 version=0 | producer_id i64 | producer_epoch i16 | timeout_ms i32
                         | state i8 | partitions (topic str, partition i32[])[]?
                         | last_update_ms i64 | start_ms i64
    value, version 1     the same fields, flexible (compact lengths, tagged fields), with
                         tags 0 previous_producer_id i64, 1 next_producer_id i64,
                         2 client_transaction_version i16 (each written only when not default)

Version 0 is written while the tagged fields hold their defaults, version 1 otherwise; both
are read.  A transactional id lives on partition ``coordinator_partition(id, n)``
(:mod:`kavka.internal_topics`), n = ``transaction.state.log.num.partitions``.
"""

from __future__ import annotations

import struct

from kavka.txn.model import NO_PRODUCER_ID, TxnMetadata, TxnState

KEY_VERSION = 0
_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_FIXED = struct.Struct(">qhib")   # producer id, epoch, timeout, state
_TIMES = struct.Struct(">qq")     # last update, start
_TAG_PREVIOUS, _TAG_NEXT, _TAG_CLIENT_VERSION = 0, 1, 2


class BadRecord(ValueError):
    """A key or value this broker cannot read (damaged, or written by a newer broker)."""


# -- keys ------------------------------------------------------------------------------------

def encode_key(transactional_id: str) -> bytes:
    data = transactional_id.encode("utf-8")
    return _I16.pack(KEY_VERSION) + _I16.pack(len(data)) + data


def decode_key(data: bytes) -> str:
    reader = _Reader(data)
    version = reader.i16()
    if version != KEY_VERSION:
        raise BadRecord(f"transaction log key version {version}")
    text = reader.string()
    if text is None:
        raise BadRecord("null transactional id")
    return text


# -- values ----------------------------------------------------------------------------------

def encode_value(meta: TxnMetadata | None) -> bytes | None:
    if meta is None:
        return None
    tags = _tags(meta)
    flexible = bool(tags)
    out = [_I16.pack(1 if flexible else 0),
           _FIXED.pack(meta.producer_id, meta.producer_epoch, meta.timeout_ms, int(meta.state))]
    by_topic: dict[str, list[int]] = {}
    for topic, partition in sorted(meta.partitions):
        by_topic.setdefault(topic, []).append(partition)
    if flexible:
        out.append(_uvarint(len(by_topic) + 1))
        for topic, partitions in by_topic.items():
            raw = topic.encode("utf-8")
            out += [_uvarint(len(raw) + 1), raw, _uvarint(len(partitions) + 1),
                    b"".join(_I32.pack(p) for p in partitions), _uvarint(0)]
    else:
        out.append(_I32.pack(len(by_topic)))
        for topic, partitions in by_topic.items():
            raw = topic.encode("utf-8")
            out += [_I16.pack(len(raw)), raw, _I32.pack(len(partitions)),
                    b"".join(_I32.pack(p) for p in partitions)]
    out.append(_TIMES.pack(meta.last_update_ms, meta.start_ms))
    if flexible:
        out.append(_uvarint(len(tags)))
        for tag, payload in tags:
            out += [_uvarint(tag), _uvarint(len(payload)), payload]
    return b"".join(out)


def decode_value(transactional_id: str, data: bytes | None) -> TxnMetadata | None:
    if data is None:
        return None
    reader = _Reader(data)
    version = reader.i16()
    if version not in (0, 1):
        raise BadRecord(f"transaction log value version {version}")
    flexible = version == 1
    producer_id, epoch, timeout_ms, state = reader.unpack(_FIXED)
    try:
        txn_state = TxnState(state)
    except ValueError:
        raise BadRecord(f"transaction state {state}") from None
    partitions: set[tuple[str, int]] = set()
    count = reader.uvarint() - 1 if flexible else reader.i32()
    for _ in range(max(count, 0)):
        topic = reader.compact_string() if flexible else reader.string()
        if topic is None:
            raise BadRecord("null topic in a transaction's partitions")
        n = reader.uvarint() - 1 if flexible else reader.i32()
        partitions.update((topic, reader.i32()) for _ in range(max(n, 0)))
        if flexible:
            reader.skip_tags()
    last_update_ms, start_ms = reader.unpack(_TIMES)
    tagged = {}
    if flexible:
        for _ in range(reader.uvarint()):
            tag, size = reader.uvarint(), reader.uvarint()
            tagged[tag] = reader.take(size)
    reader.done()
    return TxnMetadata(
        transactional_id, producer_id, epoch, timeout_ms, txn_state, frozenset(partitions),
        last_update_ms, start_ms,
        previous_producer_id=_tag_i64(tagged, _TAG_PREVIOUS),
        next_producer_id=_tag_i64(tagged, _TAG_NEXT),
        client_txn_version=_I16.unpack(tagged[_TAG_CLIENT_VERSION])[0]
        if _TAG_CLIENT_VERSION in tagged else 0)


def _tags(meta: TxnMetadata) -> list[tuple[int, bytes]]:
    tags = []
    if meta.previous_producer_id != NO_PRODUCER_ID:
        tags.append((_TAG_PREVIOUS, _I64.pack(meta.previous_producer_id)))
    if meta.next_producer_id != NO_PRODUCER_ID:
        tags.append((_TAG_NEXT, _I64.pack(meta.next_producer_id)))
    if meta.client_txn_version:
        tags.append((_TAG_CLIENT_VERSION, _I16.pack(meta.client_txn_version)))
    return tags


def _tag_i64(tagged: dict[int, bytes], tag: int) -> int:
    payload = tagged.get(tag)
    if payload is None:
        return NO_PRODUCER_ID
    if len(payload) != 8:
        raise BadRecord(f"tagged field {tag} of {len(payload)} bytes")
    return _I64.unpack(payload)[0]


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class _Reader:
    """Bounds-checked reads; running past the end is a :class:`BadRecord`."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def take(self, size: int) -> bytes:
        if size < 0 or self._pos + size > len(self._data):
            raise BadRecord("truncated transaction log record")
        chunk = self._data[self._pos:self._pos + size].tobytes()
        self._pos += size
        return chunk

    def unpack(self, fmt: struct.Struct) -> tuple:
        return fmt.unpack(self.take(fmt.size))

    def i16(self) -> int:
        return self.unpack(_I16)[0]

    def i32(self) -> int:
        return self.unpack(_I32)[0]

    def uvarint(self) -> int:
        value = shift = 0
        while True:
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            if shift > 28:
                raise BadRecord("varint too long")

    def string(self) -> str | None:
        size = self.i16()
        return None if size < 0 else self._utf8(self.take(size))

    def compact_string(self) -> str | None:
        size = self.uvarint() - 1
        return None if size < 0 else self._utf8(self.take(size))

    def skip_tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())

    def done(self) -> None:
        if self._pos != len(self._data):
            raise BadRecord(f"{len(self._data) - self._pos} bytes after a transaction log record")

    @staticmethod
    def _utf8(raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRecord("topic or id is not UTF-8") from None
