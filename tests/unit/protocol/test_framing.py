import struct

import pytest
from kafka_python_ref import ApiVersionsRequest, MetadataRequest

from kavka.protocol.errors import FrameTooLarge, InvalidFrame, InvalidRequest
from kavka.protocol.framing import (
    FrameDecoder,
    add_size_prefix,
    encode_request_header,
    encode_response_frame,
    parse_request_header,
    parse_response_header,
    peek_api_key_version,
    read_uvarint,
    response_header_bytes,
    skip_tagged_fields,
)


def framed(*payloads: bytes) -> bytes:
    return b"".join(add_size_prefix(p) for p in payloads)


# -- FrameDecoder --------------------------------------------------------------------------

def test_byte_by_byte_feeding_yields_each_frame_once_complete():
    payloads = [b"first", b"", b"x" * 300]
    decoder = FrameDecoder(1024)
    got = []
    for byte in framed(*payloads):
        decoder.feed(bytes([byte]))
        got.extend(decoder.frames())
    assert got == payloads
    assert decoder.buffered == 0


def test_many_frames_in_one_chunk():
    payloads = [bytes([i % 256]) * (i % 17) for i in range(5000)]
    decoder = FrameDecoder(100)
    decoder.feed(framed(*payloads))
    assert list(decoder.frames()) == payloads
    assert decoder.next_frame() is None


def test_partial_frame_stays_buffered_across_compaction():
    # Enough small frames to pass the compaction threshold with a frame half-fed.
    payloads = [b"a" * 100] * 1000
    data = framed(*payloads) + framed(b"tail")
    decoder = FrameDecoder(1000)
    decoder.feed(data[:-3])
    assert list(decoder.frames()) == payloads
    assert decoder.buffered == 5
    decoder.feed(data[-3:])
    assert decoder.next_frame() == b"tail"


def test_large_frame_in_chunks():
    payload = bytes(range(256)) * 8192  # 2 MiB
    data = framed(payload, b"next")
    decoder = FrameDecoder(4 * 1024 * 1024)
    frames = []
    for start in range(0, len(data), 65536):
        decoder.feed(memoryview(data)[start : start + 65536])
        frames.extend(decoder.frames())
    assert frames == [payload, b"next"]
    assert all(type(f) is bytes for f in frames)


def test_size_above_limit_raises_before_body_arrives():
    decoder = FrameDecoder(1000)
    decoder.feed(struct.pack(">i", 1001))
    with pytest.raises(FrameTooLarge) as info:
        decoder.next_frame()
    assert info.value.size == 1001 and info.value.limit == 1000


def test_size_at_limit_is_accepted():
    decoder = FrameDecoder(10)
    decoder.feed(framed(b"0123456789"))
    assert decoder.next_frame() == b"0123456789"


def test_negative_size_is_invalid():
    decoder = FrameDecoder(1000)
    decoder.feed(struct.pack(">i", -1))
    with pytest.raises(InvalidFrame):
        decoder.next_frame()


def test_frame_too_large_is_an_invalid_frame():
    assert issubclass(FrameTooLarge, InvalidFrame)


# -- request headers -----------------------------------------------------------------------

def test_header_v1_from_kafka_python():
    request = MetadataRequest[1](topics=None)
    request.with_header(correlation_id=42, client_id="kp-client")
    frame = bytes(request.encode(framed=True, header=True))[4:]
    assert peek_api_key_version(frame) == (3, 1, 42)
    header = parse_request_header(frame, flexible=False)
    assert (header.api_key, header.api_version, header.correlation_id) == (3, 1, 42)
    assert header.client_id == "kp-client"
    assert header.header_size == 8 + 2 + len("kp-client")


def test_header_v2_from_kafka_python():
    request = ApiVersionsRequest[3](client_software_name="kp", client_software_version="3")
    request.with_header(correlation_id=7, client_id="abc")
    frame = bytes(request.encode(framed=True, header=True))[4:]
    header = parse_request_header(frame, flexible=True)
    assert header.client_id == "abc"
    assert header.header_size == 8 + 2 + 3 + 1
    assert frame[header.header_size :] == b"\x03kp\x023\x00"


def test_header_v2_skips_tagged_fields():
    tags = b"\x02" + b"\x00\x03abc" + b"\x81\x01\x00"  # two tags, the second numbered 129
    frame = struct.pack(">hhih", 18, 3, 9, 2) + b"id" + tags + b"BODY"
    header = parse_request_header(frame, flexible=True)
    assert frame[header.header_size :] == b"BODY"


def test_null_client_id():
    frame = struct.pack(">hhih", 18, 0, 1, -1)
    header = parse_request_header(frame, flexible=False)
    assert header.client_id is None and header.header_size == 10


def test_invalid_utf8_client_id_is_tolerated():
    frame = struct.pack(">hhih", 18, 0, 1, 2) + b"\xff\xfe"
    assert parse_request_header(frame, flexible=False).client_id == "\ufffd\ufffd"


@pytest.mark.parametrize("frame", [
    b"",
    b"\x00\x03\x00\x01\x00\x00",  # short of the correlation id
    struct.pack(">hhi", 3, 1, 1),  # no client id length
    struct.pack(">hhih", 3, 1, 1, 5) + b"abc",  # client id cut short
    struct.pack(">hhih", 3, 1, 1, -2),  # negative, not null
])
def test_truncated_v1_header(frame):
    with pytest.raises(InvalidRequest):
        parse_request_header(frame, flexible=False)


@pytest.mark.parametrize("tags", [
    b"",  # tag count missing
    b"\x01\x00",  # size missing
    b"\x01\x00\x05abc",  # value shorter than its size
    b"\x80\x80\x80\x80\x80\x01",  # a 6-byte varint
])
def test_truncated_v2_header(tags):
    frame = struct.pack(">hhih", 3, 12, 1, -1) + tags
    with pytest.raises(InvalidRequest):
        parse_request_header(frame, flexible=True)


def test_encode_request_header_round_trips():
    for flexible in (False, True):
        for client_id in (None, "", "clïent"):
            raw = encode_request_header(1, 12, 99, client_id, flexible)
            header = parse_request_header(raw, flexible)
            assert header.client_id == client_id and header.header_size == len(raw)


def test_uvarint_values():
    assert read_uvarint(b"\x00", 0) == (0, 1)
    assert read_uvarint(b"\x7f", 0) == (127, 1)
    assert read_uvarint(b"\x80\x01", 0) == (128, 2)
    assert read_uvarint(b"\xff\xff\xff\xff\x0f", 0) == (2**32 - 1, 5)
    assert skip_tagged_fields(b"\x00", 0) == 1


# -- responses -----------------------------------------------------------------------------

def test_response_frame_v0_header():
    frame = encode_response_frame(5, b"body", flexible_header=False)
    assert frame == struct.pack(">ii", 8, 5) + b"body"


def test_response_frame_v1_header_has_empty_tag_section():
    frame = encode_response_frame(5, b"body", flexible_header=True)
    assert frame == struct.pack(">ii", 9, 5) + b"\x00body"
    assert parse_response_header(frame[4:], flexible=True) == (5, 5)


def test_response_header_bytes_for_a_body_sent_separately():
    head = response_header_bytes(77, True, body_len=1_000_000)
    assert head == struct.pack(">iiB", 1_000_005, 77, 0)
    decoder = FrameDecoder(2_000_000)
    decoder.feed(head)
    decoder.feed(b"z" * 1_000_000)
    assert decoder.next_frame() == head[4:] + b"z" * 1_000_000
