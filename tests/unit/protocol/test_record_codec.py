import gzip
import struct

import pytest
from kafka_python_ref import DefaultRecordBatch, DefaultRecordBatchBuilder

from kavka.protocol import records
from kavka.protocol.errors import UnsupportedCompression
from kavka.protocol.record_codec import (
    GZIP,
    LZ4,
    NONE,
    SNAPPY,
    XERIAL_MAGIC,
    ZSTD,
    Record,
    compress,
    decode_records,
    decompress,
    encode_batch,
    iter_records,
    null_key_indexes,
)
from kavka.protocol.records import CorruptBatch, InvalidBatch

CODECS = [NONE, GZIP, SNAPPY, LZ4, ZSTD]
DATA = b"".join(b"record %d with some repeated text; " % i for i in range(5000))  # ~190 KB


# -- compression ---------------------------------------------------------------------------

@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("data", [b"", b"x", DATA])
def test_compression_round_trip(codec, data):
    assert decompress(codec, compress(codec, data)) == data


def test_gzip_interoperates_with_the_standard_library():
    assert decompress(GZIP, gzip.compress(DATA)) == DATA
    assert gzip.decompress(compress(GZIP, DATA)) == DATA


def raw_snappy_literal(data: bytes) -> bytes:
    """A raw snappy block holding ``data`` as one literal (len <= 60), written by hand."""
    assert 0 < len(data) <= 60
    return bytes([len(data), (len(data) - 1) << 2]) + data


def test_xerial_snappy_from_hand_built_chunks():
    chunks = [raw_snappy_literal(b"hello "), raw_snappy_literal(b"xerial world")]
    stream = XERIAL_MAGIC + struct.pack(">ii", 1, 1)
    stream += b"".join(struct.pack(">i", len(c)) + c for c in chunks)
    assert decompress(SNAPPY, stream) == b"hello xerial world"


def test_raw_snappy_from_a_hand_built_block():
    assert decompress(SNAPPY, raw_snappy_literal(b"librdkafka style")) == b"librdkafka style"


def test_snappy_is_written_with_xerial_framing_in_32k_chunks():
    out = compress(SNAPPY, DATA)
    assert out.startswith(XERIAL_MAGIC + struct.pack(">ii", 1, 1))
    pos, chunks = 16, 0
    while pos < len(out):
        (size,) = struct.unpack_from(">i", out, pos)
        pos += 4 + size
        chunks += 1
    assert pos == len(out) and chunks == -(-len(DATA) // 32768)


def test_lz4_frame_is_readable_by_java():
    out = compress(LZ4, DATA)
    assert out[:4] == b"\x04\x22\x4d\x18"
    flags = out[4]
    assert flags >> 6 == 1  # version 01
    assert flags & 0x20  # independent blocks: Java decompresses each block alone
    assert not flags & 0x04  # no content checksum


@pytest.mark.parametrize("codec", [5, 6, 7])
def test_unknown_codec(codec):
    with pytest.raises(UnsupportedCompression):
        compress(codec, b"x")
    with pytest.raises(UnsupportedCompression):
        decompress(codec, b"x")


@pytest.mark.parametrize("codec", [GZIP, SNAPPY, LZ4, ZSTD])
def test_corrupt_compressed_data(codec):
    with pytest.raises(InvalidBatch):
        decompress(codec, b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x01\x00garbage")


# -- batches -------------------------------------------------------------------------------

def sample_records():
    return [
        (b"k0", b"v0", 1_700_000_000_000, [("trace", b"abc"), ("empty", None)]),
        (None, b"no key", 1_699_999_999_000, []),
        (b"tombstone", None, 1_700_000_000_500, None),
        (b"", b"", 1_700_000_000_100, [("ü", b"")]),
    ]


@pytest.mark.parametrize("codec", CODECS)
def test_batch_round_trip(codec):
    raw = encode_batch(sample_records(), base_offset=100, codec=codec, producer_id=3,
                       producer_epoch=1, base_sequence=50, partition_leader_epoch=4)
    header = records.validate(raw)
    assert header.compression == codec and header.records_count == 4
    assert header.base_timestamp == 1_700_000_000_000
    assert header.max_timestamp == 1_700_000_000_500
    got = decode_records(raw)
    assert [r.offset for r in got] == [100, 101, 102, 103]
    assert [(r.key, r.value, r.timestamp) for r in got] == [(k, v, t) for k, v, t, _ in sample_records()]
    assert got[0].headers == (("trace", b"abc"), ("empty", None))
    assert got[3].headers == (("ü", b""),)


def test_log_append_time_applies_to_every_record():
    raw = encode_batch(sample_records(), log_append_time=42)
    assert records.validate(raw).log_append_time
    assert {r.timestamp for r in decode_records(raw)} == {42}


def test_control_and_transactional_flags():
    header = records.validate(encode_batch([(b"\x00\x00\x00\x01", b"", 1, ())], control=True,
                                           transactional=True, producer_id=9, producer_epoch=0))
    assert header.is_control and header.is_transactional


def test_records_keep_their_offsets_so_compaction_can_leave_gaps():
    kept = [Record(10, 1, b"a", b"1"), Record(13, 2, b"b", b"2"), Record(17, 3, b"c", b"3")]
    raw = encode_batch(kept, base_offset=10)
    header = records.read_header(raw)
    assert header.records_count == 3 and header.last_offset_delta == 7
    assert decode_records(raw) == kept
    # Produce-side validation rejects such a batch; reading it back must not.
    with pytest.raises(InvalidBatch, match="records count"):
        records.validate(raw)


def test_explicit_base_timestamp_allows_negative_deltas():
    raw = encode_batch([(b"a", b"", 500, ())], base_timestamp=1000)
    assert records.read_header(raw).base_timestamp == 1000
    assert decode_records(raw)[0].timestamp == 500


def test_offsets_must_increase():
    with pytest.raises(ValueError):
        encode_batch([Record(5, 0, None, None), Record(5, 0, None, None)], base_offset=5)
    with pytest.raises(ValueError):
        encode_batch([])


def test_null_key_check():
    keyed = encode_batch([(b"k", b"v", 1, ())])
    keyless = encode_batch([(b"k", b"v", 1, ()), (None, b"v", 1, ())], codec=LZ4)
    assert null_key_indexes(keyed) == []
    assert null_key_indexes(keyed + keyless) == [2]   # counted over both batches
    assert null_key_indexes(encode_batch([(None, b"", 1, ())], control=True)) == []
    mixed = encode_batch([(None if i % 3 == 0 else b"k", b"v", 1, ()) for i in range(10)])
    assert null_key_indexes(mixed) == [0, 3, 6, 9]


def test_iter_records_over_several_batches():
    buf = encode_batch([(b"a", b"", 1, ())], base_offset=0) + encode_batch(
        [(b"b", b"", 2, ()), (b"c", b"", 3, ())], base_offset=1, codec=ZSTD)
    assert [r.key for r in iter_records(buf + buf[:30])] == [b"a", b"b", b"c"]


def test_decode_checks_the_crc():
    raw = bytearray(encode_batch(sample_records()))
    raw[70] ^= 0xFF
    with pytest.raises(CorruptBatch):
        decode_records(bytes(raw))


def _resign(raw: bytearray) -> bytes:
    struct.pack_into(">I", raw, 17, records.compute_crc(raw, 0, len(raw)))
    return bytes(raw)


def test_malformed_records_with_a_valid_crc():
    raw = bytearray(encode_batch([(b"key", b"value", 1, ())]))
    raw[61] = 0x7E  # record length far beyond the section
    with pytest.raises(InvalidBatch, match="record length"):
        decode_records(_resign(raw))


def test_trailing_bytes_after_the_last_record():
    raw = bytearray(encode_batch([(b"key", b"value", 1, ())]) + b"\x00")
    struct.pack_into(">i", raw, 8, len(raw) - 12)
    with pytest.raises(InvalidBatch, match="left after"):
        decode_records(_resign(raw))


def test_compressed_garbage_with_a_valid_crc():
    raw = bytearray(encode_batch([(b"key", b"value", 1, ())], codec=ZSTD))
    raw[61:65] = b"nope"
    with pytest.raises(InvalidBatch, match="zstd"):
        decode_records(_resign(raw))


def test_unknown_codec_in_a_batch():
    raw = bytearray(encode_batch([(b"key", b"value", 1, ())]))
    struct.pack_into(">h", raw, 21, 6)
    with pytest.raises(UnsupportedCompression):
        decode_records(_resign(raw))


# -- against kafka-python's independent batch code -----------------------------------------

@pytest.mark.parametrize("codec", [NONE, GZIP])
def test_kafka_python_reads_our_batches(codec):
    raw = encode_batch(sample_records(), base_offset=7, codec=codec)
    theirs = list(DefaultRecordBatch(bytearray(raw)))
    assert [(r.offset, r.timestamp, r.key, r.value) for r in theirs] == [
        (7 + i, t, k, v) for i, (k, v, t, _) in enumerate(sample_records())]
    assert [tuple(r.headers) for r in theirs][0] == (("trace", b"abc"), ("empty", None))


@pytest.mark.parametrize("codec", [NONE, GZIP])
def test_we_read_kafka_python_batches(codec):
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=False,
                                        producer_id=5, producer_epoch=0, base_sequence=0,
                                        batch_size=1 << 20)
    for i, (key, value, ts, headers) in enumerate(sample_records()):
        builder.append(i, timestamp=ts, key=key, value=value, headers=list(headers or []))
    raw = bytes(builder.build())
    records.validate(raw)
    got = decode_records(raw)
    assert [(r.key, r.value, r.timestamp) for r in got] == [(k, v, t) for k, v, t, _ in sample_records()]
