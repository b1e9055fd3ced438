"""SaslHandshake (key 17, v0-1) and SaslAuthenticate (key 36, v0-2): a connection's SASL
exchange on a SASL listener (the state lives in kavka.security.sasl.session).

SaslHandshake names the mechanism; the answer lists the listener's enabled ones, and one not
among them is UNSUPPORTED_SASL_MECHANISM, the connection closed after it, as in Kafka.  v0 means
the tokens follow as bare frames (kavka.server.sasl_frames); v1 means SaslAuthenticate requests.
SaslAuthenticate carries one token each way (KIP-152), and from v1 the session lifetime of
KIP-368 (``connections.max.reauth.ms``, or the token's expiry if sooner).  A failure answers
SASL_AUTHENTICATION_FAILED with the reason, ``connection.failed.authentication.delay.ms`` late,
and closes the connection once sent (kavka.security.sasl.exchange).  Either API on a listener
without SASL, or out of order, is ILLEGAL_SASL_STATE.
"""

from __future__ import annotations

import asyncio
import datetime

from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.protocol.errors import ErrorCode
from kavka.security.sasl import IllegalSaslState
from kavka.security.sasl.exchange import authenticate

NOT_SASL = "SASL is not enabled on this listener"


@api(17, "SaslHandshake", (0, 1))
def handshake(request: Request):
    r = builder_for(request)
    security = request.security
    if security is None or security.sasl is None:
        return r.SaslHandshakeResponse(error_code=ErrorCode.illegal_sasl_state, mechanisms=())
    mechanisms = tuple(security.sasl.mechanisms)
    try:
        chosen = security.sasl.handshake(request.body.mechanism, request.version)
    except IllegalSaslState as exc:
        security.close_reason = f"illegal SASL state: {exc}"
        return r.SaslHandshakeResponse(error_code=ErrorCode.illegal_sasl_state, mechanisms=mechanisms)
    if not chosen:
        security.close_reason = (f"unsupported SASL mechanism {request.body.mechanism!r} "
                                 f"(enabled: {', '.join(mechanisms)})")
        return r.SaslHandshakeResponse(error_code=ErrorCode.unsupported_sasl_mechanism, mechanisms=mechanisms)
    return r.SaslHandshakeResponse(error_code=ErrorCode.none, mechanisms=mechanisms)


@api(36, "SaslAuthenticate", (0, 2))
def authenticate_step(request: Request):
    r = builder_for(request)
    security = request.security
    if security is None or security.sasl is None:
        return r.SaslAuthenticateResponse(error_code=ErrorCode.illegal_sasl_state, error_message=NOT_SASL,
                                          auth_bytes=b"", session_lifetime=datetime.timedelta(0))
    outcome = authenticate(security, bytes(request.body.auth_bytes), request.peer)
    response = r.SaslAuthenticateResponse(
        error_code=outcome.error, error_message=outcome.message, auth_bytes=outcome.reply,
        session_lifetime=datetime.timedelta(milliseconds=outcome.session_lifetime_ms))
    if outcome.delay_s > 0:
        return _delayed(response, outcome.delay_s)
    return response


async def _delayed(response, delay_s: float):
    await asyncio.sleep(delay_s)
    return response
