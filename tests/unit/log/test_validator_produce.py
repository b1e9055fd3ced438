"""Every produce-time rule of kavka.log.validator, one test (or two) per rule."""

from __future__ import annotations

import struct

import pytest

from kavka.config import BrokerConfig, validate_topic_overrides
from kavka.log.errors import (
    CorruptRecord,
    InvalidRecord,
    InvalidTimestamp,
    RecordTooLarge,
    UnsupportedCompression,
)
from kavka.log.validator import validate_produce_records
from kavka.protocol import records
from kavka.protocol.record_codec import GZIP, LZ4, ZSTD, encode_batch

NOW = 1_700_000_000_000
V = 9  # a modern Produce version


def topic_config(**overrides: str):
    parsed = validate_topic_overrides({k.replace("_", "."): v for k, v in overrides.items()})
    return BrokerConfig().topic_config(parsed)


def batch(n: int = 2, *, ts: int = NOW, key: bytes | None = b"k", **kwargs) -> bytearray:
    rows = [(key, b"v%d" % i, ts, ()) for i in range(n)]
    return bytearray(encode_batch(rows, **kwargs))


def patch(buf: bytearray, fmt: str, at: int, value: int, recrc: bool = True) -> bytearray:
    struct.pack_into(fmt, buf, at, value)
    if recrc:
        struct.pack_into(">I", buf, 17, records.compute_crc(buf, 0, len(buf)))
    return buf


def check(buf, config=None, version: int = V, now: int = NOW):
    return validate_produce_records(buf, config or topic_config(), now, version)


# -- accepted input --------------------------------------------------------------------------

def test_valid_batch_returns_its_position_and_header():
    buf = batch(3)
    [(pos, header)] = check(buf)
    assert pos == 0 and header.records_count == 3 and header.size == len(buf)


def test_validation_does_not_modify_the_bytes():
    buf = batch(3)
    before = bytes(buf)
    check(buf)
    assert bytes(buf) == before


def test_accepts_bytes_as_well_as_bytearray():
    assert len(check(bytes(batch()))) == 1


@pytest.mark.parametrize("codec", [GZIP, LZ4])
def test_compressed_batches_are_accepted(codec):
    assert len(check(batch(codec=codec))) == 1


def test_idempotent_batch_with_sequence_is_accepted():
    assert len(check(batch(producer_id=7, producer_epoch=0, base_sequence=0))) == 1


# -- framing ---------------------------------------------------------------------------------

def test_empty_records_are_invalid():
    with pytest.raises(InvalidRecord, match="at least one"):
        check(bytearray())


def test_two_batches_are_invalid_from_produce_v3():
    with pytest.raises(InvalidRecord, match="exactly one"):
        check(batch() + batch(), version=3)


def test_two_batches_are_invalid_on_old_produce_versions_too():
    with pytest.raises(InvalidRecord, match="exactly one"):
        check(batch() + batch(), version=2)


def test_truncated_batch_is_corrupt():
    with pytest.raises(CorruptRecord, match="truncated"):
        check(batch()[:-1])


def test_trailing_bytes_are_corrupt():
    with pytest.raises(CorruptRecord, match="trailing"):
        check(batch() + b"\x00\x01")


def test_batch_length_shorter_than_header_is_corrupt():
    buf = patch(batch(), ">i", 8, 20, recrc=False)
    with pytest.raises(CorruptRecord, match="shorter"):
        check(buf)


@pytest.mark.parametrize("magic", [0, 1, 3])
def test_magic_other_than_2_is_invalid(magic):
    buf = batch()
    buf[16] = magic
    with pytest.raises(InvalidRecord, match="magic"):
        check(buf)


# -- compression -----------------------------------------------------------------------------

def test_zstd_needs_produce_v7():
    with pytest.raises(UnsupportedCompression, match="zstd"):
        check(batch(codec=ZSTD), version=6)
    assert len(check(batch(codec=ZSTD), version=7)) == 1


@pytest.mark.parametrize("codec", [5, 6, 7])
def test_unknown_codec_ids_are_unsupported(codec):
    buf = patch(batch(), ">h", 21, codec)
    with pytest.raises(UnsupportedCompression, match="unknown"):
        check(buf)


# -- header rules ----------------------------------------------------------------------------

def test_base_offset_must_be_zero():
    with pytest.raises(InvalidRecord, match="baseOffset"):
        check(batch(base_offset=5))


def test_batch_over_max_message_bytes_is_too_large():
    buf = batch(1)
    check(buf, topic_config(max_message_bytes=str(len(buf))))
    with pytest.raises(RecordTooLarge):
        check(buf, topic_config(max_message_bytes=str(len(buf) - 1)))


def test_crc_mismatch_is_corrupt():
    buf = batch()
    buf[-1] ^= 0xFF
    with pytest.raises(CorruptRecord, match="CRC"):
        check(buf)


def test_records_count_must_match_last_offset_delta():
    buf = patch(batch(3), ">i", 57, 2)
    with pytest.raises(InvalidRecord, match="records count"):
        check(buf)


def test_negative_last_offset_delta_is_invalid():
    buf = patch(patch(batch(1), ">i", 23, -1), ">i", 57, 0)
    with pytest.raises(InvalidRecord):
        check(buf)


def test_control_batches_from_clients_are_invalid():
    with pytest.raises(InvalidRecord, match="control"):
        check(batch(1, control=True, producer_id=3, producer_epoch=0, base_sequence=0))


def test_producer_id_needs_a_base_sequence():
    with pytest.raises(InvalidRecord, match="sequence"):
        check(batch(producer_id=7, producer_epoch=0, base_sequence=-1))


# -- timestamps ------------------------------------------------------------------------------

def test_timestamp_too_far_in_the_future_is_invalid():
    hour = 3_600_000
    assert check(batch(ts=NOW + hour))
    with pytest.raises(InvalidTimestamp):
        check(batch(ts=NOW + hour + 1))


def test_timestamp_too_far_in_the_past_is_invalid():
    config = topic_config(**{"message.timestamp.before.max.ms": "1000"})
    assert check(batch(ts=NOW - 1000), config)
    with pytest.raises(InvalidTimestamp):
        check(batch(ts=NOW - 1001), config)


def test_default_before_bound_accepts_any_old_timestamp():
    assert check(batch(ts=0))


def test_base_timestamp_is_checked_as_well_as_max():
    config = topic_config(**{"message.timestamp.before.max.ms": "1000"})
    rows = [(b"k", b"a", NOW - 5000, ()), (b"k", b"b", NOW, ())]
    with pytest.raises(InvalidTimestamp):
        check(bytearray(encode_batch(rows)), config)


def test_missing_timestamps_are_accepted():
    assert check(batch(ts=None))


def test_log_append_time_topics_ignore_client_timestamps():
    config = topic_config(**{"message.timestamp.type": "LogAppendTime"})
    assert check(batch(ts=NOW + 10 * 3_600_000), config)


# -- compacted topics ------------------------------------------------------------------------

def test_compacted_topic_rejects_a_null_key():
    config = topic_config(**{"cleanup.policy": "compact"})
    assert check(batch(key=b"k"), config)
    rows = [(b"k", b"a", NOW, ()), (None, b"b", NOW, ())]
    with pytest.raises(InvalidRecord, match="key"):
        check(bytearray(encode_batch(rows)), config)


def test_compacted_topic_finds_null_keys_inside_compressed_batches():
    config = topic_config(**{"cleanup.policy": "compact,delete"})
    with pytest.raises(InvalidRecord, match="key"):
        check(batch(key=None, codec=GZIP), config)


def test_null_keys_are_fine_on_delete_topics():
    assert check(batch(key=None))


def test_compacted_topic_with_undecodable_records_is_corrupt():
    config = topic_config(**{"cleanup.policy": "compact"})
    buf = batch(2)
    buf[61] = 0x7F  # first record's length varint now claims far more than there is
    patch(buf, ">I", 17, records.compute_crc(buf, 0, len(buf)), recrc=False)
    with pytest.raises(CorruptRecord):
        check(buf, config)
