"""One SaslAuthenticate step of a connection, with Kafka's handling of failure: the attempt is
logged with the client address, the answer carries the error, and the connection is closed
once it is sent, ``connection.failed.authentication.delay.ms`` later (against brute force)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from kavka.protocol.errors import ErrorCode
from kavka.security.sasl import AuthenticationFailed, IllegalSaslState
from kavka.security.sasl.session import SaslState

log = logging.getLogger("kavka.security")


@dataclass(frozen=True)
class Outcome:
    reply: bytes
    error: ErrorCode = ErrorCode.none
    message: str | None = None
    session_lifetime_ms: int = 0
    delay_s: float = 0.0          # wait this long before answering a failure


def authenticate(security, token: bytes, peer: str) -> Outcome:
    """Feed ``token`` to the connection's SASL session (kavka.security.listeners.ConnectionSecurity)."""
    now_ms = int(time.time() * 1000)
    sasl = security.sasl
    try:
        reply = sasl.authenticate(token, now_ms)
    except AuthenticationFailed as exc:
        log.warning("failed authentication from %s on listener %s: %s", peer, security.listener.name, exc)
        security.close_reason = f"authentication failed: {exc}"
        return Outcome(b"", ErrorCode.sasl_authentication_failed, str(exc),
                       delay_s=security.listener.failed_auth_delay_ms / 1000)
    except IllegalSaslState as exc:
        security.close_reason = f"illegal SASL state: {exc}"
        return Outcome(b"", ErrorCode.illegal_sasl_state, str(exc))
    if sasl.state is SaslState.COMPLETE:   # this token finished the exchange
        log.info("%s authenticated as %s on listener %s", peer, sasl.principal, security.listener.name)
    return Outcome(reply, session_lifetime_ms=sasl.session_lifetime_ms(now_ms))
