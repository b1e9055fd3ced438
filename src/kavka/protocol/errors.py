"""Kafka error codes and the exceptions raised while reading the wire protocol.

Two tiers (see docs/ARCHITECTURE.md): these exceptions mean *the bytes are
wrong*, so the server logs the reason and closes that one connection, or, for
:class:`UnsupportedVersion` of ApiVersions, answers with
``ErrorCode.unsupported_version``.  Domain failures (unknown topic, stale epoch)
are not protocol errors and are mapped to an :class:`ErrorCode` in ``api/``.

Batch-level problems raise :class:`kavka.protocol.records.InvalidBatch`
subclasses instead, because the broker answers them per partition
(CORRUPT_MESSAGE, INVALID_RECORD, UNSUPPORTED_COMPRESSION_TYPE) rather than
dropping the connection.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from kavka.protocol.records import InvalidBatch

__all__ = [
    "ErrorCode",
    "ProtocolError",
    "InvalidFrame",
    "FrameTooLarge",
    "InvalidRequest",
    "UnsupportedVersion",
    "UnknownApiKey",
    "UnsupportedCompression",
]


class ProtocolError(Exception):
    """The peer sent bytes that do not follow the Kafka protocol."""


class InvalidFrame(ProtocolError):
    """A size prefix that no frame may have (negative)."""


class FrameTooLarge(InvalidFrame):
    """A frame larger than the configured maximum (``socket.request.max.bytes``)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class InvalidRequest(ProtocolError):
    """A request header or body that cannot be decoded (truncated, garbage)."""


class UnsupportedVersion(ProtocolError):
    """The API key is known but this version of it is not."""

    def __init__(self, api_key: int, version: int) -> None:
        super().__init__(f"api key {api_key} has no version {version}")
        self.api_key = api_key
        self.version = version


class UnknownApiKey(ProtocolError):
    """No Kafka API has this key."""

    def __init__(self, api_key: int) -> None:
        super().__init__(f"unknown api key {api_key}")
        self.api_key = api_key


class UnsupportedCompression(InvalidBatch):
    """A batch names a codec id outside 0-4 (Kafka: UNSUPPORTED_COMPRESSION_TYPE)."""
