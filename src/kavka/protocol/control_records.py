"""Transaction markers: the control batches that end a transaction in a partition (KIP-98).

A marker is a v2 batch with the control and transactional attribute bits set,
the producer's id and epoch, baseSequence -1, and exactly one record::

    record key    ControlRecordType:  version i16 (0) | type i16 (0 = ABORT, 1 = COMMIT)
    record value  EndTxnMarker:       version i16 (0) | coordinator_epoch i32

(the kio schemas ``control_record_type_schema`` and ``end_txn_marker`` give the
fields after the version; Kafka's ``EndTransactionMarker`` writes the version in
front of them, as here).  Consumers read the key to learn commit or abort; the
broker's producer state reads both.  No I/O; records are built by
:mod:`kavka.protocol.record_codec`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from kavka.protocol import records
from kavka.protocol.record_codec import decode_records, encode_batch

ABORT, COMMIT = 0, 1
CONTROL_KEY_VERSION = 0
END_TXN_MARKER_VERSION = 0
NO_SEQUENCE = -1
_KEY = struct.Struct(">hh")
_VALUE = struct.Struct(">hi")


@dataclass(frozen=True, slots=True)
class EndTxnMarker:
    """What a transaction marker says: how the transaction ended, and who said so."""

    commit: bool
    coordinator_epoch: int

    @property
    def control_type(self) -> int:
        return COMMIT if self.commit else ABORT


def encode_marker_batch(producer_id: int, producer_epoch: int, marker: EndTxnMarker, timestamp_ms: int) -> bytearray:
    """A marker batch at base offset 0 (the log assigns the real one), as Kafka's
    ``MemoryRecords.withEndTransactionMarker`` builds it."""
    key = _KEY.pack(CONTROL_KEY_VERSION, marker.control_type)
    value = _VALUE.pack(END_TXN_MARKER_VERSION, marker.coordinator_epoch)
    return bytearray(encode_batch([(key, value, timestamp_ms, ())], producer_id=producer_id,
                                  producer_epoch=producer_epoch, base_sequence=NO_SEQUENCE,
                                  transactional=True, control=True))


def read_marker(batch: bytes | bytearray | memoryview) -> EndTxnMarker | None:
    """The marker of the control batch in ``batch`` (whole bytes of one batch); None when
    it holds no record (compaction emptied it) or a control type other than commit/abort
(later key versions are read as version 0, as Kafka's ``ControlRecordType.parse`` does).

    Raises InvalidBatch when the bytes do not decode."""
    header = records.read_header(batch)
    if not header.is_control:
        raise records.InvalidBatch(f"batch at offset {header.base_offset} is not a control batch")
    found = decode_records(bytes(batch))
    if not found:
        return None
    record = found[0]
    if record.key is None or len(record.key) < _KEY.size:
        raise records.InvalidBatch(f"control record at offset {record.offset} has a short key")
    version, control_type = _KEY.unpack_from(record.key)
    if version < 0:
        raise records.InvalidBatch(f"control record at offset {record.offset} has key version {version}")
    if control_type not in (ABORT, COMMIT):  # a later control type (Kafka: UNKNOWN): not a marker
        return None
    if record.value is None or len(record.value) < _VALUE.size:
        raise records.InvalidBatch(f"transaction marker at offset {record.offset} has a short value")
    _version, coordinator_epoch = _VALUE.unpack_from(record.value)
    return EndTxnMarker(control_type == COMMIT, coordinator_epoch)
