"""Size-prefixed frames and the request/response headers inside them.

Every Kafka message on a connection is ``size:int32`` followed by ``size``
bytes.  A request frame starts with a header::

    header v1 (non-flexible APIs)     header v2 (flexible APIs)
    api_key         int16             the same four fields, then
    api_version     int16             tagged fields: uvarint count,
    correlation_id  int32               per field uvarint tag, uvarint size, bytes
    client_id       int16 len + utf-8 (-1 = null; legacy even in v2)

Which header a request uses depends on its API version, so the server first
peeks at the fixed 8 bytes (:func:`peek_api_key_version`), asks
:mod:`kavka.protocol.messages` whether that version is flexible, and only then
parses the whole header.  Responses carry ``correlation_id`` and, for a v1
header, one empty tagged-field byte.

Nothing here touches a socket: :class:`FrameDecoder` is fed bytes and hands
back whole frames, returning None for "need more data".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterator

from kavka.protocol.errors import FrameTooLarge, InvalidFrame, InvalidRequest

SIZE_PREFIX = 4

_SIZE = struct.Struct(">i")
_KEY_VERSION_CORR = struct.Struct(">hhi")
_CLIENT_ID_LEN = struct.Struct(">h")
_RESPONSE_HEAD = struct.Struct(">ii")
_RESPONSE_HEAD_FLEX = struct.Struct(">iiB")

# The read cursor is only folded back into the buffer once this many consumed
# bytes have piled up, so a run of small frames costs one memmove, not one each.
_COMPACT_AFTER = 64 * 1024

# Kafka's uvarints carry int32 values: at most 5 bytes (ByteUtils.readUnsignedVarint).
_MAX_UVARINT_BYTES = 5


class FrameDecoder:
    """Splits a byte stream into frame payloads, without the size prefix.

    Bytes are appended to one bytearray and consumed through a cursor, so
    feeding many small chunks or one 1 MiB frame in pieces is linear.  A size
    prefix outside ``0..max_frame_size`` raises as soon as its 4 bytes are
    seen, before any of the body is buffered; the caller then closes the
    connection and must not feed this decoder again.
    """

    __slots__ = ("_buf", "_pos", "_max")

    def __init__(self, max_frame_size: int) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._max = max_frame_size

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as frames."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self._buf += data

    def next_frame(self) -> bytes | None:
        """One whole frame payload, or None until more bytes are fed."""
        buf, pos = self._buf, self._pos
        if len(buf) - pos < SIZE_PREFIX:
            return None
        (size,) = _SIZE.unpack_from(buf, pos)
        self._check_size(size)
        start = pos + SIZE_PREFIX
        end = start + size
        if len(buf) < end:
            return None
        with memoryview(buf) as view:
            frame = bytes(view[start:end])
        self._consume_to(end)
        return frame

    def frames(self) -> Iterator[bytes]:
        """Every whole frame currently buffered, in order."""
        while (frame := self.next_frame()) is not None:
            yield frame

    def _check_size(self, size: int) -> None:
        if size < 0:
            raise InvalidFrame(f"negative frame size {size}")
        if size > self._max:
            raise FrameTooLarge(size, self._max)

    def _consume_to(self, end: int) -> None:
        if end == len(self._buf):
            # The common case after a read that held whole frames: start afresh.
            self._buf.clear()
            self._pos = 0
        elif end >= _COMPACT_AFTER:
            del self._buf[:end]
            self._pos = 0
        else:
            self._pos = end


@dataclass(frozen=True, slots=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    header_size: int
    """Bytes the header occupies: the body starts at ``frame[header_size:]``."""


def peek_api_key_version(frame: bytes | memoryview) -> tuple[int, int, int]:
    """(api_key, api_version, correlation_id) from the fixed start of a request."""
    if len(frame) < _KEY_VERSION_CORR.size:
        raise InvalidRequest(f"request of {len(frame)} bytes is too short for a header")
    return _KEY_VERSION_CORR.unpack_from(frame, 0)


def parse_request_header(frame: bytes | memoryview, flexible: bool) -> RequestHeader:
    """Parse header v1, or v2 when ``flexible`` (its tagged fields are skipped)."""
    api_key, api_version, correlation_id = peek_api_key_version(frame)
    client_id, pos = _read_client_id(frame, _KEY_VERSION_CORR.size)
    if flexible:
        pos = skip_tagged_fields(frame, pos)
    return RequestHeader(api_key, api_version, correlation_id, client_id, pos)


def _read_client_id(frame: bytes | memoryview, pos: int) -> tuple[str | None, int]:
    if len(frame) - pos < _CLIENT_ID_LEN.size:
        raise InvalidRequest("request header ends before the client id")
    (length,) = _CLIENT_ID_LEN.unpack_from(frame, pos)
    pos += _CLIENT_ID_LEN.size
    if length == -1:
        return None, pos
    if length < 0:
        raise InvalidRequest(f"client id has negative length {length}")
    end = pos + length
    if end > len(frame):
        raise InvalidRequest("request header ends inside the client id")
    # Java decodes client ids leniently too; a stray byte must not cost the connection.
    return bytes(frame[pos:end]).decode("utf-8", "replace"), end


def read_uvarint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """(value, position after it) of an unsigned varint of at most 5 bytes."""
    end = len(buf)
    if pos < end and buf[pos] < 0x80:  # nearly every count, size and tag
        return buf[pos], pos + 1
    value = shift = 0
    stop = min(pos + _MAX_UVARINT_BYTES, end)
    while pos < stop:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    if pos == end:
        raise InvalidRequest("input ends inside an unsigned varint")
    raise InvalidRequest("unsigned varint is longer than 5 bytes")


def write_uvarint(value: int) -> bytes:
    """Unsigned LEB128, as flexible versions encode lengths and tag numbers."""
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def skip_tagged_fields(buf: bytes | memoryview, pos: int) -> int:
    """Position after a tagged-field section, none of whose tags we interpret."""
    count, pos = read_uvarint(buf, pos)
    for _ in range(count):
        _tag, pos = read_uvarint(buf, pos)
        size, pos = read_uvarint(buf, pos)
        pos += size
        if pos > len(buf):
            raise InvalidRequest("input ends inside a tagged field")
    return pos


def encode_request_header(
    api_key: int, api_version: int, correlation_id: int, client_id: str | None, flexible: bool
) -> bytes:
    """Header v1, or v2 with no tagged fields when ``flexible`` (client side)."""
    head = _KEY_VERSION_CORR.pack(api_key, api_version, correlation_id)
    if client_id is None:
        cid = _CLIENT_ID_LEN.pack(-1)
    else:
        raw = client_id.encode("utf-8")
        cid = _CLIENT_ID_LEN.pack(len(raw)) + raw
    return head + cid + (b"\x00" if flexible else b"")


def add_size_prefix(payload: bytes) -> bytes:
    """``payload`` as a frame: its length as int32, then itself."""
    return _SIZE.pack(len(payload)) + payload


def response_header_bytes(correlation_id: int, flexible_header: bool, body_len: int) -> bytes:
    """Size prefix and response header for a body of ``body_len`` bytes sent separately.

    Lets the fetch path write the header and then hand file regions to sendfile
    without first gathering the body in memory.
    """
    if flexible_header:
        return _RESPONSE_HEAD_FLEX.pack(body_len + 5, correlation_id, 0)
    return _RESPONSE_HEAD.pack(body_len + 4, correlation_id)


def encode_response_frame(correlation_id: int, body: bytes, flexible_header: bool) -> bytes:
    return response_header_bytes(correlation_id, flexible_header, len(body)) + body


def parse_response_header(frame: bytes | memoryview, flexible: bool) -> tuple[int, int]:
    """(correlation_id, header_size) of a response frame payload (client side).

    Raises InvalidFrame when too short; InvalidRequest from its tagged fields.
    """
    if len(frame) < 4:
        raise InvalidFrame(f"response of {len(frame)} bytes is too short for a header")
    (correlation_id,) = _SIZE.unpack_from(frame, 0)
    pos = skip_tagged_fields(frame, 4) if flexible else 4
    return correlation_id, pos
