"""Hypothesis: batch round-trips, and hostile bytes only ever raise our declared errors."""

import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_samples import augmented_sample, sample

from kavka.protocol import messages as m
from kavka.protocol import records
from kavka.protocol.errors import ProtocolError
from kavka.protocol.framing import FrameDecoder, parse_request_header
from kavka.protocol.record_codec import Record, decode_records, encode_batch
from kavka.protocol.records import InvalidBatch

pytestmark = pytest.mark.timeout(60)

DECLARED = (ProtocolError, InvalidBatch)
# KAVKA_FUZZ_EXAMPLES=50000 for a long run; the default keeps the suite fast.
FUZZ = settings(max_examples=int(os.environ.get("KAVKA_FUZZ_EXAMPLES", 300)), deadline=None, suppress_health_check=[HealthCheck.too_slow])

INT64 = st.integers(-(2**63), 2**63 - 1)
timestamps = st.integers(-1, 2**45)  # -1: no timestamp
blobs = st.none() | st.binary(max_size=64)
headers = st.lists(st.tuples(st.text(max_size=10), blobs), max_size=3)
record_inputs = st.lists(st.tuples(blobs, blobs, timestamps, headers), min_size=1, max_size=20)


@settings(max_examples=150, deadline=None)
@given(record_inputs, st.integers(0, 4), st.integers(0, 2**62), st.integers(-1, 2**40),
       st.integers(-1, 32767), st.integers(-1, 2**31 - 1))
def test_batch_round_trip(inputs, codec, base_offset, producer_id, epoch, sequence):
    raw = encode_batch(inputs, base_offset=base_offset, codec=codec, producer_id=producer_id,
                       producer_epoch=epoch, base_sequence=sequence)
    header = records.validate(raw)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (producer_id, epoch, sequence)
    expected = [Record(base_offset + i, ts, k, v, tuple(h)) for i, (k, v, ts, h) in enumerate(inputs)]
    assert decode_records(raw) == expected


# -- fuzz: framing -------------------------------------------------------------------------

@FUZZ
@given(st.binary(max_size=2000), st.lists(st.integers(1, 64), max_size=50))
def test_frame_decoder_fuzz(data, cuts):
    decoder = FrameDecoder(max_frame_size=512)
    pos = 0
    try:
        for size in cuts + [len(data)]:
            decoder.feed(data[pos : pos + size])
            pos += size
            for frame in decoder.frames():
                assert len(frame) <= 512
    except DECLARED:
        pass


@FUZZ
@given(st.binary(max_size=100), st.booleans())
def test_request_header_fuzz(data, flexible):
    try:
        header = parse_request_header(data, flexible)
    except DECLARED:
        return
    assert 10 <= header.header_size <= len(data)


# -- fuzz: request bodies ------------------------------------------------------------------

APIS = [(0, 9), (0, 7), (3, 12), (3, 1), (18, 3), (18, 0), (1, 12), (1, 4), (11, 7), (8, 8)]


def _bodies(api):
    cls = m.request_class(*api)
    valid = [m.encode_request(sample(cls)), m.encode_request(sample(cls, with_nulls=True))]
    if cls.__flexible__:
        valid.append(m.encode_request(augmented_sample(cls)))
    return valid


VALID_BODIES = {api: _bodies(api) for api in APIS}


@st.composite
def mutated(draw, originals):
    """A valid encoding with a few bytes overwritten, then maybe cut short."""
    data = bytearray(draw(st.sampled_from(originals)))
    for _ in range(draw(st.integers(0, 4))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))])


@st.composite
def request_bodies(draw):
    api = draw(st.sampled_from(APIS))
    body = draw(st.binary(max_size=300) | mutated(VALID_BODIES[api]))
    return api, body


@FUZZ
@given(request_bodies())
def test_decode_request_fuzz(case):
    (api_key, version), body = case
    try:
        m.decode_request(api_key, version, body, 0)
    except DECLARED:
        pass


# -- fuzz: batches -------------------------------------------------------------------------

VALID_BATCHES = [
    encode_batch([(b"key", b"value" * 20, 1_000, [("h", b"x")]), (None, None, 2_000, [])], codec=codec)
    for codec in range(5)
]


def _resign(data: bytearray) -> bytes:
    """Fix the CRC so the fuzzed bytes get past it into record parsing."""
    if len(data) >= records.HEADER_SIZE:
        size = min(len(data), max(records.HEADER_SIZE, struct.unpack_from(">i", data, 8)[0] + 12))
        struct.pack_into(">I", data, 17, records.compute_crc(data, 0, size))
    return bytes(data)


@st.composite
def batch_bytes(draw):
    data = draw(st.binary(max_size=400) | mutated(VALID_BATCHES))
    return _resign(bytearray(data)) if draw(st.booleans()) else data


@FUZZ
@given(batch_bytes())
def test_batch_fuzz(data):
    for check in (records.validate, decode_records, lambda d: list(records.iter_batches(d))):
        try:
            check(data)
        except DECLARED:
            pass
