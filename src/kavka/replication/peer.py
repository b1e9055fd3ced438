"""An asyncio connection from one broker to another, for replica fetching.

One request at a time (a fetcher waits for each answer before the next), kio
request objects in, decoded responses out.  Errors are :class:`PeerError`; the
caller reconnects with a backoff.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from kavka.protocol import messages
from kavka.protocol.framing import parse_response_header

_SIZE = struct.Struct(">i")
MAX_RESPONSE = 256 << 20


class PeerError(Exception):
    """The other broker is unreachable, closed the connection or answered nonsense."""


class Peer:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client_id: str) -> None:
        self._reader, self._writer, self._client_id = reader, writer, client_id
        self._correlation = 0

    @classmethod
    async def connect(cls, host: str, port: int, client_id: str, timeout: float = 5.0) -> "Peer":
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            raise PeerError(f"cannot connect to {host}:{port}: {exc}") from None
        return cls(reader, writer, client_id)

    async def request(self, obj: Any, timeout: float) -> Any:
        self._correlation += 1
        api_key, version = int(obj.__api_key__), int(obj.__version__)
        try:
            self._writer.write(messages.encode_request_frame(obj, self._correlation, self._client_id))
            await self._writer.drain()
            (size,) = _SIZE.unpack(await asyncio.wait_for(self._reader.readexactly(4), timeout))
            if not 0 < size <= MAX_RESPONSE:
                raise PeerError(f"response of {size} bytes")
            frame = await asyncio.wait_for(self._reader.readexactly(size), timeout)
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as exc:
            raise PeerError(f"{type(exc).__name__}: {exc}") from None
        correlation, header_size = parse_response_header(frame, messages.response_header_flexible(api_key, version))
        if correlation != self._correlation:
            raise PeerError(f"correlation id {correlation} for request {self._correlation}")
        return messages.decode_response(api_key, version, frame, header_size)

    def close(self) -> None:
        self._writer.close()
