"""From a request frame to the bytes of its response.

Order of checks, as Kafka does them:

0. On a SASL listener, a connection that has not authenticated may send only ApiVersions,
   SaslHandshake and SaslAuthenticate (after SaslHandshake v0, bare SASL tokens); anything
   else closes it with a logged reason, as Kafka's SaslServerAuthenticator does.
1. The first 8 bytes give api key, version and correlation id.  An unknown api
   key closes the connection (the client is not speaking Kafka, or a newer
   dialect we cannot even frame an answer for).
2. ApiVersions with a version we do not know is answered in v0 with
   UNSUPPORTED_VERSION and our own range, so the client can retry lower
   (KIP-511).  Any other unsupported version closes the connection.
3. The header (v1, or v2 with tagged fields when the API version is flexible)
   and body are decoded; a malformed body closes the connection.
4. The handler runs; its response is encoded with the response header its
   version requires (ApiVersions always uses header v0).  Its time counts against the
   client's ``request_percentage`` quota, and a throttled client's connection is muted
   (kavka.api.quotas).

An exception escaping a handler or the encoder (a bug, or input the decoder
let through that a handler cannot take) is logged as one warning line naming
the API, version, client and exception; the traceback is logged at debug level
only, so a fuzzing client cannot fill the log.  A response with a top-level
error code (Fetch v7+, the group APIs, InitProducerId, ...) is answered with
UNKNOWN_SERVER_ERROR and empty contents and the connection stays open; any
other closes the connection.  Kafka does the same but builds per-partition
error answers from the request too (getErrorResponse), and logs the trace.
"""

from __future__ import annotations

import asyncio
import logging
import time

from kavka.api.quotas import request_time_throttle
from kavka.api.registry import REGISTRY, RawResponse, Request
from kavka.api.responses import error_response
from kavka.protocol import messages
from kavka.protocol.errors import ErrorCode, InvalidRequest, ProtocolError, UnsupportedVersion
from kavka.protocol.framing import (
    encode_response_frame,
    parse_request_header,
    peek_api_key_version,
    response_header_bytes,
)
from kavka.server.connection import CloseConnection
from kavka.server.sasl_frames import raw_sasl_token

log = logging.getLogger("kavka.server")

API_VERSIONS_KEY = 18


class Dispatcher:
    def __init__(self, broker) -> None:
        self.broker = broker

    @staticmethod
    def pipelined(api_key: int) -> bool:
        spec = REGISTRY.get(api_key)
        return spec is not None and spec.pipelined

    def handle(self, frame: bytes, conn):
        security = getattr(conn, "security", None)
        if security is not None and security.sasl is not None and security.sasl.raw_tokens:
            return raw_sasl_token(frame, conn)
        api_key, version, correlation_id = peek_api_key_version(frame)
        if security is not None:
            refusal = security.refusal(api_key)
            if refusal is not None:
                raise CloseConnection(refusal)
        spec = REGISTRY.get(api_key)
        if spec is None:
            raise CloseConnection(f"unknown API key {api_key} (correlation id {correlation_id})")
        if not spec.min_version <= version <= spec.max_version:
            if api_key == API_VERSIONS_KEY:
                return self._unsupported_api_versions(frame, version, correlation_id)
            raise CloseConnection(
                f"unsupported version {version} of API {spec.name} (supported "
                f"{spec.min_version}-{spec.max_version})")
        flexible = messages.request_header_flexible(api_key, version) if version >= 0 else False
        header = parse_request_header(frame, flexible)
        decoder = spec.decoders.get(version)
        try:
            body = (decoder(frame, header.header_size) if decoder is not None
                    else messages.decode_request(api_key, version, frame, header.header_size))
        except InvalidRequest as exc:
            raise CloseConnection(f"malformed {spec.name} v{version} request: {exc}") from None
        request = Request(api_key, version, correlation_id, header.client_id, body, self.broker, conn.peer,
                          size=len(frame), started=time.perf_counter())
        if security is not None:
            request.principal, request.listener = security.principal, security.listener.name
            request.security = security
        try:
            result = spec.handler(request)
            if asyncio.iscoroutine(result):
                return self._finish_async(result, request, spec.name, conn)
            _mute_if_throttled(request, conn)
            return self._encode(result, request)
        except _PASSED_ON:
            raise
        except Exception as exc:
            return self._internal_error(exc, spec.name, request)

    async def _finish_async(self, pending, request: Request, name: str, conn):
        try:
            result = await pending
            _mute_if_throttled(request, conn)
            return self._encode(result, request)
        except _PASSED_ON:
            raise
        except Exception as exc:
            return self._internal_error(exc, name, request)

    def _internal_error(self, exc: Exception, name: str, request: Request):
        """One log line for a request that failed inside the broker (the traceback at debug);
        an UNKNOWN_SERVER_ERROR answer where the response has a top-level error code."""
        log.debug("traceback of the internal error handling %s v%d from %s", name, request.version,
                  request.peer, exc_info=exc)
        what = (f"internal error handling {name} v{request.version} (client id {request.client_id!r}, "
                f"correlation id {request.correlation_id}): {type(exc).__name__}: {exc}")
        answer = error_response(request.api_key, request.version, ErrorCode.unknown_server_error)
        if answer is None:
            raise CloseConnection(what)
        try:
            frame = self._encode(answer, request)
        except Exception:  # noqa: BLE001 - the schema allowed no empty answer after all
            raise CloseConnection(what) from None
        log.warning("%s from %s; answered UNKNOWN_SERVER_ERROR", what, request.peer)
        return frame

    @staticmethod
    def _encode(result, request: Request):
        if result is None:
            return None
        flexible = messages.response_header_flexible(request.api_key, request.version)
        if isinstance(result, RawResponse):
            head = response_header_bytes(request.correlation_id, flexible, result.size)
            return [head, *result.parts]
        body = messages.encode_response(result)
        return [encode_response_frame(request.correlation_id, body, flexible)]

    def _unsupported_api_versions(self, frame: bytes, version: int, correlation_id: int):
        from kavka.api.api_versions import unsupported_version_response
        log.info("ApiVersions v%d requested; answering v0 with UNSUPPORTED_VERSION", version)
        body = messages.encode_response(unsupported_version_response())
        return [encode_response_frame(correlation_id, body, False)]


def _mute_if_throttled(request: Request, conn) -> None:
    """Count the handler's time if its API did not; a throttled client's connection reads no
    more requests for that long once this response is sent (Kafka mutes the channel, KIP-219)."""
    throttle_ms = max(request.throttle_ms, request_time_throttle(request))
    if throttle_ms > 0:
        conn.throttle(throttle_ms)


# Exceptions that already mean "close this connection, reason logged" or are not
# errors of this request (cancellation is a BaseException and passes anyway).
_PASSED_ON = (CloseConnection, ProtocolError, ConnectionError)


__all__ = ["Dispatcher", "UnsupportedVersion"]
