"""records.py: the batch header view, validation and in-place patches."""

import struct

import pytest

from kavka.protocol import records
from kavka.protocol.record_codec import GZIP, decode_records, encode_batch
from kavka.protocol.records import CorruptBatch, InvalidBatch


def batch(n=3, **kwargs) -> bytes:
    return encode_batch([(b"k%d" % i, b"v%d" % i, 1000 + i, ()) for i in range(n)], **kwargs)


def test_header_fields():
    raw = batch(3, base_offset=40, producer_id=7, producer_epoch=2, base_sequence=11,
                partition_leader_epoch=5, transactional=True)
    header = records.validate(raw)
    assert header.size == len(raw)
    assert (header.base_offset, header.last_offset, header.next_offset) == (40, 42, 43)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (7, 2, 11)
    assert header.partition_leader_epoch == 5 and header.is_transactional and not header.is_control
    assert (header.base_timestamp, header.max_timestamp) == (1000, 1002)
    assert header.last_sequence == 13


def test_crc_corruption_is_detected():
    raw = bytearray(batch())
    raw[-1] ^= 0x01
    with pytest.raises(CorruptBatch):
        records.validate(raw)


def test_corrupt_batch_is_an_invalid_batch():
    assert issubclass(CorruptBatch, InvalidBatch)


def test_wrong_magic():
    raw = bytearray(batch())
    raw[16] = 1
    with pytest.raises(InvalidBatch, match="magic"):
        records.validate(raw)


@pytest.mark.parametrize("length", [0, 48, 10_000])
def test_bad_length(length):
    raw = bytearray(batch())
    struct.pack_into(">i", raw, 8, length)
    with pytest.raises(InvalidBatch) as info:
        records.validate(raw)
    assert not isinstance(info.value, CorruptBatch)


def test_short_header():
    with pytest.raises(InvalidBatch):
        records.validate(batch()[:60])


def test_records_count_mismatch():
    raw = bytearray(batch(3))
    struct.pack_into(">i", raw, 57, 2)  # recordsCount
    struct.pack_into(">I", raw, 17, records.compute_crc(raw, 0, len(raw)))
    with pytest.raises(InvalidBatch, match="records count") as info:
        records.validate(raw)
    assert not isinstance(info.value, CorruptBatch)


def test_patch_base_offset_keeps_crc_valid():
    raw = bytearray(batch(codec=GZIP))
    records.patch_base_offset(raw, 0, 1_000_000)
    records.patch_leader_epoch(raw, 0, 9)
    header = records.validate(raw)
    assert header.base_offset == 1_000_000 and header.partition_leader_epoch == 9
    assert [r.offset for r in decode_records(bytes(raw))] == [1_000_000, 1_000_001, 1_000_002]


def test_set_log_append_time_produces_valid_crc():
    raw = bytearray(batch())
    records.set_log_append_time(raw, 0, 5_000)
    header = records.validate(raw)
    assert header.log_append_time and header.max_timestamp == 5_000
    assert {r.timestamp for r in decode_records(bytes(raw))} == {5_000}


def test_patches_at_a_position_inside_a_larger_buffer():
    first, second = batch(2), batch(3)
    buf = bytearray(first + second)
    records.patch_base_offset(buf, len(first), 2)
    records.set_log_append_time(buf, len(first), 77)
    positions = [pos for pos, _ in records.iter_batches(buf)]
    assert positions == [0, len(first)]
    assert records.validate(buf, len(first)).base_offset == 2


def test_iter_batches_stops_at_a_partial_batch():
    buf = batch(2) + batch(3)[:-5]
    assert [h.records_count for _, h in records.iter_batches(buf)] == [2]


def test_peek_size():
    raw = batch()
    assert records.peek_size(raw) == len(raw)
    assert records.peek_size(raw[:11]) is None
