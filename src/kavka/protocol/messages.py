"""Request and response bodies as kio dataclasses: lookup, decode, encode.

kio generates one frozen dataclass per API version from Kafka's JSON schemas and
ships a native (Rust) reader.  This module is the only place that knows its
API; the rest of the broker sees ``request_class``/``decode_request``/
``encode_response``.

kio's native reader cannot be handed hostile bytes directly: it aborts the
process on a huge array count, and raises KeyError on a tag it does not know
(which a newer client may legitimately send).  So every body is first walked by
:func:`kavka.protocol.schema_walk.check_bounds`, and a KeyError sends it to the
pure-Python tolerant reader there.

Measured: decode_request(ProduceRequest v9, 16 KiB batch) 2.1 µs (bounds walk 1.1, kio 0.7).
"""

from __future__ import annotations

import io
from functools import cache
from typing import Any, Callable

import kio.index
from kio.schema.index import api_key_map, schema_name_map
from kio.serial import entity_reader, entity_writer
from kio.serial.errors import SerialError

from kavka.protocol.errors import InvalidRequest, UnknownApiKey, UnsupportedVersion
from kavka.protocol.framing import add_size_prefix, encode_request_header
from kavka.protocol.schema_walk import bounds_checker, tolerant_reader

API_VERSIONS = 18

# Everything the readers raise on hostile input.  KeyError is listed for the
# fallback path; on the fast path it means "unknown tag" and is handled first.
_DECODE_FAILURES = (InvalidRequest, SerialError, ValueError, OverflowError, IndexError, KeyError,
                    TypeError)


# -- lookup --------------------------------------------------------------------------------

def _api_name(api_key: int) -> str:
    name = api_key_map.get(api_key)
    if name is None:
        raise UnknownApiKey(api_key)
    return name


@cache
def request_class(api_key: int, version: int) -> type:
    _api_name(api_key)
    try:
        return kio.index.load_request_schema(api_key, version)
    except kio.index.KioIndexError:
        raise UnsupportedVersion(api_key, version) from None


@cache
def response_class(api_key: int, version: int) -> type:
    _api_name(api_key)
    try:
        return kio.index.load_response_schema(api_key, version)
    except kio.index.KioIndexError:
        raise UnsupportedVersion(api_key, version) from None


def is_flexible(api_key: int, version: int) -> bool:
    """Whether this version's body uses compact types and tagged fields."""
    return request_class(api_key, version).__flexible__


def request_header_flexible(api_key: int, version: int) -> bool:
    """Whether the request uses header v2 (with tagged fields).

    Also answers for versions newer than any we know, as Kafka does: the server
    must parse the header of, say, ApiVersions v9 to answer UNSUPPORTED_VERSION.
    Flexible ranges are open-ended ("3+"), so the newest known version decides.
    Versions older than any kio knows (Produce v0-2, dropped by Kafka 4 but still
    advertised for librdkafka) predate every flexible version, so they are not.
    """
    if _older_than_known(api_key, version):
        return False
    try:
        cls = request_class(api_key, version)
    except UnsupportedVersion:
        newest = max(schema_name_map[_api_name(api_key)])
        if version <= newest:
            raise
        cls = request_class(api_key, newest)
    return cls.__header_schema__.__flexible__


def _older_than_known(api_key: int, version: int) -> bool:
    versions = schema_name_map.get(_api_name(api_key))
    return bool(versions) and 0 <= version < min(versions)


def response_header_flexible(api_key: int, version: int) -> bool:
    """Whether the response uses header v1 (with tagged fields).

    ApiVersions answers with header v0 at every version: a client that sent a
    version the broker does not know must still be able to read the reply.
    """
    if api_key == API_VERSIONS or _older_than_known(api_key, version):
        return False
    return response_class(api_key, version).__header_schema__.__flexible__


# -- decode --------------------------------------------------------------------------------

def decode_request(api_key: int, version: int, frame: bytes, offset: int) -> Any:
    """The request body starting at ``frame[offset:]`` as a kio dataclass.

    Raises UnknownApiKey/UnsupportedVersion, or InvalidRequest for a body that
    cannot be decoded.  Trailing bytes after the body are ignored, as Kafka does.
    """
    return _request_decoder(api_key, version)(frame, offset)


def decode_response(api_key: int, version: int, data: bytes, offset: int = 0) -> Any:
    """The response body at ``data[offset:]`` (client side, tests)."""
    return _decoder(response_class(api_key, version))(data, offset)


@cache
def _request_decoder(api_key: int, version: int) -> Callable[[bytes, int], Any]:
    return _decoder(request_class(api_key, version))


@cache
def _decoder(cls: type) -> Callable[[bytes, int], Any]:
    check = bounds_checker(cls)
    read = entity_reader(cls)

    def decode(data: bytes, offset: int) -> Any:
        if type(data) is not bytes:
            data = bytes(data)  # kio's native readers refuse writable buffers
        try:
            check(data, offset)  # before kio: it trusts array counts, see schema_walk
            return read(data, offset)[0]
        except KeyError:
            return _decode_tolerant(cls, data, offset)
        except _DECODE_FAILURES as exc:
            raise _invalid(cls, exc) from exc

    return decode


def _decode_tolerant(cls: type, data: bytes, offset: int) -> Any:
    try:
        return tolerant_reader(cls)(data, offset)[0]
    except _DECODE_FAILURES as exc:
        raise _invalid(cls, exc) from exc


def _invalid(cls: type, exc: Exception) -> InvalidRequest:
    reason = str(exc) or type(exc).__name__
    return InvalidRequest(f"cannot decode {cls.__name__} v{cls.__version__}: {reason}")


# -- encode --------------------------------------------------------------------------------

def encode_response(obj: Any) -> bytes:
    """Body bytes of a response (no size prefix, no header)."""
    return _encode(obj)


def encode_request(obj: Any) -> bytes:
    """Body bytes of a request (no size prefix, no header)."""
    return _encode(obj)


def encode_request_frame(obj: Any, correlation_id: int, client_id: str | None) -> bytes:
    """A whole request frame, size prefix and header included (client side)."""
    cls = type(obj)
    flexible = cls.__header_schema__.__flexible__
    header = encode_request_header(cls.__api_key__, cls.__version__, correlation_id, client_id, flexible)
    return add_size_prefix(header + _encode(obj))


def _encode(obj: Any) -> bytes:
    buffer = io.BytesIO()
    _writer(type(obj))(buffer, obj)
    return buffer.getvalue()


@cache
def _writer(cls: type) -> Callable[[io.BytesIO, Any], None]:
    return entity_writer(cls)
