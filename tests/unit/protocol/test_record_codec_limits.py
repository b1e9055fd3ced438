"""Bounded decompression (issue #9 item 1): ``decompress(codec, data, limit)`` gives
at most ``limit`` bytes, refuses more with UncompressedTooLarge, and reports
truncated or garbage input as InvalidBatch, never another exception.

Before the fix (294148f) ``decompress`` had no limit parameter and inflated
everything (these tests fail with a TypeError there); Apache Kafka's readers
have no output bound either.
"""

from __future__ import annotations

import random

import cramjam
import pytest

from kavka.protocol import record_codec as rc
from kavka.protocol.records import InvalidBatch

CODECS = [pytest.param(rc.GZIP, id="gzip"), pytest.param(rc.SNAPPY, id="snappy-xerial"),
          pytest.param(rc.LZ4, id="lz4"), pytest.param(rc.ZSTD, id="zstd")]
# Around the first output buffer (64 KiB) and its first growth (x8): the retry edges.
SIZES = [0, 1, 65535, 65536, 65537, 524288, 524289, 700_001]


def sample(size: int) -> bytes:
    """Compressible but not trivial data."""
    rng = random.Random(size)
    words = [bytes(rng.randrange(97, 123) for _ in range(rng.randrange(3, 9))) for _ in range(200)]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b" "
    return bytes(out[:size])


def raw_snappy(data: bytes) -> bytes:
    return bytes(cramjam.snappy.compress_raw(data))


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("size", SIZES)
def test_exactly_at_the_limit_passes_one_byte_over_is_refused(codec, size):
    data = sample(size)
    packed = rc.compress(codec, data)
    assert rc.decompress(codec, packed, size) == data
    assert rc.decompress(codec, packed, size + 1) == data
    if size:
        with pytest.raises(rc.UncompressedTooLarge):
            rc.decompress(codec, packed, size - 1)


@pytest.mark.parametrize("size", [1, 65536, 524289])
def test_raw_snappy_limit(size):
    data = sample(size)
    assert rc.decompress(rc.SNAPPY, raw_snappy(data), size) == data
    with pytest.raises(rc.UncompressedTooLarge):
        rc.decompress(rc.SNAPPY, raw_snappy(data), size - 1)


@pytest.mark.parametrize("codec", CODECS)
def test_a_bomb_is_refused_after_at_most_limit_plus_one_bytes(codec):
    packed = rc.compress(codec, bytes(8 << 20))
    with pytest.raises(rc.UncompressedTooLarge, match="inflate past|declares"):
        rc.decompress(codec, packed, 1 << 20)


@pytest.mark.parametrize("codec", CODECS)
def test_truncated_input_is_invalid_batch(codec):
    data = sample(100_000)
    packed = rc.compress(codec, data)
    for cut in (1, 7, len(packed) // 2, len(packed) - 1):
        try:
            out = rc.decompress(codec, packed[:cut], 1 << 20)
        except InvalidBatch as exc:
            assert not isinstance(exc, rc.UncompressedTooLarge), (cut, exc)
        else:  # a chunked format may end cleanly at a chunk boundary: then a prefix of the data
            assert data.startswith(out), cut


@pytest.mark.parametrize("codec", CODECS + [pytest.param("raw-snappy", id="snappy-raw")])
def test_garbage_input_is_invalid_batch_never_a_crash(codec):
    rng = random.Random(7)
    number = rc.SNAPPY if codec == "raw-snappy" else codec
    for length in (0, 1, 5, 64, 1000):
        junk = bytes(rng.randrange(256) for _ in range(length))
        try:
            out = rc.decompress(number, junk, 1 << 20)
        except InvalidBatch:
            continue
        assert len(out) <= 1 << 20


def test_the_limit_applies_to_decode_records_and_the_null_key_check():
    batch = rc.encode_batch([(b"k%d" % i, sample(1000), 1_700_000_000_000, ()) for i in range(50)], codec=rc.ZSTD)
    section = len(rc.decompress(rc.ZSTD, batch[61:]))
    assert len(rc.decode_records(batch, 0, section)) == 50
    assert rc.null_key_indexes(batch, 0, None, section) == []
    with pytest.raises(rc.UncompressedTooLarge):
        rc.decode_records(batch, 0, section - 1)
    with pytest.raises(rc.UncompressedTooLarge):
        rc.null_key_indexes(batch, 0, None, section - 1)


@pytest.mark.parametrize("module", [cramjam.gzip, cramjam.lz4, cramjam.zstd], ids=["gzip", "lz4", "zstd"])
def test_cramjam_still_reports_a_full_buffer_the_way_the_bound_expects(module):
    """record_codec tells "output buffer full" from corrupt input by cramjam's message;
    a cramjam upgrade that changes it makes bombs read as corrupt (still bounded)."""
    out = bytearray(1000)
    try:
        written = module.decompress_into(module.compress(bytes(5000)), out)
    except cramjam.DecompressionError as exc:
        assert rc._BUFFER_FULL in str(exc)
    else:
        assert written == len(out)  # a silent stop at the buffer's end also works with the bound
