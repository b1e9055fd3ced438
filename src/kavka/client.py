"""A small blocking Kafka protocol client for the CLI and for tests.

It speaks to one broker over one connection with kio request objects, one
request at a time.  It is deliberately minimal: real applications should use a
full client (confluent-kafka, kafka-python, aiokafka); the CLI uses this one so
that it needs nothing beyond kavka itself and talks to any Kafka broker.
"""

from __future__ import annotations

import socket
import struct
from typing import Any, Callable

from kavka.protocol import messages
from kavka.protocol.framing import parse_response_header

_SIZE = struct.Struct(">i")
Decode = Callable[[bytes, int], Any]  # (response frame, offset of the body) -> the response


class ClientError(Exception):
    """The broker could not be reached or answered something unreadable."""


class Client:
    def __init__(self, bootstrap: str, *, client_id: str = "kavka-cli", timeout: float = 10.0) -> None:
        host, _, port = bootstrap.rpartition(":")
        self.address = (host or "127.0.0.1", int(port))
        self.client_id = client_id
        try:
            self.sock = socket.create_connection(self.address, timeout=timeout)
        except OSError as exc:
            raise ClientError(f"cannot connect to {bootstrap}: {exc.strerror or exc}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._correlation = 0

    def request(self, obj: Any, decode: Decode | None = None) -> Any:
        """Send one kio request object and return the decoded response: by kio, or by
        ``decode(frame, body_offset)`` for a response kio cannot read (DescribeTransactions
        with a start time of -1, which kio refuses as a negative timestamp)."""
        self._correlation += 1
        self.sock.sendall(messages.encode_request_frame(obj, self._correlation, self.client_id))
        if obj.__api_key__ == 0 and getattr(obj, "acks", 1) == 0:
            return None
        frame = self.recv_frame()
        api_key, version = int(obj.__api_key__), int(obj.__version__)
        flexible = messages.response_header_flexible(api_key, version)
        correlation_id, header_size = parse_response_header(frame, flexible)
        if correlation_id != self._correlation:
            raise ClientError(f"correlation id {correlation_id} does not match request {self._correlation}")
        if decode is not None:
            return decode(frame, header_size)
        return messages.decode_response(api_key, version, frame, header_size)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_frame(self) -> bytes:
        size = _SIZE.unpack(self._recv_exactly(4))[0]
        return self._recv_exactly(size)

    def _recv_exactly(self, n: int) -> bytes:
        chunks, remaining = [], n
        while remaining:
            chunk = self.sock.recv(min(remaining, 1 << 20))
            if not chunk:
                raise ClientError("connection closed by the broker")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
