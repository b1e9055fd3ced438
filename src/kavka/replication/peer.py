"""An asyncio connection from one broker to another: replica fetching, forwarding to the
controller, transaction markers, transaction verification.

:meth:`Peer.connect` is the one way a broker connects to another: over TLS and/or SASL when
the inter-broker listener's security protocol asks for it (``security``, a
kavka.client_security.ClientSecurity built by ``ClientSecurity.inter_broker``), the SASL
exchange being the CLI's own (``ClientSecurity.sasl_steps``).  One request at a time (a
fetcher waits for each answer before the next), kio request objects in, decoded responses
out.  Errors are :class:`PeerError` (:class:`PeerAuthenticationFailed` when the other broker
refused this one's credentials or certificate); the caller reconnects with a backoff.
"""

from __future__ import annotations

import asyncio
import ssl
import struct
from typing import Any

from kavka.client_security import ClientSecurity, SaslFailed
from kavka.protocol import messages
from kavka.protocol.framing import parse_response_header

_SIZE = struct.Struct(">i")
MAX_RESPONSE = 256 << 20


class PeerError(Exception):
    """The other broker is unreachable, closed the connection or answered nonsense."""


class PeerAuthenticationFailed(PeerError):
    """The other broker refused this one's SASL credentials, or the TLS handshake failed."""


class Peer:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client_id: str) -> None:
        self._reader, self._writer, self._client_id = reader, writer, client_id
        self._correlation = 0

    @classmethod
    async def connect(cls, host: str, port: int, client_id: str, timeout: float = 5.0,
                      security: ClientSecurity | None = None) -> "Peer":
        """A connection to broker ``host``:``port``, secured and authenticated as ``security``
        says (None: PLAINTEXT)."""
        context = security.ssl_context if security is not None else None
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                host, port, ssl=context, ssl_handshake_timeout=timeout if context is not None else None), timeout)
        except ssl.SSLError as exc:
            raise PeerAuthenticationFailed(f"TLS handshake with {host}:{port} failed: {exc}") from None
        except (OSError, asyncio.TimeoutError) as exc:
            raise PeerError(f"cannot connect to {host}:{port}: {exc}") from None
        peer = cls(reader, writer, client_id)
        if security is not None and security.mechanism is not None:
            try:
                await peer._authenticate(security, host, port, timeout)
            except BaseException:
                peer.close()
                raise
        return peer

    async def _authenticate(self, security: ClientSecurity, host: str, port: int, timeout: float) -> None:
        steps = security.sasl_steps()
        try:
            step = next(steps)
            while True:
                step = steps.send(await self.request(step, timeout))
        except StopIteration:
            return
        except SaslFailed as exc:
            raise PeerAuthenticationFailed(f"broker {host}:{port} refused {security.mechanism} authentication as "
                                           f"{security.username!r}: {exc}") from None

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
        except ssl.SSLError as exc:
            raise PeerAuthenticationFailed(f"TLS: {exc}") from None
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as exc:
            raise PeerError(f"{type(exc).__name__}: {exc}") from None
        correlation, header_size = parse_response_header(frame, messages.response_header_flexible(api_key, version))
        if correlation != self._correlation:
            raise PeerError(f"correlation id {correlation} for request {self._correlation}")
        return messages.decode_response(api_key, version, frame, header_size)

    def close(self) -> None:
        self._writer.close()
