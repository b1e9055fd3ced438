"""Transaction markers: Kafka's control batch layout, and reading it back."""

from __future__ import annotations

import struct

import pytest

from kavka.protocol import records
from kavka.protocol.control_records import EndTxnMarker, encode_marker_batch, read_marker
from kavka.protocol.record_codec import decode_records, encode_batch

TS = 1_700_000_000_000


@pytest.mark.parametrize("commit, control_type", [(False, 0), (True, 1)])
def test_a_marker_batch_has_kafkas_layout(commit, control_type):
    batch = encode_marker_batch(42, 7, EndTxnMarker(commit, 13), TS)
    header = records.validate(batch)
    assert header.attributes == records.ATTR_TRANSACTIONAL | records.ATTR_CONTROL
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (42, 7, -1)
    assert (header.base_offset, header.records_count, header.max_timestamp) == (0, 1, TS)
    (record,) = decode_records(bytes(batch))
    assert record.key == struct.pack(">hh", 0, control_type)
    assert record.value == struct.pack(">hi", 0, 13)
    assert read_marker(batch) == EndTxnMarker(commit, 13)


def _control(key: bytes, value: bytes | None = b"\x00\x00\x00\x00\x00\x05") -> bytes:
    return encode_batch([(key, value, TS, ())], producer_id=1, producer_epoch=0, transactional=True, control=True)


def test_a_later_key_version_reads_as_version_0():
    assert read_marker(_control(struct.pack(">hh", 1, 1))) == EndTxnMarker(True, 5)


def test_other_control_types_are_not_markers():
    assert read_marker(_control(struct.pack(">hh", 0, 5))) is None


@pytest.mark.parametrize("key, value", [(b"\x00", b"\x00" * 6), (b"\x00\x00\x00\x01", b"\x00"),
                                        (struct.pack(">hh", -1, 0), b"\x00" * 6)])
def test_malformed_markers_are_invalid(key, value):
    with pytest.raises(records.InvalidBatch):
        read_marker(_control(key, value))


def test_a_data_batch_is_not_a_marker():
    with pytest.raises(records.InvalidBatch):
        read_marker(encode_batch([(b"k", b"v", TS, ())], producer_id=1, producer_epoch=0, transactional=True))
